"""The limits against abuse (issue 21, part 6) on the real application served as `bot run`
serves it, with every webhook channel: body caps per route refused before the body is read,
slow bodies cut off while other customers are answered, rates per client address and per
customer counted in the database so they hold across two workers on PostgreSQL, and WeChat's
plain-mode nonces remembered so a replayed push is not handled twice."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web

from adapters.telegram import TelegramChannel
from adapters.webhook import WebhookChannel
from adapters.wechat import WechatChannel
from adapters.wecom import WecomChannel
from bot.content.config import (
    Config,
    TelegramChannelConfig,
    WebhookChannelConfig,
    WechatChannelConfig,
    WecomChannelConfig,
)
from bot.domain.clock import SystemClock
from bot.pipeline.knowledge import Knowledge
from bot.pipeline.runner import Pipeline
from bot.store.database import Store
from bot.store.schema import messages
from bot.web.app import Parts, make_app, make_runner
from tests.support.fakes import telegram_api as telegram_fake
from tests.support.fakes.wechat_api import APP_SECRET as WECHAT_SECRET
from tests.support.fakes.wechat_api import WechatServer, event_xml, random_aes_key, text_xml
from tests.support.fakes.wecom_api import SECRET as WECOM_SECRET
from tests.support.fakes.wecom_api import WecomServer
from tests.support.service import SECRET, free_port

AUTH = {"Authorization": f"Bearer {SECRET}"}
WEBHOOK = "/channels/webhook/messages"
WECHAT = "/channels/wechat"


@dataclass
class Worker:
    url: str
    port: int
    pipeline: Pipeline
    wechat: WechatServer

    def stored(self, user: str) -> int:
        with self.pipeline.store.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(messages)
                    .where(messages.c.user_id == user, messages.c.direction == "in")
                ).scalar_one()
            )


@asynccontextmanager
async def worker(
    config: Config, knowledge: Knowledge, store_url: str, wechat: WechatServer, telegram: str
) -> AsyncIterator[Worker]:
    """One worker with every webhook channel (WeChat in compatible mode: plain pushes too),
    served on a free port as `bot run` serves it."""
    store = Store(store_url)
    store.migrate()
    pipeline = Pipeline(config, store, knowledge, SystemClock())
    wecom = WecomServer(random_aes_key())
    channels: list[Any] = [
        WebhookChannel(
            WebhookChannelConfig(enabled=True, deliver_url="http://127.0.0.1:9/x", wait_seconds=1),
            SECRET,
        ),
        TelegramChannel(
            TelegramChannelConfig(
                enabled=True,
                mode="webhook",
                token=telegram_fake.TOKEN,
                token_env="BOT_TEST_UNSET_TELEGRAM_TOKEN",
                webhook_secret=SECRET,
                webhook_secret_env="BOT_TEST_UNSET_TELEGRAM_SECRET",
                api_base=telegram,
            )
        ),
        WechatChannel(
            WechatChannelConfig(
                enabled=True,
                app_id=wechat.app_id,
                mode="compatible",
                token=wechat.token,
                aes_key=wechat.aes_key,
                app_secret=WECHAT_SECRET,
                api_base="http://127.0.0.1:9",
                wait_seconds=1,
            )
        ),
        WecomChannel(
            WecomChannelConfig(
                enabled=True,
                corp_id=wecom.corp_id,
                token=wecom.token,
                aes_key=wecom.aes_key,
                secret=WECOM_SECRET,
                api_base="http://127.0.0.1:9",
            )
        ),
    ]
    runner = make_runner(make_app(Parts(pipeline, channels, run_scheduler=False)), 2.0)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield Worker(f"http://127.0.0.1:{port}", port, pipeline, wechat)
    finally:
        await runner.cleanup()
        store.close()


@pytest.fixture
def limited(config: Config) -> Callable[..., Config]:
    def configure(**service: Any) -> Config:
        config.service.public_url = "https://bot.example.test"
        for key, value in service.items():
            setattr(config.service, key, value)
        return config

    return configure


@asynccontextmanager
async def workers(
    config: Config, knowledge: Knowledge, store_url: str, count: int = 1
) -> AsyncIterator[list[Worker]]:
    wechat = WechatServer(random_aes_key())
    async with AsyncExitStack() as stack:
        _, telegram = await stack.enter_async_context(telegram_fake.running())
        found = [
            await stack.enter_async_context(worker(config, knowledge, store_url, wechat, telegram))
            for _ in range(count)
        ]
        yield found


async def early_in_a_minute() -> None:
    """The rates are counted per clock minute: a test that counts to a limit starts with 25 s
    or more of its minute left, so its requests all fall in one window."""
    into = time.time() % 60
    if into > 35:
        await asyncio.sleep(60.5 - into)


async def raw_status(port: int, head: bytes, body: bytes = b"", wait: float = 5.0) -> str:
    """Send a request's head (and part of a body) on a raw socket; the status line answered
    within `wait` seconds, or "" when the connection closed without one."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + body)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), wait)
        return line.decode().strip()
    finally:
        writer.close()


