"""A `bot run` process killed (SIGKILL) after a reply was written to the outbox and while it was
being sent: after a restart the reply is delivered, exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.content.config import load_config
from bot.store.database import Store
from bot.store.schema import outbox
from tests.support.service import SECRET, bot_command, free_port, ready

#: the `bot` processes started here find the content encoded (conftest `shop`)
pytestmark = pytest.mark.warm_content


ANSWER = "订单满 99 元包邮，不满收取 8 元运费。"


class StallingReceiver:
    """The platform's side: the first delivery never gets an answer (the worker is killed
    while it waits); later ones are recorded."""

    def __init__(self) -> None:
        self.first_seen = asyncio.Event()
        self.received: list[dict[str, Any]] = []
        self._never = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_post("/deliver", self.deliver)

    async def deliver(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not self.first_seen.is_set():
            self.first_seen.set()
            await self._never.wait()  # cut off when the worker dies: nothing was delivered
        self.received.append(body)
        return web.json_response({"ok": True})


@pytest.fixture
async def stalling() -> AsyncIterator[tuple[StallingReceiver, str]]:
    receiver = StallingReceiver()
    server = TestServer(receiver.app, host="127.0.0.1")
    await server.start_server()
    yield receiver, str(server.make_url("/deliver"))
    await server.close()


def _start(path: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [bot_command(), "--config", str(path), "run", "--port", str(port)],
        env={**os.environ, "BOT_WEBHOOK_SECRET": SECRET},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
async def test_a_worker_killed_mid_send_delivers_after_restart_exactly_once(
    shop: Path, stalling: tuple[StallingReceiver, str]
) -> None:
    receiver, url = stalling
    path = shop / "config.toml"
    text = path.read_text(encoding="utf-8").replace(
        "[service]", "[service]\nsend_lease_seconds = 5"
    )
    if "[service]" not in text:
        text += "\n[service]\nsend_lease_seconds = 5\n"
    path.write_text(
        text + f'\n[channels.webhook]\nenabled = true\ndeliver_url = "{url}"\n', encoding="utf-8"
    )
    port = free_port()
    worker = _start(path, port)
    try:
        async with aiohttp.ClientSession() as session:
            await ready(session, port, 120)
            async with session.post(
                f"http://127.0.0.1:{port}/channels/webhook/messages",
                json={"id": "k1", "user": "kim", "text": "运费多少"},
                headers={"Authorization": f"Bearer {SECRET}"},
            ) as response:
                assert response.status == 200  # decided: the reply is in the outbox
            await asyncio.wait_for(receiver.first_seen.wait(), 30)  # being sent …
            worker.send_signal(signal.SIGKILL)  # … and the worker dies mid-send
            assert await asyncio.get_running_loop().run_in_executor(None, worker.wait, 10) == (
                -signal.SIGKILL
            )
            store = Store(load_config(path).storage_url)
            with store.engine.connect() as conn:
                rows = conn.execute(
                    sa.select(outbox.c.status, outbox.c.leased_by, outbox.c.text).order_by(
                        outbox.c.id
                    )
                ).all()
            store.close()
            # the answer (and, after hours, the notice), held by the dead worker
            assert rows[0].text == ANSWER
            assert all(r.status == "unsent" and r.leased_by for r in rows)

            worker = _start(path, port)
            await ready(session, port, 120)
            deadline = time.monotonic() + 30
            while len(receiver.received) < len(rows) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)  # room for a second delivery, which must not come
        assert [r["text"] for r in receiver.received] == [r.text for r in rows]  # once, in order
        store = Store(load_config(path).storage_url)
        with store.engine.connect() as conn:
            statuses = conn.execute(sa.select(outbox.c.status)).scalars().all()
        store.close()
        assert statuses == ["sent"] * len(rows)
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
