"""Micro-batching: concurrent messages share one call.

Encoding 32 texts at once costs little more than encoding one, and deciding 32 messages in one
transaction costs one commit instead of 32. Under load the service hands over whatever has
arrived while the previous batch was busy, in one call. A lone message is not held back: when
nothing is running, the batch starts on the next turn of the event loop (plus `max_wait`, 0 by
default), so idle latency stays what it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """Runs `work` on batches of submitted items in `executor`, one batch at a time."""

    def __init__(
        self,
        work: Callable[[Sequence[T]], list[R]],
        executor: Executor,
        max_size: int = 64,
        max_wait: float = 0.0,
    ) -> None:
        self.work = work
        self.executor = executor
        self.max_size = max_size
        self.max_wait = max_wait
        self._submitted: list[tuple[T, asyncio.Future[R]]] = []
        self._running = False
        self._timer: asyncio.Handle | None = None
        #: sizes of the batches run so far (for the benchmark and tests)
        self.sizes: list[int] = []

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._submitted.append((item, future))
        if not self._running:
            if len(self._submitted) >= self.max_size:
                self._start(loop)
            elif self._timer is None:
                self._timer = (
                    loop.call_later(self.max_wait, self._start, loop)
                    if self.max_wait
                    else loop.call_soon(self._start, loop)
                )
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._running or not self._submitted:
            return
        batch, self._submitted = self._submitted[: self.max_size], self._submitted[self.max_size :]
        self._running = True
        self.sizes.append(len(batch))
        task = loop.run_in_executor(self.executor, self.work, [item for item, _ in batch])
        task.add_done_callback(lambda done: self._finish(loop, batch, done))

    def _finish(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[T, asyncio.Future[R]]],
        done: asyncio.Future[list[R]],
    ) -> None:
        self._running = False
        error = done.exception()
        results = None if error else done.result()
        for n, (_, future) in enumerate(batch):
            if future.done():
                continue
            if error is not None or results is None:
                future.set_exception(error or RuntimeError("no result"))
            else:
                future.set_result(results[n])
        if self._submitted:  # submitted while this batch ran: go at once
            self._start(loop)