def head(path: str, length: int | None, extra: str = "") -> bytes:
    size = f"Content-Length: {length}\r\n" if length is not None else ""
    chunked = "" if length is not None else "Transfer-Encoding: chunked\r\n"
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{size}{chunked}{extra}"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


async def say(
    session: aiohttp.ClientSession, url: str, user: str, n: int, forwarded: str | None = None
) -> aiohttp.ClientResponse:
    headers = dict(AUTH)
    if forwarded:
        headers["X-Forwarded-For"] = forwarded
    body = {"id": f"{user}-{n}", "user": user, "text": "你好"}
    async with session.post(url + WEBHOOK, json=body, headers=headers) as response:
        await response.read()
        return response


# --- body caps ----------------------------------------------------------------------------------


async def test_every_route_refuses_a_body_over_its_cap_before_reading_it(
    limited: Callable[..., Config],
    shop_knowledge: Knowledge,
    tmp_path: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = limited()
    caplog.set_level(logging.WARNING, logger="bot.web")
    async with workers(config, shop_knowledge, f"sqlite:///{tmp_path}/bot.sqlite3") as [one]:
        caps = {
            WEBHOOK: 64,
            "/channels/telegram/webhook": 256,
            WECHAT: 64,
            "/channels/wecom": 16,
            "/console/login": 8,
            "/console/tickets/1/reply": 64,
            "/healthz": 16,
        }
        for path, kib in caps.items():
            # only the head is sent: a route that waited for the body would never answer
            status = await raw_status(one.port, head(path, kib * 1024 + 1), wait=3)
            assert status.startswith("HTTP/1.1 413"), (path, status)
            assert f"POST {path} from 127.0.0.1 refused: body over the {kib} KiB cap" in caplog.text
        # a chunked body is refused once it passes the cap, not read to its end
        chunk = b"x" * 8192
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(10))
        status = await raw_status(
            one.port, head(WEBHOOK, None, f"Authorization: Bearer {SECRET}\r\n"), chunks
        )
        assert status.startswith("HTTP/1.1 413"), status
        assert "a chunked body past it" in caplog.text
        # under the cap, the route reads the body as before
        async with aiohttp.ClientSession() as session:
            large = {"id": "big", "user": "u-big", "text": "运费" * 3000}
            async with session.post(one.url + WEBHOOK, json=large, headers=AUTH) as response:
                assert response.status == 200


# --- slow bodies --------------------------------------------------------------------------------


