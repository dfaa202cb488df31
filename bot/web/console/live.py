"""Live updates: one watcher per worker notices that the desk changed and wakes every open
console of that worker, which then refreshes the parts of its page that show tickets.

On PostgreSQL the watcher LISTENs on channel `desk` (the desk NOTIFYs in the transaction of
every change, from whichever worker made it); if listening fails it polls instead and tries
again later. On SQLite, or without psycopg, it asks `Desk.version()` once a second in the store
pool, and only while a console is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Executor

from sqlalchemy.engine import URL

from bot.store.tickets import DESK_CHANNEL as CHANNEL

log = logging.getLogger("bot.web.console")


class DeskWatch:
    def __init__(
        self,
        version: Callable[[], str],
        pool: Executor,
        listen_url: URL | None = None,
        poll_seconds: float = 1.0,
        relisten_seconds: float = 30.0,
    ) -> None:
        self._version = version
        self._pool = pool
        self._listen_url = listen_url
        self._poll_seconds = poll_seconds
        self._relisten_seconds = relisten_seconds
        self._changed = asyncio.Condition()
        #: moves on every change seen; consoles remember the last one they showed
        self.counter = 0
        self.subscribers = 0
        self.closed = False
        self.listening = False
        self._last_version: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="console-live")

    async def close(self) -> None:
        """Wake every console so its stream ends (the worker is shutting down)."""
        self.closed = True
        await self._bump()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def subscribe(self) -> int:
        """A console connects; returns the counter to wait after. Its page was rendered before
        this moment, so the caller refreshes it once now; when polling, the version compared
        from now on is read here first, so nothing between that refresh and the next poll is
        missed. `unsubscribe` when the console goes."""
        self.subscribers += 1
        if not self.listening:
            loop = asyncio.get_running_loop()
            try:
                self._last_version = await loop.run_in_executor(self._pool, self._version)
            except Exception as exc:
                log.warning("console live updates: Desk.version() failed: %s", exc)
        return self.counter

    def unsubscribe(self) -> None:
        self.subscribers -= 1

    async def wait(self, after: int, timeout: float) -> bool:
        """True when something changed since `after` (now or within `timeout` seconds)."""
        async with self._changed:
            if self.counter != after or self.closed:
                return True
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.counter != after or self.closed), timeout
                )
            except TimeoutError:
                return False
        return True

    async def _bump(self) -> None:
        async with self._changed:
            self.counter += 1
            self._changed.notify_all()

    async def _run(self) -> None:
        if self._listen_url is None:
            await self._poll(None)
            return
        while not self.closed:
            try:
                await self._listen(self._listen_url)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a lost or refused connection: poll meanwhile
                log.warning(
                    "console live updates: LISTEN %s failed (%s: %s); polling for %.0f s",
                    CHANNEL,
                    type(exc).__name__,
                    exc,
                    self._relisten_seconds,
                )
            finally:
                self.listening = False
            await self._poll(self._relisten_seconds)

    async def _listen(self, url: URL) -> None:
        import psycopg

        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            self.listening = True
            await self._bump()  # whatever happened while nobody listened
            async for _ in conn.notifies():
                await self._bump()

    async def _poll(self, for_seconds: float | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = None if for_seconds is None else loop.time() + for_seconds
        failed = False
        while not self.closed and (deadline is None or loop.time() < deadline):
            if self.subscribers:
                try:
                    version = await loop.run_in_executor(self._pool, self._version)
                except Exception as exc:
                    if not failed:
                        log.warning("console live updates: Desk.version() failed: %s", exc)
                    failed = True
                else:
                    failed = False
                    if self._last_version is not None and version != self._last_version:
                        await self._bump()
                    self._last_version = version
            await asyncio.sleep(self._poll_seconds)
