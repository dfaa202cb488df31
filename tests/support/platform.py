"""The platform's side of the webhook channel under faults: customers who send their messages
one after another and resend what got no 200 (as a platform retries), a receiver that records
every reply delivered, and `bot run` workers whose log is read while they run.

Used by tests/test_faults.py, which kills workers, restarts PostgreSQL and fills the disk under
this load, then counts what was sent, accepted (200), answered and doubled.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.service import SECRET, bot_command

#: what each customer says, in order (fewer than the fixture shop's flood limit)
TEXTS = ("你好", "运费多少", "可以开发票吗", "今天天气怎么样", "谢谢")


class Receiver:
    """The platform's delivery endpoint: records every reply, duplicates included."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.app = web.Application()
        self.app.router.add_post("/deliver", self.deliver)

    async def deliver(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {SECRET}":
            return web.Response(status=401)
        self.received.append(await request.json())
        return web.json_response({"ok": True})


@asynccontextmanager
async def receiving() -> AsyncIterator[tuple[Receiver, str]]:
    """A receiver on a free loopback port, and its deliver_url."""
    receiver = Receiver()
    server = TestServer(receiver.app, host="127.0.0.1")
    await server.start_server()
    try:
        yield receiver, str(server.make_url("/deliver"))
    finally:
        await server.close()


@dataclass
class Load:
    """What the customers sent: per message id, the status of every attempt (0: no answer,
    the connection was refused or cut)."""

    attempts: dict[str, list[int]] = field(default_factory=dict)
    #: message ids in the order each customer sent them
    order: dict[str, list[str]] = field(default_factory=dict)

    @property
    def accepted(self) -> list[str]:
        """The messages that finally got a 200."""
        return [m for m, seen in self.attempts.items() if seen and seen[-1] == 200]

    @property
    def refused(self) -> int:
        """Attempts that got something else than 200 (each resent)."""
        return sum(1 for seen in self.attempts.values() for status in seen if status != 200)


async def customers(
    session: aiohttp.ClientSession,
    ports: Callable[[int], Sequence[int]],
    count: int,
    *,
    texts: Sequence[str] = TEXTS,
    pause: float = 0.05,
    give_up_after: float = 120.0,
    prefix: str = "c",
    load: Load | None = None,
) -> Load:
    """`count` customers, each sending `texts` one after another; message i of customer n goes
    to the first of `ports(n + i)` (the next on each resend), and anything but a 200 is resent
    (the same id) after a short wait, as a platform retries, until `give_up_after`. Pass a
    `load` to watch it fill while they send."""
    load = load if load is not None else Load()
    auth = {"Authorization": f"Bearer {SECRET}"}

    async def customer(n: int) -> None:
        user = f"{prefix}{n}"
        load.order[user] = []
        for i, text in enumerate(texts):
            message_id = f"{user}-{i}"
            load.order[user].append(message_id)
            seen = load.attempts.setdefault(message_id, [])
            ends = time.monotonic() + give_up_after
            attempt = 0
            while time.monotonic() < ends:
                choices = ports(n + i)
                port = choices[attempt % len(choices)]
                attempt += 1
                try:
                    async with session.post(
                        f"http://127.0.0.1:{port}/channels/webhook/messages",
                        json={"id": message_id, "user": user, "text": text},
                        headers=auth,
                        timeout=aiohttp.ClientTimeout(total=30),
                    ) as response:
                        await response.read()
                        seen.append(response.status)
                except (aiohttp.ClientError, TimeoutError):
                    seen.append(0)
                if seen[-1] == 200:
                    break
                await asyncio.sleep(0.3)
            await asyncio.sleep(pause)

    await asyncio.gather(*(customer(n) for n in range(count)))
    return load


class Worker:
    """One `bot run` process; its stderr is read as it comes (a full pipe would stall it)."""

    def __init__(
        self,
        config: Path,
        port: int,
        env: dict[str, str] | None = None,
        preexec: Callable[[], None] | None = None,
    ) -> None:
        self.port = port
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [bot_command(), "--config", str(config), "run", "--port", str(port)],
            env={**os.environ, "BOT_WEBHOOK_SECRET": SECRET, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=preexec,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.decode(errors="replace"))

    @property
    def log(self) -> str:
        return "".join(self.lines)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def wait(self, seconds: float) -> int:
        """Its exit code, waited for without blocking the loop (the receiver runs on it)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.process.wait, seconds)

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop within 30 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                await self.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await self.wait(10)
        self._reader.join(5)
