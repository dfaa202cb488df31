"""The dispatcher: sends what handling wrote to the outbox, on every worker.

It claims due rows (see bot.store.outbox.claim: per-conversation order, no row claimed twice),
sends each conversation's rows in order through the channel's sender, and sorts failures three
ways: passing (retried with exponential backoff, up to `max_attempts`), "retry after N seconds"
(the channel's own wait is honoured), and permanent (blocked by the customer, quota or reply
window spent: the conversation's unsent replies fail and it is marked unreachable, visible to
agents). Database calls run in the store's thread pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from datetime import timedelta
from itertools import groupby
from typing import TypeVar

from bot.domain.clock import Clock
from bot.domain.delivery import PermanentFailure, RetryAfter, Sender, UnsentOutbound
from bot.domain.privacy import safe_for_logs
from bot.pipeline.batching import MicroBatcher
from bot.store import conversations, outbox
from bot.store.database import Store
from bot.telemetry.instruments import DISPATCH_FAILURES, DISPATCH_RETRIES, MESSAGES_OUT

log = logging.getLogger("bot.dispatch")

T = TypeVar("T")


class Dispatcher:
    def __init__(
        self,
        store: Store,
        senders: Mapping[str, Sender],
        clock: Clock,
        worker: str,
        executor: Executor,
        reply_windows: Mapping[str, float] | None = None,
        reply_quotas: Mapping[str, int] | None = None,
        *,
        lease: timedelta = timedelta(seconds=60),
        max_attempts: int = 8,
        first_backoff: float = 2.0,
        max_backoff: float = 600.0,
        poll_seconds: float = 0.5,
    ) -> None:
        self.store = store
        self.senders = dict(senders)
        self.clock = clock
        self.worker = worker
        self.executor = executor
        self.reply_windows = dict(reply_windows or {})
        self.reply_quotas = dict(reply_quotas or {})
        self.lease = lease
        self.max_attempts = max_attempts
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self.poll_seconds = poll_seconds
        #: replies sent at about the same time are marked sent in one transaction (one commit,
        #: one fsync) instead of one each
        self._marking: MicroBatcher[int, None] = MicroBatcher(self._mark_sent, executor, 256)
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """Something was just written to the outbox: look now rather than at the next poll."""
        self._wake.set()

    def backoff(self, attempts: int) -> float:
        """Seconds before the next try after `attempts` passing failures: 2, 4, 8 … 600."""
        return float(min(self.first_backoff * 2 ** max(attempts - 1, 0), self.max_backoff))

    async def run(self) -> None:
        """Send until stopped; survives database and channel errors. Once `finish` is called,
        it stops at the first round that finds nothing due."""
        while True:
            try:
                sent = await self.run_once()
            except Exception:
                log.exception("dispatcher round failed; trying again shortly")
                sent = 0
            if self._stopping and not sent:
                return
            if sent:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def finish(self, task: asyncio.Task[None], timeout: float) -> None:
        """Shutting down: send what is due (within `timeout`), then give back to the other
        workers whatever this one still holds."""
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(task, timeout)
        except TimeoutError:
            log.warning("dispatcher stopped with replies still due; other workers will send them")
        await self._db(self._let_go)

    def _let_go(self) -> None:
        with self.store.transaction() as tx:
            outbox.release_worker(tx, self.worker)

    async def run_once(self) -> int:
        """One round: claim what is due and send it; returns how many rows were handled."""
        if not self.senders:
            return 0
        rows = await self._db(self._claim)
        if not rows:
            return 0
        await asyncio.gather(
            *(
                self._send_conversation(list(group))
                for _, group in groupby(rows, key=lambda r: r.conversation_id)
            )
        )
        return len(rows)

    def _claim(self) -> list[UnsentOutbound]:
        with self.store.transaction() as tx:
            rows = outbox.claim(
                tx,
                self.clock.now(),
                self.worker,
                self.lease,
                self.senders,
                self.reply_windows,
                quotas=self.reply_quotas,
            )
        return sorted(rows, key=lambda r: (r.conversation_id, r.id))

    async def _send_conversation(self, rows: list[UnsentOutbound]) -> None:
        for index, row in enumerate(rows):
            sender = self.senders[row.channel]
            message = row.outbound()
            rest = [r.id for r in rows[index + 1 :]]
            # what a channel raised is stored as the row's last error, without credentials a
            # library quoted from a URL or personal data (safe_for_logs)
            try:
                await sender.send(message)
            except PermanentFailure as exc:
                log.warning(
                    "conversation %s unreachable on %s: %s", row.conversation_id, row.channel, exc
                )
                DISPATCH_FAILURES.labels(row.channel, "unreachable").inc()
                await self._db(self._fail, row, safe_for_logs(str(exc)))
                return
            except RetryAfter as exc:
                wait = max(exc.seconds, 0.0)
                log.info("%s asks to wait %.1f s (outbox %s)", row.channel, wait, row.id)
                DISPATCH_RETRIES.labels(row.channel, "retry_after").inc()
                await self._db(self._later, row, wait, safe_for_logs(str(exc)), rest)
                return
            except Exception as exc:
                attempts = row.attempts + 1
                if attempts >= self.max_attempts:
                    log.error("outbox %s: giving up after %d attempts: %r", row.id, attempts, exc)
                    DISPATCH_FAILURES.labels(row.channel, "attempts").inc()
                    await self._db(self._give_up, row, safe_for_logs(repr(exc)))
                    continue
                wait = self.backoff(attempts)
                log.warning("outbox %s: send failed (%r); retry in %.0f s", row.id, exc, wait)
                DISPATCH_RETRIES.labels(row.channel, "error").inc()
                await self._db(self._later, row, wait, safe_for_logs(repr(exc)), rest)
                return
            await self._marking.submit(row.id)
            MESSAGES_OUT.labels(row.channel, "dispatcher").inc()

    # --- database calls (run in the executor) ----------------------------------------------

    def _mark_sent(self, ids: Sequence[int]) -> list[None]:
        with self.store.transaction() as tx:
            outbox.mark_sent(tx, ids, self.clock.now())
        return [None] * len(ids)

    def _later(self, row: UnsentOutbound, wait: float, error: str, rest: list[int]) -> None:
        with self.store.transaction() as tx:
            outbox.retry_later(tx, row.id, self.clock.now() + timedelta(seconds=wait), error)
            outbox.release(tx, rest)

    def _give_up(self, row: UnsentOutbound, error: str) -> None:
        with self.store.transaction() as tx:
            outbox.give_up(tx, row.id, f"gave up after {self.max_attempts} attempts: {error}")

    def _fail(self, row: UnsentOutbound, reason: str) -> None:
        with self.store.transaction() as tx:
            outbox.fail_conversation(tx, row.conversation_id, reason)
            conversations.mark_unreachable(tx, row.conversation_id, reason)

    async def _db(self, call: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, call, *args)
