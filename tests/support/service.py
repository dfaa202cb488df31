"""`bot run` and `bot chat` as processes (the installed command, a free port, readiness), and
the test client of the in-process application."""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient

#: the aiohttp test client of `bot run`'s application
AppClient = TestClient[web.Request, web.Application]

#: the webhook channel's secret (BOT_WEBHOOK_SECRET) in the service tests
SECRET = "test-secret-not-real"


def bot_command() -> str:
    """The installed `bot` console script, beside this Python or on the PATH."""
    beside = Path(sys.executable).with_name("bot")
    found = str(beside) if beside.is_file() else shutil.which("bot")
    assert found, "the `bot` console script is not installed (pip install -e .)"
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """`app` served on a free loopback port in this event loop: its runner (to clean up) and
    its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None and server.sockets  # type: ignore[attr-defined]
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return runner, f"http://127.0.0.1:{port}"


async def ready(session: aiohttp.ClientSession, port: int, seconds: float) -> dict[str, Any]:
    """The /readyz answer of the worker on `port` once it is ready; fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                if response.status == 200:
                    return dict(await response.json())
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"worker on port {port} not ready in {seconds}s")
