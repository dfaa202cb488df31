"""The live stream of a visitor's conversation: Server-Sent Events.

Why SSE and not a WebSocket: the visitor's words go up as plain POSTs (answered once stored,
like every channel's), and only replies come down, which is all SSE does; it is plain HTTP that
proxies and corporate firewalls pass, and the browser's `EventSource` reconnects by itself,
sending the last event's id (`Last-Event-ID`), from which the stream replays what was missed.

The store is the source of truth, so a visitor's stream may be held by one worker while the
reply is decided, or typed by an agent, on another: the stream reads the visitor's lines after
its cursor (`ChannelStore.lines_after`: their messages and the replies delivered), and is woken
to read again by `Hub.wake` — on this worker by the sender right after it delivered a reply,
from any worker by PostgreSQL's NOTIFY on `channel_lines` (`Watch`), on SQLite by the worker
reading the other workers' versions once a second (woken all when one moved), and while
LISTEN is down by each stream reading once a second. Each event's id is the cursor after it
(`<last message id>-<last reply id>`), so a line is sent once per stream, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.store.channel_store import Line

log = logging.getLogger("adapters.webchat")

#: the payload prefix of this channel's NOTIFYs (`<channel>:<visitor>`)
CHANNEL_LINES = "channel_lines"


@dataclass(frozen=True)
class Cursor:
    """The last message in and the last reply out a stream has shown."""

    message_id: int = 0
    outbox_id: int = 0

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        """From an event id (`12-34`); anything else starts from the beginning."""
        first, dash, second = (text or "").strip().partition("-")
        # ids are the database's 64-bit keys: 18 digits at most here
        if dash and first.isdigit() and second.isdigit() and len(first) <= 18 >= len(second):
            return cls(int(first), int(second))
        return cls()

    def past(self, line: Line) -> Cursor:
        if line.direction == "in":
            return Cursor(max(self.message_id, line.id), self.outbox_id)
        return Cursor(self.message_id, max(self.outbox_id, line.id))

    def __str__(self) -> str:
        return f"{self.message_id}-{self.outbox_id}"


def line_json(line: Line) -> dict[str, object]:
    return {
        "direction": line.direction,
        "text": line.text,
        "choices": list(line.choices),
        "at": line.at.isoformat(),
    }


def event(cursor: Cursor, line: Line) -> bytes:
    data = json.dumps(line_json(line), ensure_ascii=False)
    return f"id: {cursor}\nevent: line\ndata: {data}\n\n".encode()


class Hub:
    """The streams open on this worker, by visitor, and what wakes them."""

    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Event]] = defaultdict(set)
        #: open streams by client address
        self._addresses: dict[str, int] = defaultdict(int)
        self.closed = False
        #: True while a LISTEN connection wakes the streams: they then need no polling
        self.listening = False

    def open_for(self, visitor: str, address: str) -> tuple[int, int]:
        """How many streams the visitor, and the client address, have open on this worker."""
        return len(self._waiting.get(visitor, ())), self._addresses.get(address, 0)

    def subscribe(self, visitor: str, address: str) -> asyncio.Event:
        woken = asyncio.Event()
        self._waiting[visitor].add(woken)
        self._addresses[address] += 1
        return woken

    def unsubscribe(self, visitor: str, address: str, woken: asyncio.Event) -> None:
        waiting = self._waiting.get(visitor)
        if waiting is not None:
            waiting.discard(woken)
            if not waiting:
                del self._waiting[visitor]
        self._addresses[address] -= 1
        if self._addresses[address] <= 0:
            del self._addresses[address]

    def wake(self, visitor: str) -> None:
        for woken in self._waiting.get(visitor, ()):
            woken.set()

    def wake_all(self) -> None:
        for waiting in self._waiting.values():
            for woken in waiting:
                woken.set()

    def close(self) -> None:
        """The worker is stopping: every stream ends (browsers reconnect to another worker)."""
        self.closed = True
        self.wake_all()

    @property
    def streams(self) -> int:
        return sum(len(waiting) for waiting in self._waiting.values())


class Watch:
    """What wakes this worker's streams when another worker wrote: one LISTEN connection on
    PostgreSQL, waking the streams of the visitor each NOTIFY names; on SQLite one read a
    second of the other workers' versions, waking every stream when one moved (one worker
    alone never does: its own writes wake its streams). While neither works
    (LISTEN lost), `Hub.listening` is False and each stream reads once a second itself."""

    def __init__(
        self,
        hub: Hub,
        channel: str,
        address: Callable[[], str | None],
        versions: Callable[[], Awaitable[dict[str, str]]],
        worker: str,
        poll_seconds: float = 1.0,
        relisten: float = 5.0,
    ) -> None:
        self._hub = hub
        self._prefix = f"{channel}:"
        self._address = address
        self._versions = versions
        self._own = worker
        self._poll_seconds = poll_seconds
        self._relisten = relisten
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        address = self._address()
        run = self._poll() if address is None else self._run(address)
        self._task = asyncio.create_task(run, name="webchat-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self) -> None:
        last: dict[str, str] | None = None
        failed = False
        while True:
            if self._hub.streams:
                try:
                    found = await self._versions()
                except Exception as exc:
                    if not failed:
                        log.warning("web chat: reading the workers' versions failed: %s", exc)
                    failed = True
                    self._hub.listening = False
                else:
                    failed = False
                    # this worker's own writes woke its streams already
                    others = {k: v for k, v in found.items() if not k.endswith(f":{self._own}")}
                    if last is not None and others != last:
                        self._hub.wake_all()
                    last = others
                    self._hub.listening = True
            await asyncio.sleep(self._poll_seconds)

    async def _run(self, address: str) -> None:
        while True:
            try:
                await self._listen(address)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "web chat: LISTEN %s failed (%s); streams poll for %.0f s",
                    CHANNEL_LINES,
                    type(exc).__name__,
                    self._relisten,
                )
            finally:
                self._hub.listening = False
            await asyncio.sleep(self._relisten)

    async def _listen(self, address: str) -> None:
        import psycopg

        async with await psycopg.AsyncConnection.connect(address, autocommit=True) as conn:
            await conn.execute(f"LISTEN {CHANNEL_LINES}")
            self._hub.listening = True
            self._hub.wake_all()  # whatever happened while nobody listened
            async for note in conn.notifies():
                if note.payload.startswith(self._prefix):
                    self._hub.wake(note.payload[len(self._prefix) :])
