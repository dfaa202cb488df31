"""Replies delivered and messages announced, written together: what arrives while one write is
under way goes in the next one, so a busy worker makes one transaction (one commit, one fsync on
SQLite) for many visitors instead of one each. Once written, the visitors' streams on this
worker are woken; the other workers' are woken by the announcement (`stream.py`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection

from adapters.webchat.stream import Hub

Write = Callable[[Collection[int], Collection[str]], Awaitable[None]]


class Deliveries:
    def __init__(self, write: Write, hub: Hub) -> None:
        self._write = write
        self._hub = hub
        self._waiting: list[tuple[int | None, str, asyncio.Future[None]]] = []
        self._writing: asyncio.Task[None] | None = None

    async def deliver(self, outbox_id: int | None, visitor: str) -> None:
        """Mark the reply (`outbox_id`; None: nothing to mark) delivered and announce the
        visitor; returns once written, raises what the write raised."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((outbox_id, visitor, done))
        if self._writing is None:
            self._writing = asyncio.create_task(self._write_all())
        await done

    async def _write_all(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                ids = [outbox_id for outbox_id, _, _ in batch if outbox_id is not None]
                visitors = {visitor for _, visitor, _ in batch}
                try:
                    await self._write(ids, visitors)
                except Exception as exc:
                    for _, _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                for visitor in visitors:
                    self._hub.wake(visitor)
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(None)
        finally:
            self._writing = None
