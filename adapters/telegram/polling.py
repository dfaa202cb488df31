"""Long polling for the Telegram channel, written here rather than aiogram's `start_polling`
because that one confirms an update even when its handler failed, and the update is lost.

Here an update is confirmed (the next `getUpdates` carries an offset past it) only once the
service has stored it. When storing fails (the database is down) or the worker is shutting
down, the offset stays where it was and the same updates are fetched again later; the store's
unique (channel, external_id) answers each of them once however often it comes.

Telegram allows one `getUpdates` at a time per bot (a second gets 409), so in a cluster only
the worker holding the lease `telegram-polling:<bot id>` polls; it renews the lease every round
and gives it back when it stops, and the others stand by and take over when it lapses.

One update aiogram cannot read makes the whole getUpdates answer unreadable to it, and the
same answer would come back forever, silencing every customer. The answer is then read update
by update: the others are stored as usual, and the unreadable one is fetched again a few times
(`poison_tries`), then skipped with a warning naming its update id and its masked body kept
(adapters/telegram/unreadable.py). `trouble()` says when polling has not moved for
`stall_seconds` while its rounds fail, so /readyz reports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiogram import Bot
from aiogram.exceptions import ClientDecodeError, TelegramAPIError, TelegramConflictError
from aiogram.methods import GetUpdates
from aiogram.types import Update

from adapters.telegram.unreadable import KEEP_FOR, keep, problem, sort_out
from bot.web.channels import ChannelContext, ServiceStopping

log = logging.getLogger("adapters.telegram")

#: failed rounds in a row before a stall is reported
STALL_FAILURES = 3


@dataclass
class Batch:
    """What one getUpdates returned: the updates aiogram reads, and the bodies of those it
    cannot, by update id."""

    updates: list[Update]
    unreadable: dict[int, dict[str, Any]] = field(default_factory=dict)


class Polling:
    """One worker's long-polling loop: stand by until it holds the lease, then fetch, store and
    confirm. `feed` hands one update to the channel's handlers and returns once it is stored."""

    def __init__(
        self,
        bot: Bot,
        feed: Callable[[Update], Awaitable[object]],
        context: ChannelContext,
        allowed_updates: list[str],
        timeout: int,
        *,
        lease_seconds: float,
        standby_seconds: float,
        retry_seconds: float,
        poison_tries: int = 3,
        stall_seconds: float = 60.0,
    ) -> None:
        """`poison_tries`: how many times an unreadable update is fetched before it is
        skipped; `stall_seconds`: how long polling may fail without moving before `trouble`
        reports it."""
        self.bot = bot
        self.feed = feed
        self.context = context
        self.allowed_updates = allowed_updates
        self.timeout = timeout
        self.lease_name = f"telegram-polling:{bot.id}"
        self.lease = timedelta(seconds=lease_seconds)
        self.standby_seconds = standby_seconds
        self.retry_seconds = retry_seconds
        self.worker = context.worker
        self.poison_tries = poison_tries
        self.stall_seconds = stall_seconds
        self.polling = False
        #: failed rounds in a row, when the last round went through, and why the last failed
        self.failures = 0
        self.moved_at = time.monotonic()
        self.last_error = ""
        self._sightings: dict[int, int] = {}
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def trouble(self) -> str | None:
        """Why this worker's polling is stuck, or None: it holds the lease, its last
        `STALL_FAILURES` rounds or more failed, and nothing went through for `stall_seconds`."""
        if not self.polling or self.failures < STALL_FAILURES:
            return None
        stalled = time.monotonic() - self.moved_at
        if stalled < self.stall_seconds:
            return None
        return (
            f"polling has not moved for {stalled:.0f} s ({self.failures} failed rounds; "
            f"last: {self.last_error or 'unknown'})"
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="telegram-polling")

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop fetching, let an update being stored finish, give the lease back."""
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout)
            except TimeoutError:
                log.warning("Telegram polling did not stop in %.0f s", timeout)
            except Exception:  # run() never ends with an error; this is a last guard
                log.exception("Telegram polling ended with an error")
            self._task = None
        await self._release()

    async def run(self) -> None:
        """Poll until stopped. Nothing ends it but `stop`: an unexpected error is logged and
        polling goes on after a pause, so the bot never goes deaf quietly."""
        while not self._stopping.is_set():
            try:
                await self._poll()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Telegram polling failed; polling again in %.0f s", 30)
                self.polling = False
                await self._release()
                await self._pause(30)

    async def _poll(self) -> None:
        offset: int | None = None
        failures = 0
        while not self._stopping.is_set():
            if not self.context.messages.accepting or not await self._hold():
                if self.polling:
                    log.info("worker %s stops polling Telegram", self.worker)
                    self.polling = False
                    await self._release()
                await self._pause(self.standby_seconds)
                continue
            if not self.polling:
                log.info("worker %s polls Telegram (lease %s)", self.worker, self.lease_name)
                self.polling, offset, failures = True, None, 0
                self._sightings.clear()  # another worker may have skipped what this one saw
                self._moved()
                if not await self._forget_webhook():
                    await self._pause(self._backoff(failures := failures + 1))
                    continue
            batch = await self._fetch(offset)
            if batch is None:
                failures = self._failed(failures)
                await self._pause(self._backoff(failures))
                continue
            stored, offset = await self._store(batch, offset)
            if stored:
                failures = 0
                self._moved()
            else:
                failures = self._failed(failures, self.last_error or "an update was not stored")
                await self._pause(self._backoff(failures))

    def _moved(self) -> None:
        self.failures, self.moved_at, self.last_error = 0, time.monotonic(), ""

    def _failed(self, failures: int, error: str | None = None) -> int:
        if error is not None:
            self.last_error = error
        self.failures = failures + 1
        return self.failures

    async def _fetch(self, offset: int | None) -> Batch | None:
        """One long poll, cut short when the channel stops; None when it failed."""
        call = GetUpdates(offset=offset, timeout=self.timeout, allowed_updates=self.allowed_updates)
        fetch = asyncio.ensure_future(self.bot(call, request_timeout=self.timeout + 10))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not fetch.done():
            fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await fetch
            return Batch([])
        try:
            return Batch(list(fetch.result()))
        except TelegramConflictError as exc:
            log.warning("Telegram: another getUpdates is running for this bot: %s", exc.message)
            self.last_error = f"another getUpdates is running: {exc.message}"
        except TelegramAPIError as exc:
            log.warning("Telegram getUpdates failed: %s", exc)
            self.last_error = f"getUpdates failed: {exc.message}"
        except ClientDecodeError as exc:
            batch = self._sort_out(exc)
            if batch is not None:
                return batch
            # not one bad update but an answer aiogram cannot read (a proxy's HTML page …)
            log.warning("Telegram getUpdates failed: %s", exc.message)
            self.last_error = f"getUpdates answer unreadable: {exc.message}"
        except Exception as exc:
            log.warning("Telegram getUpdates failed: %s", type(exc).__name__)
            self.last_error = f"getUpdates failed: {type(exc).__name__}"
        return None

    def _sort_out(self, exc: ClientDecodeError) -> Batch | None:
        """An answer refused as a whole, read update by update (see unreadable.sort_out)."""
        data = exc.data
        if not isinstance(data, dict) or data.get("ok") is not True:
            return None
        found = sort_out(data.get("result"), {"bot": self.bot})
        if found is None or not found[1]:
            return None
        return Batch(*found)

    async def _set_aside(self, bodies: dict[int, dict[str, Any]]) -> list[int]:
        """The unreadable updates of a batch: each is fetched again until it was seen
        `poison_tries` times, then skipped and its body kept. Returns the ids still held (the
        offset must not pass them)."""
        held: list[int] = []
        for update_id, body in sorted(bodies.items()):
            seen = self._sightings.get(update_id, 0) + 1
            why = problem(body, {"bot": self.bot})
            if seen < self.poison_tries:
                self._sightings[update_id] = seen
                log.warning(
                    "Telegram update %s cannot be read (%s); fetching it again (%d of %d)",
                    update_id,
                    why,
                    seen,
                    self.poison_tries,
                )
                self.last_error = f"update {update_id} cannot be read ({why})"
                held.append(update_id)
                continue
            try:
                key = await keep(self.context, update_id, body)
            except Exception:
                log.exception("Telegram update %s cannot be read nor kept; holding it", update_id)
                self.last_error = f"update {update_id} cannot be read nor kept"
                held.append(update_id)
                continue
            self._sightings.pop(update_id, None)
            log.warning(
                "Telegram update %s cannot be read after %d tries (%s): skipped; its body "
                "(masked) is kept in channel_state telegram/%s for %d days",
                update_id,
                seen,
                why,
                key,
                KEEP_FOR.days,
            )
        return held

    async def _store(self, batch: Batch, offset: int | None) -> tuple[bool, int | None]:
        """Store a batch: the chats in parallel, each chat's updates in order. Returns whether
        all were stored, and the offset that confirms exactly the updates before the first one
        that was not (later ones come again and are recognised as duplicates). An unreadable
        update counts as stored once it is skipped."""
        updates = batch.updates
        if not updates and not batch.unreadable:
            return True, offset
        failed: list[int] = await self._set_aside(batch.unreadable)

        async def chat(queue: Iterable[Update]) -> None:
            for update in queue:
                try:
                    await self.feed(update)
                except ServiceStopping:
                    failed.append(update.update_id)
                    return
                except Exception:
                    log.exception(
                        "Telegram update %s not stored; it will be fetched again", update.update_id
                    )
                    failed.append(update.update_id)
                    return

        by_chat: dict[str, list[Update]] = {}
        for update in updates:
            by_chat.setdefault(_chat_key(update), []).append(update)
        await asyncio.gather(*(chat(queue) for queue in by_chat.values()))
        if failed:
            return False, min(failed)
        return True, max([u.update_id for u in updates] + list(batch.unreadable)) + 1

    async def _forget_webhook(self) -> bool:
        """A bot with a webhook gets 409 from getUpdates: polling takes over from it."""
        try:
            await self.bot.delete_webhook(drop_pending_updates=False)
            return True
        except TelegramAPIError as exc:
            log.warning("Telegram deleteWebhook failed: %s", exc)
            return False

    async def _hold(self) -> bool:
        def hold() -> bool:
            with self.context.store.transaction() as tx:
                return tx.hold_lease(self.lease_name, self.worker, self.lease)

        try:
            return await self.context.in_store_pool(hold)
        except Exception:
            log.exception("could not renew the Telegram polling lease")
            return False

    async def _release(self) -> None:
        def let_go() -> None:
            with self.context.store.transaction() as tx:
                tx.let_go(self.lease_name, self.worker)

        try:
            await self.context.in_store_pool(let_go)
        except Exception:
            log.exception("could not give back the Telegram polling lease; it lapses by itself")

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _backoff(self, failures: int) -> float:
        return min(self.retry_seconds * 2.0 ** max(failures - 1, 0), 30.0)


def _chat_key(update: Update) -> str:
    """Updates of one chat are stored in order (a pick must follow its suggestions)."""
    for event in (update.message, update.edited_message):
        if event is not None:
            return str(event.chat.id)
    query = update.callback_query
    if query is not None:
        return str(query.message.chat.id if query.message else query.from_user.id)
    return f"update:{update.update_id}"
