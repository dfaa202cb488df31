"""Two workers of `bot run` on one database (PostgreSQL, and a SQLite file), each serving the
web chat: a visitor's stream held by worker A receives the replies to messages sent through
worker B, and an agent's reply sent through worker B's desk, exactly once and in order; a second
stream on worker B sees the same lines in the same order, and the history agrees with both."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from adapters.webchat import WebchatChannel
from bot.content.config import Config, WebchatChannelConfig
from bot.domain.agent import Role
from bot.domain.clock import FixedClock
from bot.humans.desk import Desk
from bot.pipeline.knowledge import Knowledge
from bot.pipeline.runner import Pipeline
from bot.store import agents
from bot.store.database import Store
from bot.web.app import Parts, make_app, make_runner
from bot.web.auth import hash_password
from tests.support.service import free_port
from tests.support.shop import at
from tests.support.webchat import Stream

SECRET = "webchat-workers-secret-not-real-0123456"
#: well under the 15 s a listening stream waits between reads when nothing wakes it: a line that
#: arrives within this was announced across workers, not found by a stream reading on its own
WOKEN_SECONDS = 8.0


@dataclass
class Worker:
    url: str
    pipeline: Pipeline
    channel: WebchatChannel


@asynccontextmanager
async def worker(
    config: Config, knowledge: Knowledge, store_url: str, clock: FixedClock
) -> AsyncIterator[Worker]:
    store = Store(store_url)
    store.migrate()
    pipeline = Pipeline(config, store, knowledge, clock)
    channel = WebchatChannel(WebchatChannelConfig(enabled=True), SECRET)
    runner = make_runner(make_app(Parts(pipeline, [channel], run_scheduler=False)), 2.0)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield Worker(f"http://127.0.0.1:{port}", pipeline, channel)
    finally:
        await runner.cleanup()
        store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One database both workers share: a SQLite file (two workers on one machine, woken by
    each reading the channel's version) or PostgreSQL (woken by LISTEN/NOTIFY)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/workers.sqlite3"
    return str(request.getfixturevalue("postgres_url"))


async def test_a_stream_on_one_worker_gets_what_another_decided_once_in_order(
    config: Config, shop_knowledge: Knowledge, store_url: str
) -> None:
    clock = FixedClock(at("2026-11-24 10:00"))
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(worker(config, shop_knowledge, store_url, clock))
        b = await stack.enter_async_context(worker(config, shop_knowledge, store_url, clock))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        with b.pipeline.store.transaction() as tx:
            agent = agents.add(
                tx, "mei", "王美", Role.AGENT, hash_password("pw pw pw pw"), clock.now()
            )

        async with http.post(f"{a.url}/webchat/visitor", json={}) as response:
            token = (await response.json())["token"]
        on_a = Stream(
            await http.get(f"{a.url}/webchat/stream", params={"token": token}, timeout=None)
        )
        on_b = Stream(
            await http.get(f"{b.url}/webchat/stream", params={"token": token}, timeout=None)
        )
        headers = {"X-Webchat-Token": token}

        async def say(target: Worker, message_id: str, text: str) -> None:
            async with http.post(
                f"{target.url}/webchat/messages",
                json={"id": message_id, "text": text},
                headers=headers,
            ) as response:
                assert response.status == 202, await response.text()

        await say(b, "m1", "运费多少")
        await on_a.until(lambda line: "99 元包邮" in line["text"], WOKEN_SECONDS)
        assert a.channel.hub.listening and b.channel.hub.listening

        await say(b, "m2", "转人工")
        await say(b, "m3", "我的订单还没到")  # waiting for a person: for the agent, not the bot
        await on_a.until(lambda line: line["text"] == "我的订单还没到", WOKEN_SECONDS)
        desk = Desk(b.pipeline.config, b.pipeline.store, clock, lambda: b.pipeline.knowledge)
        ticket = desk.claim_next(agent)
        assert ticket is not None
        for n in range(1, 4):
            desk.reply(agent, ticket.id, f"第 {n} 条人工回复", confirmed=True)
        await on_a.until(lambda line: line["text"] == "第 3 条人工回复", WOKEN_SECONDS)
        await on_b.until(lambda line: line["text"] == "第 3 条人工回复", WOKEN_SECONDS)

        async with http.get(f"{a.url}/webchat/history", headers=headers) as response:
            history = [line["text"] for line in (await response.json())["lines"]]
        for stream in (on_a, on_b):
            ids = [event_id for event_id, _ in stream.events]
            assert len(ids) == len(set(ids)), ids
            texts = [line["text"] for _, line in stream.events]
            replies = [t for t in texts if "条人工回复" in t]
            assert replies == ["第 1 条人工回复", "第 2 条人工回复", "第 3 条人工回复"]
            # every line once, replies in the order they were written
            assert sorted(texts) == sorted(history), (texts, history)
            outs = [line["text"] for _, line in stream.events if line["direction"] == "out"]
            assert outs == [text for text in history if text in outs]
        on_a.response.close()
        on_b.response.close()


async def test_a_closed_stream_frees_its_place_on_a_worker_as_bot_run_serves_it(
    config: Config, shop_knowledge: Knowledge, tmp_path: Path
) -> None:
    """`bot run` does not cancel a request whose client went (unlike aiohttp's test server):
    a quiet stream notices within seconds, so a visitor reloading does not run into the cap."""
    clock = FixedClock(at("2026-11-24 10:00"))
    url = f"sqlite:///{tmp_path}/closing.sqlite3"
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(worker(config, shop_knowledge, url, clock))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        async with http.post(f"{a.url}/webchat/visitor", json={}) as response:
            token = (await response.json())["token"]
        stream = f"{a.url}/webchat/stream"
        opened = [await http.get(stream, params={"token": token}, timeout=None) for _ in range(8)]
        assert all(response.status == 200 for response in opened)
        async with http.get(stream, params={"token": token}) as refused:
            assert refused.status == 429
        opened.pop().close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while a.channel.hub.open_for(token.rpartition(".")[0], "127.0.0.1")[0] >= 8:
            assert loop.time() < deadline, "the closed stream still holds its place"
            await asyncio.sleep(0.2)
        again = await http.get(stream, params={"token": token}, timeout=None)
        assert again.status == 200
        again.close()
        for response in opened:
            response.close()
