"""The message service: what a channel calls with each inbound message.

accept (thread pool) → read (micro-batched, its own thread) → decide under the customer's
lock (thread pool) → the replies are either returned to a channel that waits for them (WeChat's
passive reply, within its 5 s) or left to the dispatcher. The event loop never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from bot.domain.messages import Action, Decision, Inbound, Outbound
from bot.pipeline.batching import MicroBatcher
from bot.pipeline.context import Context
from bot.pipeline.knowledge import Reading
from bot.pipeline.runner import Decidable, Pipeline
from bot.telemetry.instruments import DECISIONS, MESSAGES_IN, MESSAGES_OUT, PIPELINE_SECONDS

log = logging.getLogger("bot.service")

T = TypeVar("T")

#: how often a waiting retry looks again for the replies of the delivery it repeats
RETRY_LOOK_SECONDS = 0.05
#: the least time the replies a retry takes are held for it, to write its response
RETRY_HOLD_SECONDS = 1.0


@dataclass
class Outcome:
    """What became of one message. `inline`: the replies are held for the channel, which must
    call `MessageService.confirm_inline` once it has written them in its response, or
    `release_inline` when it could not (else the dispatcher sends them when the hold ends).
    `unfinished`: handling was not done within the channel's wait; it goes on, and the
    dispatcher delivers (the webhook channel's JSON calls this `pending`)."""

    decision: Decision | None = None
    replies: list[Outbound] = field(default_factory=list)
    inline: bool = False
    unfinished: bool = False
    context: Context | None = None

    def joined(self, separator: str = "\n\n") -> str:
        """All the replies as one text, for a channel that can answer only once inline
        (WeChat's passive reply takes a single message)."""
        return separator.join(reply.text for reply in self.replies)


class ServiceStopping(Exception):
    """The worker is shutting down and takes no new messages (the channel answers 503)."""


class NotHandled(Exception):
    """The message could not be stored or decided now (the database unreachable or
    restarting, the disk taking no writes), or it repeats one not decided yet: the channel must
    not acknowledge it (the webhook answers 503), so that the platform sends it again. What
    was acknowledged is always stored and answered."""


class MessageService:
    def __init__(
        self,
        pipeline: Pipeline,
        store_executor: Executor,
        reading_executor: Executor,
        on_written: Callable[[], None] = lambda: None,
        batch_max: int = 128,
        batch_wait: float = 0.0,
    ) -> None:
        self.pipeline = pipeline
        self.store_executor = store_executor
        self.on_written = on_written
        #: concurrent messages share a transaction to be stored, an encoder call to be read
        #: and a transaction (holding all their customers' locks) to be decided
        self.accepting_batch: MicroBatcher[Inbound, Context] = MicroBatcher(
            lambda inbounds: self.pipeline.accept_many(inbounds), store_executor, batch_max
        )
        self.reading_batch: MicroBatcher[Context, Reading] = MicroBatcher(
            lambda contexts: self.pipeline.read_accepted(contexts),
            reading_executor,
            batch_max,
            batch_wait,
        )
        self.deciding_batch: MicroBatcher[Decidable, Context] = MicroBatcher(
            lambda items: self.pipeline.decide_many(items), store_executor, batch_max
        )
        self.accepting = True
        self._tasks: set[asyncio.Task[Context]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def handle(self, inbound: Inbound, wait: float | None = None) -> Outcome:
        """Handle one message. With `wait`, the replies come back inline if they are ready
        within that many seconds; without, this returns once the decision is written. A
        retried delivery with `wait` gets the first delivery's replies still unsent (its
        client went away before they were written), each either here or from the dispatcher."""
        if not self.accepting:
            raise ServiceStopping()
        loop = asyncio.get_running_loop()
        ends = loop.time() + (wait or 0.0)
        deadline = self.pipeline.clock.now() + timedelta(seconds=wait) if wait else None
        task = asyncio.create_task(self._process(inbound, deadline))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if wait is None:
            ctx = await task
            if ctx.first_undecided:
                raise NotHandled("its first delivery is not decided yet: send it again later")
            return Outcome(ctx.decision, ctx.outbound, False, False, ctx)
        try:
            ctx = await asyncio.wait_for(asyncio.shield(task), wait)
        except TimeoutError:
            return Outcome(unfinished=True)
        except asyncio.CancelledError:
            # the channel's request was cancelled (a server that cancels the request of a
            # client gone away): nobody will write these replies
            task.add_done_callback(self._give_back_unwritten)
            raise
        if ctx.decision is not None and ctx.decision.action == Action.DUPLICATE:
            return await self._retried(ctx, ends)
        inline = bool(ctx.outbound) and ctx.inline_until is not None
        return Outcome(ctx.decision, ctx.outbound, inline, False, ctx)

    async def confirm_inline(self, outcome: Outcome) -> None:
        """The channel wrote the replies in its response: they count as sent (inline)."""
        replies = outcome.replies
        if outcome.inline and replies:
            await self._run(lambda: self.pipeline.confirm_inline(replies))
            MESSAGES_OUT.labels(replies[0].channel, "inline").inc(len(replies))

    async def release_inline(self, outcome: Outcome) -> None:
        """The channel could not write the replies (its client went away): the dispatcher
        sends them, unless a retry of the same message takes them first."""
        replies = outcome.replies
        if outcome.inline and replies:
            await self._run(lambda: self.pipeline.give_back(replies))
            log.info(
                "%d inline repl(ies) in conversation %s not written; given back",
                len(replies),
                replies[0].conversation_id,
            )

    def _give_back_unwritten(self, task: asyncio.Task[Context]) -> None:
        """Once decided, the replies held for a request that was cancelled are free at once
        (for a retry of the same message, or the dispatcher) instead of when the hold ends."""
        if task.cancelled() or task.exception() is not None:
            return
        ctx = task.result()
        if ctx.outbound and ctx.inline_until is not None:
            with contextlib.suppress(RuntimeError):  # the pool is closed: the worker is stopping
                self.store_executor.submit(self._give_back_logged, list(ctx.outbound))

    def _give_back_logged(self, replies: list[Outbound]) -> None:
        try:
            self.pipeline.give_back(replies)
        except Exception:
            log.exception("held replies not given back; the dispatcher sends them later")

    async def _retried(self, ctx: Context, ends: float) -> Outcome:
        """Look for the first delivery's unsent replies until the wait `ends` (loop time):
        they may not be written yet, or still held by the first request."""
        loop = asyncio.get_running_loop()
        while True:
            left = max(ends - loop.time(), 0.0)
            # held at least long enough to write the response, even at the end of the wait
            until = self.pipeline.clock.now() + timedelta(seconds=max(left, RETRY_HOLD_SECONDS))
            replies, more = await self._run(
                functools.partial(self.pipeline.take_for_retry, ctx.inbound, until)
            )
            if replies:
                return Outcome(ctx.decision, replies, True, False, ctx)
            if not more or left <= RETRY_LOOK_SECONDS:
                return Outcome(ctx.decision, [], False, more, ctx)
            await asyncio.sleep(RETRY_LOOK_SECONDS)

    async def drain(self, timeout: float) -> None:
        """Stop taking messages and let the ones in flight finish (SIGTERM)."""
        self.accepting = False
        if self._tasks:
            log.info("finishing %d message(s) in flight", len(self._tasks))
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def _process(self, inbound: Inbound, deadline: datetime | None) -> Context:
        pipeline = self.pipeline
        started = time.monotonic()
        try:
            ctx = await self.accepting_batch.submit(inbound)
        except Exception as exc:
            raise self._not_handled(inbound, "not stored", exc) from exc
        if ctx.stop:
            return ctx
        MESSAGES_IN.labels(inbound.channel).inc()
        try:
            reading = await self.reading_batch.submit(ctx)
        except Exception:
            log.exception("message %s/%s could not be read", inbound.channel, inbound.external_id)
            await self._run(lambda: pipeline.answer_after_error(ctx))
        else:
            now = pipeline.clock.now()
            hold = deadline if deadline is not None and deadline > now else None
            await self.deciding_batch.submit((ctx, reading, hold))
        if ctx.decision is None and not ctx.stop:
            # neither decided nor answered after the error: the database went away meanwhile
            raise self._not_handled(inbound, "stored but not decided", None)
        if ctx.outbound and ctx.inline_until is None:
            self.on_written()
        if ctx.decision is not None:
            DECISIONS.labels(ctx.decision.action.value).inc()
        PIPELINE_SECONDS.observe(time.monotonic() - started)
        return ctx

    def _not_handled(self, inbound: Inbound, what: str, exc: BaseException | None) -> NotHandled:
        """The channel's answer for a message that could not be handled now, logged without
        the statement and its parameters (only the driver's first line)."""
        problem = self.pipeline.store.trouble or (
            str(exc).splitlines()[0] if exc is not None and str(exc) else "the database failed"
        )
        log.warning(
            "message %s/%s %s: %s; the channel asks for it again",
            inbound.channel,
            inbound.external_id,
            what,
            problem,
        )
        return NotHandled(f"{what}: {problem}; send it again")

    async def _run(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.store_executor, call)
