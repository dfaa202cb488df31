"""The dispatcher: sends what handling wrote to the outbox, on every worker.

It claims due rows (see bot.store.outbox.claim: per-conversation order, no row claimed twice)
and sends each conversation's rows in order, one at a time, in a task of its own: a chat that
must wait (Telegram's 20 messages a minute to a group, a request that hangs until its timeout)
delays only itself, and the dispatcher claims again whenever a conversation finishes or
something new is written, leaving out the conversations it is still sending. The rows a
conversation holds have their lease renewed while it runs, so another worker never takes them
over from a worker that is only waiting; a worker that dies stops renewing and its rows are
claimed elsewhere when the lease ends.

Failures are sorted three ways: passing (retried with exponential backoff, up to
`max_attempts`), "retry after N seconds" (the channel's own wait is honoured), and permanent
(blocked by the customer, quota or reply window spent: the conversation's unsent replies fail
and it is marked unreachable, visible to agents). Database calls run in the store's thread
pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
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

#: conversations claimed in one claim, at most
CLAIM_CONVERSATIONS = 50
#: seconds between tries to mark a sent reply sent while the database refuses: first, most
MARK_FIRST_WAIT = 0.2
MARK_MOST_WAIT = 5.0


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
        most_conversations: int = 200,
    ) -> None:
        """`most_conversations`: how many conversations this worker sends to at once; the rest
        wait in the outbox for the next free place here or on another worker."""
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
        self.most_conversations = most_conversations
        #: replies sent at about the same time are marked sent in one transaction (one commit,
        #: one fsync) instead of one each
        self._marking: MicroBatcher[int, None] = MicroBatcher(self._mark_sent, executor, 256)
        self._wake = asyncio.Event()
        self._stopping = False
        #: conversation id → the task sending its rows, and the ids of the rows it still holds
        self._sending: dict[int, asyncio.Task[None]] = {}
        self._held: dict[int, list[int]] = {}
        self._renewed_at = 0.0

    def wake(self) -> None:
        """Something was just written to the outbox: look now rather than at the next poll."""
        self._wake.set()

    def backoff(self, attempts: int) -> float:
        """Seconds before the next try after `attempts` passing failures: 2, 4, 8 … 600."""
        return float(min(self.first_backoff * 2 ** max(attempts - 1, 0), self.max_backoff))

    async def run(self) -> None:
        """Send until stopped; survives database and channel errors. Once `finish` is called,
        it stops when nothing is being sent and a claim finds nothing due."""
        try:
            while True:
                self._wake.clear()
                try:
                    started = await self._start_due()
                    await self._keep_leases()
                except Exception:
                    log.exception("dispatcher round failed; trying again shortly")
                    started = []
                if self._stopping and not started and not self._sending:
                    return
                if not started:
                    await self._idle()
        finally:
            await self._cancel_all()

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
        """One round: claim what is due, send it and wait until it is sent; returns how many
        rows were handled."""
        started = await self._start_due()
        await asyncio.gather(*(task for task, _ in started))
        return sum(count for _, count in started)

    async def _start_due(self) -> list[tuple[asyncio.Task[None], int]]:
        """Claim what is due in conversations this worker is not sending to yet, and start one
        task per conversation; returns them, with how many rows each holds."""
        room = self.most_conversations - len(self._sending)
        if not self.senders or room <= 0:
            return []
        rows = await self._db(self._claim, list(self._sending), min(room, CLAIM_CONVERSATIONS))
        started = []
        for conversation_id, group in groupby(rows, key=lambda r: r.conversation_id):
            mine = list(group)
            self._held[conversation_id] = [r.id for r in mine]
            task = asyncio.create_task(self._send_conversation(mine))
            self._sending[conversation_id] = task
            task.add_done_callback(functools.partial(self._done, conversation_id))
            started.append((task, len(mine)))
        return started

    def _done(self, conversation_id: int, task: asyncio.Task[None]) -> None:
        self._sending.pop(conversation_id, None)
        self._held.pop(conversation_id, None)
        if not task.cancelled() and task.exception() is not None:
            # its rows stay leased, so they are tried again (here or elsewhere) when it ends
            log.error(
                "sending to conversation %s failed", conversation_id, exc_info=task.exception()
            )

    async def _idle(self) -> None:
        """Until something is written, a conversation finishes, a lease needs renewing or the
        poll interval passes."""
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait(
                [woken, *self._sending.values()],
                timeout=min(self.poll_seconds, self._renew_every()),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            woken.cancel()

    async def _cancel_all(self) -> None:
        tasks = list(self._sending.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _renew_every(self) -> float:
        return max(self.lease.total_seconds() / 3, 0.05)

    async def _keep_leases(self) -> None:
        """Renew the lease of the rows this worker holds, a third of a lease at a time: a row
        waiting for its chat (a group's 20 a minute) or behind a slow request is still being
        sent, and no other worker may take it."""
        now = time.monotonic()
        if now - self._renewed_at < self._renew_every():
            return
        self._renewed_at = now
        held = [row_id for ids in self._held.values() for row_id in ids]
        if not held:
            return
        lost = await self._db(self._renew, held)
        for conversation_id, ids in list(self._held.items()):
            if lost.intersection(ids) and conversation_id in self._sending:
                # another worker has these rows now: sending them here too would send twice
                log.warning(
                    "conversation %s: lease lapsed and another worker took its replies",
                    conversation_id,
                )
                self._sending[conversation_id].cancel()

    def _claim(self, busy: list[int], conversations_at_most: int) -> list[UnsentOutbound]:
        with self.store.transaction() as tx:
            rows = outbox.claim(
                tx,
                self.clock.now(),
                self.worker,
                self.lease,
                self.senders,
                self.reply_windows,
                limit=conversations_at_most,
                quotas=self.reply_quotas,
                busy=busy,
            )
        return sorted(rows, key=lambda r: (r.conversation_id, r.id))

    def _renew(self, ids: list[int]) -> set[int]:
        """Renews what is still this worker's; returns the rows another worker took meanwhile."""
        with self.store.transaction() as tx:
            outbox.renew(tx, ids, self.worker, self.clock.now() + self.lease)
            return outbox.taken(tx, ids, self.worker)

    async def _send_conversation(self, rows: list[UnsentOutbound]) -> None:
        for index, row in enumerate(rows):
            sender = self.senders[row.channel]
            message = row.outbound()
            rest = [r.id for r in rows[index + 1 :]]
            self._held[row.conversation_id] = [row.id, *rest]
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
            await self._marked(row.id)
            MESSAGES_OUT.labels(row.channel, "dispatcher").inc()

    async def _marked(self, row_id: int) -> None:
        """Mark a reply sent, trying until the database takes it: the customer has it, and a
        row left unmarked would be sent a second time when its lease ends (the database
        restarting, the disk full for a moment). The lease is renewed meanwhile."""
        wait = MARK_FIRST_WAIT
        while True:
            try:
                await self._marking.submit(row_id)
                return
            except Exception as exc:
                log.warning(
                    "outbox %s was sent but not marked sent (%s); trying again in %.1f s",
                    row_id,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                    wait,
                )
            await asyncio.sleep(wait)
            wait = min(wait * 2, MARK_MOST_WAIT)

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