async def test_a_slow_body_is_cut_off_while_other_customers_are_answered(
    limited: Callable[..., Config],
    shop_knowledge: Knowledge,
    tmp_path: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = limited(body_timeout_seconds=1)
    caplog.set_level(logging.WARNING, logger="bot.web")
    async with workers(config, shop_knowledge, f"sqlite:///{tmp_path}/bot.sqlite3") as [one]:
        # one client stops after part of its body, another trickles a byte every 0.2 s
        stalled_reader, stalled = await asyncio.open_connection("127.0.0.1", one.port)
        stalled.write(head(WEBHOOK, 200, f"Authorization: Bearer {SECRET}\r\n") + b'{"id": ')
        trickle_reader, trickle = await asyncio.open_connection("127.0.0.1", one.port)
        signed = "&".join(f"{k}={v}" for k, v in one.wechat.query().items())
        trickle.write(head(f"{WECHAT}?{signed}", 5000))
        started = time.monotonic()

        async def trickling() -> None:
            for _ in range(100):
                if trickle.is_closing():
                    return
                trickle.write(b"<")
                await asyncio.sleep(0.2)

        dribble = asyncio.create_task(trickling())
        async with aiohttp.ClientSession() as session:
            answered = await asyncio.gather(*(say(session, one.url, f"u{n}", 1) for n in range(5)))
        assert [r.status for r in answered] == [200] * 5
        assert time.monotonic() - started < 1.0  # answered while the slow ones still hung on
        for reader in (stalled_reader, trickle_reader):
            line = await asyncio.wait_for(reader.readline(), 5)
            assert line.startswith(b"HTTP/1.1 408"), line
            # and the connection is closed: an end of stream, or a reset when the trickling
            # client wrote another byte after the server closed it
            with contextlib.suppress(ConnectionResetError):
                await asyncio.wait_for(reader.read(), 5)
        assert time.monotonic() - started < 3.0
        dribble.cancel()
        stalled.close()
        trickle.close()
        assert "cut off: body not received within 1s" in caplog.text


# --- rates --------------------------------------------------------------------------------------


async def test_posts_per_client_address_through_trusted_proxies_only(
    limited: Callable[..., Config], shop_knowledge: Knowledge, tmp_path: Any
) -> None:
    config = limited(per_ip_per_minute=3)
    await early_in_a_minute()
    async with (
        workers(config, shop_knowledge, f"sqlite:///{tmp_path}/bot.sqlite3") as [one],
        aiohttp.ClientSession() as session,
    ):
        # behind nginx on the same host: the address nginx appended counts, not what the
        # client wrote before it
        statuses = [
            (await say(session, one.url, f"a{n}", n, f"198.51.100.9, 203.0.113.{n}")).status
            for n in range(3)
        ]
        assert statuses == [200, 200, 200]
        for n in range(3):
            assert (await say(session, one.url, "b", n, "203.0.113.7")).status == 200
        refused = await say(session, one.url, "b", 9, "10.1.1.1, 203.0.113.7")
        assert refused.status == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        # WeChat re-sends anything but a 2xx: acknowledged and dropped
        query, body = one.wechat.plain_push(text_xml("o-ip", 7001, "运费多少"))
        headers = {"X-Forwarded-For": "203.0.113.7"}
        async with session.post(
            one.url + WECHAT, params=query, data=body.encode(), headers=headers
        ) as response:
            assert response.status == 200 and await response.text() == ""
        assert one.stored("o-ip") == 0
    # a peer that is not a trusted proxy is counted by its own address, whatever it forwards
    config = limited(per_ip_per_minute=3, trusted_proxies=[])
    await early_in_a_minute()
    async with (
        workers(config, shop_knowledge, f"sqlite:///{tmp_path}/other.sqlite3") as [one],
        aiohttp.ClientSession() as session,
    ):
        statuses = [
            (await say(session, one.url, f"c{n}", n, f"203.0.113.{n}")).status for n in range(4)
        ]
        assert statuses == [200, 200, 200, 429]


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
async def test_customer_and_address_limits_hold_across_two_workers(
    backend: str,
    limited: Callable[..., Config],
    shop_knowledge: Knowledge,
    tmp_path: Any,
    request: pytest.FixtureRequest,
) -> None:
    store_url = (
        request.getfixturevalue("postgres_url")
        if backend == "postgresql"
        else f"sqlite:///{tmp_path}/bot.sqlite3"
    )
    config = limited(per_customer_per_minute=4, per_ip_per_minute=40)
    await early_in_a_minute()
    async with (
        workers(config, shop_knowledge, store_url, count=2) as both,
        aiohttp.ClientSession() as session,
    ):
        # one customer's messages alternate between the workers: the fifth is over, wherever
        statuses = [(await say(session, both[n % 2].url, "alice", n)).status for n in range(6)]
        assert statuses == [200, 200, 200, 200, 429, 429]
        assert both[0].stored("alice") == 4
        assert (await say(session, both[1].url, "bob", 1)).status == 200
        # a WeChat customer over the limit is acknowledged and dropped, not handled
        replies = []
        for n in range(6):
            query, body = both[n % 2].wechat.plain_push(text_xml("o-fast", 8000 + n, "你好"))
            async with session.post(
                both[n % 2].url + WECHAT, params=query, data=body.encode()
            ) as response:
                assert response.status == 200
                replies.append(await response.text())
        assert replies[4:] == ["success", "success"]
        assert both[0].stored("o-fast") == 4
        # the address: 40 POSTs a minute in all, whichever worker takes them
        statuses = [
            (await say(session, both[n % 2].url, f"d{n}", n, "203.0.113.50")).status
            for n in range(41)
        ]
        assert statuses.count(429) == 1 and statuses[-1] == 429


# --- WeChat plain-mode nonces -------------------------------------------------------------------


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
async def test_a_replayed_plain_push_is_not_handled_again_on_any_worker(
    backend: str,
    limited: Callable[..., Config],
    shop_knowledge: Knowledge,
    tmp_path: Any,
    request: pytest.FixtureRequest,
) -> None:
    store_url = (
        request.getfixturevalue("postgres_url")
        if backend == "postgresql"
        else f"sqlite:///{tmp_path}/bot.sqlite3"
    )
    config = limited()
    async with (
        workers(config, shop_knowledge, store_url, count=2) as both,
        aiohttp.ClientSession() as session,
    ):
        wechat = both[0].wechat

        async def push(target: Worker, query: dict[str, str], xml: str) -> str:
            async with session.post(
                target.url + WECHAT, params=query, data=xml.encode()
            ) as response:
                assert response.status == 200
                return await response.text()

        query, xml = wechat.plain_push(text_xml("o-replay", 9001, "运费多少"))
        assert "运费" in await push(both[0], query, xml)
        # the signature covers only token, timestamp and nonce: the same URL with another
        # body (another MsgId, another customer) is a replay, on either worker
        for target, body in [
            (both[1], text_xml("o-replay", 9002, "退货")),
            (both[0], text_xml("o-other", 9003, "你好")),
            (both[1], event_xml("o-other", "subscribe")),
        ]:
            assert await push(target, query, body) == "success"
        assert both[0].stored("o-replay") == 1 and both[0].stored("o-other") == 0
        # a fresh nonce is a new push
        query, xml = wechat.plain_push(text_xml("o-other", 9004, "你好"))
        assert await push(both[1], query, xml) != ""
        assert both[0].stored("o-other") == 1
