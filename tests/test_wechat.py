"""The WeChat Official Account channel inside the real `bot run` application: a hand-made
"WeChat server" pushes signed and encrypted XML at it, and a fake api.weixin.qq.com takes the
customer-service sends (tests/support/fakes/wechat_api.py)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
import xmltodict
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web_runner import BaseRunner

from adapters.common.text_parts import split_utf8 as split_text
from adapters.wechat import WechatChannel
from adapters.wechat.push import MalformedPush, parse_fields
from bot.content.config import Config, WechatChannelConfig
from bot.domain.clock import SystemClock
from bot.domain.messages import Outbound
from bot.pipeline.knowledge import Knowledge
from bot.pipeline.runner import Pipeline
from bot.store import outbox
from bot.store.channel_store import ChannelStore
from bot.store.database import Store
from bot.store.schema import conversations, decisions, messages
from bot.store.schema import outbox as outbox_table
from bot.understanding.encoders import MemoEncoder
from bot.web.app import Parts, make_app
from tests.support.fakes.wechat_api import (
    APP_ID,
    APP_SECRET,
    TOKEN,
    FakeWechatAPI,
    WechatServer,
    event_xml,
    random_aes_key,
    sign,
    text_xml,
)
from tests.support.service import AppClient
from tests.support.waiting import until

PATH = "/channels/wechat"
SHIPPING = "订单满 99 元包邮，不满收取 8 元运费。"
XXE = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    "<xml><ToUserName>gh_test</ToUserName><FromUserName>o-xxe</FromUserName>"
    "<CreateTime>{now}</CreateTime><MsgType>text</MsgType><Content>&xxe;</Content>"
    "<MsgId>{msg_id}</MsgId></xml>"
)
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">'
        for n in range(1, 10)
    )
    + "]><xml><Content>&lol9;</Content></xml>"
)


#: the hardware platform's pushes, as wechatpy's tests have them (MsgType device_*)
DEVICE_TEXT = (
    "<xml><ToUserName>gh_test</ToUserName><FromUserName>o-device</FromUserName>"
    "<CreateTime>{now}</CreateTime><MsgType>device_text</MsgType><DeviceType>gh_d</DeviceType>"
    "<DeviceID>dev-1</DeviceID><Content>MTIz</Content><SessionID>9</SessionID>"
    "<MsgId>8004</MsgId><OpenID>o-device</OpenID></xml>"
)
DEVICE_EVENT = (
    "<xml><ToUserName>gh_test</ToUserName><FromUserName>o-device</FromUserName>"
    "<CreateTime>{now}</CreateTime><MsgType>device_event</MsgType><Event>bind</Event>"
    "<DeviceType>gh_d</DeviceType><DeviceID>dev-1</DeviceID><Content></Content>"
    "<SessionID>9</SessionID><MsgId>8005</MsgId><OpenID>o-device</OpenID></xml>"
)


class BotRunServer(TestServer):
    """Serves like `bot run`: a handler runs to its end when the client hangs up (aiohttp's
    TestServer cancels it instead), so the passive reply's failed write is what is tested."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        kwargs["handler_cancellation"] = False
        return await super()._make_runner(**kwargs)


@dataclass
class Bot:
    client: AppClient
    pipeline: Pipeline
    api: FakeWechatAPI
    wechat: WechatServer
    channel: WechatChannel

    async def push(self, xml: str, encrypted: bool = True, **kwargs: Any) -> tuple[int, str, str]:
        """POST a push; returns the status, the body (decrypted when it is an encrypted
        reply) and the nonce."""
        if encrypted:
            query, body = self.wechat.encrypted_push(xml, **kwargs)
        else:
            query, body = self.wechat.plain_push(xml, **kwargs)
        response = await self.client.post(PATH, params=query, data=body.encode())
        text = await response.text()
        if encrypted and response.status == 200 and text != "success":
            text = self.wechat.open_reply(text, query["nonce"])
        return response.status, text, query["nonce"]

    def rows(self, query: Any) -> list[Any]:
        with self.pipeline.store.engine.connect() as conn:
            return list(conn.execute(query).all())


def reply_content(xml: str) -> str:
    fields = xmltodict.parse(xml)["xml"]
    assert fields["MsgType"] == "text" and fields["FromUserName"] == "gh_test"
    return str(fields["Content"])


@pytest.fixture
async def api() -> AsyncIterator[FakeWechatAPI]:
    fake = FakeWechatAPI()
    yield fake
    await fake.close()


@pytest.fixture(autouse=True)
def _no_real_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for env in ("WECHAT_TOKEN", "WECHAT_AES_KEY", "WECHAT_APP_SECRET"):
        monkeypatch.delenv(env, raising=False)


def wechat_config(base: str, aes_key: str, **overrides: Any) -> WechatChannelConfig:
    settings: dict[str, Any] = dict(
        enabled=True,
        app_id=APP_ID,
        mode="safe",
        token=TOKEN,
        aes_key=aes_key,
        app_secret=APP_SECRET,
        api_base=base,
    )
    settings.update(overrides)
    return WechatChannelConfig(**settings)


@pytest.fixture
async def make_bot(
    config: Config, shop_knowledge: Knowledge, api: FakeWechatAPI, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[Bot]]]:
    """Workers on the fixture shop, learnt once per session; each test gets its own store."""
    knowledge = shop_knowledge
    clients: list[AppClient] = []

    async def make(**overrides: Any) -> Bot:
        base = await api.start() if api.server is None else str(api.server.make_url("")).rstrip("/")
        key = random_aes_key()
        channel = WechatChannel(wechat_config(base, overrides.pop("aes_key", key), **overrides))
        store = Store(f"sqlite:///{tmp_path}/wechat.sqlite3")
        store.migrate()
        pipeline = Pipeline(config, store, knowledge, SystemClock())
        client = TestClient(BotRunServer(make_app(Parts(pipeline, [channel], run_scheduler=False))))
        await client.start_server()
        clients.append(client)
        return Bot(client, pipeline, api, WechatServer(key), channel)

    yield make
    for client in clients:
        await client.close()


# --- URL verification, authentication, freshness ----------------------------------------------


async def test_url_verification(make_bot: Callable[..., Awaitable[Bot]]) -> None:
    bot = await make_bot()
    good = await bot.client.get(PATH, params={**bot.wechat.query(), "echostr": "E42-echo"})
    assert good.status == 200 and await good.text() == "E42-echo"
    forged = await bot.client.get(
        PATH, params={**bot.wechat.query(token="guess"), "echostr": "E42-echo"}
    )
    assert forged.status == 403 and "E42" not in await forged.text()
    stale = await bot.client.get(
        PATH, params={**bot.wechat.query(timestamp=int(time.time()) - 3600), "echostr": "E42"}
    )
    assert stale.status == 403 and "E42" not in await stale.text()


async def test_encrypted_push_is_answered_with_an_encrypted_passive_reply(
    make_bot: Callable[..., Awaitable[Bot]],
) -> None:
    bot = await make_bot()
    started = time.monotonic()
    status, reply, _ = await bot.push(text_xml("o-alice", 1001, "运费多少"))
    assert status == 200
    assert SHIPPING in reply_content(reply)
    assert time.monotonic() - started < 4
    # confirmed once written: the dispatcher won't send them again (with the after-hours
    # notice when this runs outside the fixture shop's hours)
    await until(
        lambda: (
            {tuple(r) for r in bot.rows(sa.select(outbox_table.c.status, outbox_table.c.via))}
            == {("sent", "inline")}
        )
    )
    await asyncio.sleep(0.6)
    assert bot.api.sends == []


async def test_plain_mode_push_and_reply(make_bot: Callable[..., Awaitable[Bot]]) -> None:
    bot = await make_bot(mode="plain", aes_key="")
    status, reply, _ = await bot.push(text_xml("o-bob", 2001, "运费多少"), encrypted=False)
    assert status == 200 and SHIPPING in reply_content(reply)
    # plain mode takes no encrypted push, safe mode no plain one
    status, _, _ = await bot.push(text_xml("o-bob", 2002, "运费多少"))
    assert status == 403


async def test_forged_stale_and_wrong_mode_pushes_are_refused(
    make_bot: Callable[..., Awaitable[Bot]],
) -> None:
    bot = await make_bot()
    xml = text_xml("o-eve", 3001, "运费多少")
    assert (await bot.push(xml, token="guess"))[0] == 403  # msg_signature with another token
    assert (await bot.push(xml, app_id="wx-other-app"))[0] == 403  # encrypted for another app
    assert (await bot.push(xml, timestamp=int(time.time()) - 301))[0] == 403  # a replay
    assert (await bot.push(xml, timestamp=int(time.time()) + 400))[0] == 403
    assert (await bot.push(xml, encrypted=False))[0] == 403  # safe mode: AES only
    assert bot.rows(sa.select(messages.c.id)) == []
    # the same push, properly signed and fresh, is taken
    assert (await bot.push(xml))[0] == 200


async def test_compatible_mode_takes_both(make_bot: Callable[..., Awaitable[Bot]]) -> None:
    bot = await make_bot(mode="compatible")
    status, reply, _ = await bot.push(text_xml("o-c", 3101, "运费多少"), encrypted=False)
    assert status == 200 and SHIPPING in reply_content(reply)
    status, reply, _ = await bot.push(text_xml("o-d", 3102, "运费多少"))
    assert status == 200 and SHIPPING in reply_content(reply)
    forged_query, body = bot.wechat.plain_push(text_xml("o-e", 3103, "运费多少"), token="guess")
    forged = await bot.client.post(PATH, params=forged_query, data=body)
    assert forged.status == 403


# --- hostile and malformed bodies ------------------------------------------------------------


async def test_xxe_and_billion_laughs_are_refused_unread(
    make_bot: Callable[..., Awaitable[Bot]],
) -> None:
    bot = await make_bot(mode="compatible")
    passwd = Path("/etc/passwd").read_text().splitlines()[0]
    for n, encrypted in enumerate((False, True)):
        payload = XXE.format(now=int(time.time()), msg_id=4000 + n)
        status, text, _ = await bot.push(payload, encrypted=encrypted)
        assert status == 400 and passwd not in text and "root:" not in text
    started = time.monotonic()
    for encrypted in (False, True):
        status, _, _ = await bot.push(LAUGHS, encrypted=encrypted)
        assert status == 400
    assert time.monotonic() - started < 1.0
    stored = bot.rows(sa.select(messages.c.text))
    assert stored == []
    # the second wall: the parser itself refuses entities
    with pytest.raises(MalformedPush):
        parse_fields(XXE.format(now=1, msg_id=1).encode())
    with pytest.raises(MalformedPush):
        parse_fields(LAUGHS.encode())


async def test_malformed_pushes_get_400_and_nothing_is_stored(
    make_bot: Callable[..., Awaitable[Bot]],
) -> None:
    bot = await make_bot(mode="compatible")
    now = int(time.time())
    bodies = [
        "<xml><ToUserName>gh",  # not well-formed
        "{json: true}",
        "<notxml><a>1</a></notxml>",
        f"<xml><ToUserName>gh_test</ToUserName><CreateTime>{now}</CreateTime></xml>",
        text_xml("o-m", "not-a-number", "hi"),
        text_xml("o-m", 5001, "hi").replace("<CreateTime>", "<CreateTime>x"),
        "<xml><ToUserName>gh</ToUserName><FromUserName><a>1</a></FromUserName></xml>",
    ]
    for body in bodies:
        for encrypted in (False, True):
            status, _, _ = await bot.push(body, encrypted=encrypted)
            assert status == 400, body
    # an encrypted envelope without <Encrypt>, or with garbage in it
    query = bot.wechat.query()
    query.update(
        encrypt_type="aes", msg_signature=sign(TOKEN, query["timestamp"], query["nonce"], "!!")
    )
    response = await bot.client.post(PATH, params=query, data="<xml><Encrypt>!!</Encrypt></xml>")
    assert response.status == 400
    response = await bot.client.post(PATH, params=query, data="<xml><A>1</A></xml>")
    assert response.status == 400
    assert bot.rows(sa.select(messages.c.id)) == []


async def test_random_bodies_never_get_a_500(make_bot: Callable[..., Awaitable[Bot]]) -> None:
    """Signed pushes whose XML is cut, spliced or garbled: each answered 200 or 400."""
    bot = await make_bot(mode="compatible")
    rng = random.Random(20261122)
    valid = text_xml("o-fuzz", 5500, "运费多少")
    junk = ["<", ">", "&", "]]>", "<![CDATA[", "</xml>", "<xml>", "\x00", "é", "<MsgId>", "&#0;"]
    bodies = []
    for _ in range(60):
        body = valid
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(body))
            choice = rng.random()
            if choice < 0.4:
                body = body[:at] + rng.choice(junk) + body[at:]
            elif choice < 0.7:
                body = body[:at]
            else:
                body = body[:at] + body[at + rng.randint(1, 20) :]
        bodies.append(body)
    fields = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "Event"]
    for n in range(40):
        kind = rng.choice(["text", "image", "voice", "event", "video", "weird", "", "TEXT"])
        content = "".join(
            chr(rng.choice([rng.randint(1, 0x2FFF), 0x4E00 + rng.randint(0, 99)]))
            for _ in range(rng.randint(0, 30))
        )
        values = {
            "ToUserName": "gh_test",
            "FromUserName": rng.choice(["o-fuzz"] * 6 + ["", "o\tfuzz", "o-" + "x" * 200]),
            "CreateTime": rng.choice([str(int(time.time()))] * 6 + ["", "-1", "1e9"]),
            "MsgType": kind,
            "Content": content,
            "MsgId": rng.choice([str(7000 + n)] * 6 + ["", "abc"]),
            "Event": rng.choice(["subscribe", "unsubscribe", "CLICK", "", "x" * 300]),
        }
        kept = [f for f in fields if rng.random() > 0.03]
        inner = "".join(f"<{f}><![CDATA[{values[f].replace(']]>', '')}]]></{f}>" for f in kept)
        bodies.append(f"<xml>{inner}</xml>")
    statuses = []
    for n, body in enumerate(bodies):
        status, _, _ = await bot.push(body.replace("5500", str(5600 + n)), encrypted=n % 2 == 1)
        assert status in (200, 400), body
        statuses.append(status)
    assert set(statuses) <= {200, 400}, statuses
    assert statuses.count(200) >= 5  # some of them were well-formed enough to be answered


# --- retries, slowness, message kinds ----------------------------------------------------------


async def test_retries_of_one_msgid_are_handled_once(
    make_bot: Callable[..., Awaitable[Bot]],
) -> None:
    bot = await make_bot()
    concurrent = text_xml("o-r1", 6001, "运费多少")
    results = await asyncio.gather(*(bot.push(concurrent) for _ in range(3)))
    bodies = [text for status, text, _ in results if status == 200]
    assert len(bodies) == 3
    assert sum(body != "success" for body in bodies) == 1
    sequential = text_xml("o-r2", 6002, "运费多少")
    first = await bot.push(sequential)
    assert SHIPPING in reply_content(first[1])
    assert [(await bot.push(sequential))[1] for _ in range(2)] == ["success", "success"]
    for msg_id in ("6001", "6002"):
        handled = bot.rows(
            sa.select(decisions.c.id).join(messages).where(messages.c.external_id == msg_id)
        )
        assert len(handled) == 1
    await asyncio.sleep(0.6)  # a dispatcher round: nothing more goes out
    assert bot.api.sends == []


@contextlib.contextmanager
def customer_held(bot: Bot, user: str) -> Iterator[None]:
    """Another transaction holds the customer (on SQLite: the one writer), so deciding their
    message waits until the block ends."""
    busy, release = threading.Event(), threading.Event()

    def hold() -> None:
        with bot.pipeline.store.customer_lock("wechat", user):
            busy.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert busy.wait(2)
        yield
    finally:
        release.set()
        holder.join()


async def test_a_slow_answer_goes_out_through_the_customer_service_api(
    make_bot: Callable[..., Awaitable[Bot]],
) -> None:
    bot = await make_bot(wait_seconds=0.5)
    with customer_held(bot, "o-slow"):
        started = time.monotonic()
        status, body, _ = await bot.push(text_xml("o-slow", 7001, "运费多少"))
        assert (status, body) == (200, "success")
        assert 0.4 < time.monotonic() - started < 2
    await until(lambda: bool(bot.api.sends))
    assert SHIPPING in bot.api.texts("o-slow")
    assert bot.api.token_calls == 1


async def test_a_passive_reply_wechat_no_longer_waits_for_goes_out_through_the_api(
    make_bot: Callable[..., Awaitable[Bot]],
) -> None:
    """Ready inline, but WeChat hung up first: not marked sent, so the dispatcher sends it
    once the hold ends."""
    bot = await make_bot(wait_seconds=1.5)
    with customer_held(bot, "o-gone-away"):
        query, body = bot.wechat.encrypted_push(text_xml("o-gone-away", 7101, "运费多少"))
        with pytest.raises(TimeoutError):
            await bot.client.post(
                PATH, params=query, data=body, timeout=aiohttp.ClientTimeout(total=0.2)
            )
        await asyncio.sleep(0.3)
    await until(lambda: bool(bot.api.sends))
    assert SHIPPING in bot.api.texts("o-gone-away")
    vias = {r.via for r in bot.rows(sa.select(outbox_table.c.via))}
    await until(lambda: {r.via for r in bot.rows(sa.select(outbox_table.c.via))} == {"api"})
    assert "inline" not in vias


async def test_message_kinds_and_events(make_bot: Callable[..., Awaitable[Bot]]) -> None:
    bot = await make_bot()
    now = int(time.time())
    voice = (
        "<xml><ToUserName>gh_test</ToUserName><FromUserName>o-k</FromUserName>"
        f"<CreateTime>{now}</CreateTime><MsgType>voice</MsgType><MediaId>m1</MediaId>"
        "<Format>amr</Format><Recognition>运费多少</Recognition><MsgId>8001</MsgId></xml>"
    )
    status, reply, _ = await bot.push(voice)
    assert status == 200 and SHIPPING in reply_content(reply)
    image = (
        "<xml><ToUserName>gh_test</ToUserName><FromUserName>o-k</FromUserName>"
        f"<CreateTime>{now}</CreateTime><MsgType>image</MsgType><PicUrl>http://x/p.jpg</PicUrl>"
        "<MediaId>m2</MediaId><MsgId>8002</MsgId></xml>"
    )
    status, reply, _ = await bot.push(image)
    assert status == 200 and reply_content(reply) and SHIPPING not in reply
    location = (
        "<xml><ToUserName>gh_test</ToUserName><FromUserName>o-k</FromUserName>"
        f"<CreateTime>{now}</CreateTime><MsgType>location</MsgType><Location_X>23.1</Location_X>"
        "<Location_Y>113.3</Location_Y><Scale>20</Scale><Label>广州塔</Label><MsgId>8003</MsgId></xml>"
    )
    assert (await bot.push(location))[0] == 200
    # subscribe (plain or by QR scene) is answered; unsubscribe and menu events only acknowledged
    status, reply, _ = await bot.push(event_xml("o-new", "subscribe", now))
    assert status == 200 and reply != "success" and reply_content(reply)
    status, reply, _ = await bot.push(event_xml("o-qr", "subscribe", now, "qrscene_42"))
    assert status == 200 and reply != "success"
    assert (await bot.push(event_xml("o-new", "subscribe", now)))[1] == "success"  # a retry
    for event in ("unsubscribe", "CLICK", "VIEW", "LOCATION", "kf_close_session"):
        assert (await bot.push(event_xml("o-gone", event, now)))[1] == "success"
    # a connected device reporting (the hardware platform) is nobody writing: acknowledged only
    for device in (DEVICE_TEXT, DEVICE_EVENT):
        assert (await bot.push(device.format(now=now)))[:2] == (200, "success")
    kinds = dict(bot.rows(sa.select(messages.c.external_id, messages.c.kind)))
    assert kinds["8001"] == "text" and kinds["8002"] == "image" and kinds["8003"] == "other"
    assert "8004" not in kinds and "8005" not in kinds
    assert not any(key and key.startswith("o-device") for key in kinds)
    assert not bot.api.texts("o-device")
    assert kinds[f"o-new:{now}:subscribe"] == "event"
    assert not any(key and key.startswith("o-gone") for key in kinds)


# --- the customer-service API: failures, quota, token ---------------------------------------


def _add_replies(pipeline: Pipeline, openid: str, count: int) -> None:
    store = pipeline.store
    with store.engine.connect() as conn:
        conversation_id = conn.execute(
            sa.select(conversations.c.id).where(conversations.c.user_id == openid)
        ).scalar_one()
    conversation = store.conversation(conversation_id)
    with store.transaction() as tx:
        for n in range(count):
            outbox.add(tx, conversation, None, f"通知 {n + 1}", pipeline.clock.now())


@pytest.mark.parametrize("code", [45047, 45015])
async def test_a_refusal_for_good_stops_the_conversation(
    make_bot: Callable[..., Awaitable[Bot]], code: int
) -> None:
    bot = await make_bot()
    status, _, _ = await bot.push(text_xml("o-q", 9001, "运费多少"))
    assert status == 200
    bot.api.always = code
    _add_replies(bot.pipeline, "o-q", 3)
    await until(lambda: bot.api.attempts >= 1)
    await until(
        lambda: {r.status for r in bot.rows(sa.select(outbox_table.c.status))} == {"sent", "failed"}
    )
    [reason] = bot.rows(
        sa.select(conversations.c.unreachable_reason).where(conversations.c.user_id == "o-q")
    )
    assert str(code) in reason[0]
    failed = bot.rows(sa.select(outbox_table.c.id).where(outbox_table.c.status == "failed"))
    assert len(failed) == 3
    attempts = bot.api.attempts
    await asyncio.sleep(1.2)  # two dispatcher rounds: no more tries
    assert bot.api.attempts == attempts == 1 and bot.api.sends == []


async def test_only_five_messages_follow_one_customer_message(
    make_bot: Callable[..., Awaitable[Bot]],
) -> None:
    bot = await make_bot()
    assert (await bot.push(text_xml("o-five", 9101, "运费多少")))[0] == 200  # inline: free
    _add_replies(bot.pipeline, "o-five", 6)
    await until(lambda: len(bot.api.sends) >= 5)
    await until(
        lambda: "unsent" not in {r.status for r in bot.rows(sa.select(outbox_table.c.status))}
    )
    await asyncio.sleep(0.6)
    assert bot.api.texts("o-five") == [f"通知 {n}" for n in range(1, 6)]
    added = sa.select(outbox_table.c.status).where(outbox_table.c.text.like("通知%"))
    statuses = [r.status for r in bot.rows(added.order_by(outbox_table.c.id))]
    assert statuses == ["sent"] * 5 + ["expired"]


async def test_a_revoked_token_is_fetched_again_and_the_send_retried(
    make_bot: Callable[..., Awaitable[Bot]],
) -> None:
    bot = await make_bot()
    await bot.push(text_xml("o-t", 9201, "运费多少"))
    bot.api.errors = [40001]
    _add_replies(bot.pipeline, "o-t", 1)
    await until(lambda: bool(bot.api.sends))
    assert bot.api.token_calls == 2 and bot.api.texts("o-t") == ["通知 1"]


async def test_daily_limit_asks_to_wait_and_long_texts_are_split(
    make_bot: Callable[..., Awaitable[Bot]],
) -> None:
    from bot.domain.delivery import PermanentFailure, RetryAfter

    bot = await make_bot()
    sender = bot.channel.sender
    bot.api.errors = [45009]
    with pytest.raises(RetryAfter) as wait:
        await sender.send(Outbound("wechat", "o-x", "hi", 1))
    assert wait.value.seconds == 600
    bot.api.errors = [43004]
    with pytest.raises(PermanentFailure):
        await sender.send(Outbound("wechat", "o-x", "hi", 1))
    long = "\n\n".join(f"第{n}段：" + "很长的回答" * 60 for n in range(6))
    await sender.send(Outbound("wechat", "o-x", long, 1))
    parts = bot.api.texts("o-x")
    assert len(parts) > 1 and all(len(p.encode()) <= 2048 for p in parts)
    assert "".join(parts).replace("\n", "") == long.replace("\n", "")
    assert split_text("短") == ["短"]
    assert all(len(p.encode()) <= 2048 for p in split_text("字" * 5000))


async def test_two_workers_share_one_access_token(
    encoder: MemoEncoder, api: FakeWechatAPI, postgres_url: str
) -> None:
    base = await api.start()
    stores = [Store(postgres_url) for _ in range(2)]
    stores[0].migrate()
    channels = [WechatChannel(wechat_config(base, random_aes_key())) for _ in range(2)]
    try:
        for channel, store in zip(channels, stores, strict=True):
            channel.sender.attach(ChannelStore(store, SystemClock(), "wechat"), SystemClock())
            await channel.start()
        await asyncio.gather(
            *(
                channel.sender.send(Outbound("wechat", f"o-{n}-{i}", "你好", 1))
                for n, channel in enumerate(channels)
                for i in range(3)
            )
        )
        assert len(api.sends) == 6
        assert api.token_calls == 1
    finally:
        for channel in channels:
            await channel.stop()
        for store in stores:
            store.close()


def test_the_constructor_names_what_is_missing() -> None:
    with pytest.raises(ValueError, match="WECHAT_APP_SECRET"):
        WechatChannel(wechat_config("http://127.0.0.1:9", random_aes_key(), app_secret=""))
    with pytest.raises(ValueError, match="WECHAT_AES_KEY"):
        WechatChannel(wechat_config("http://127.0.0.1:9", "short"))
    plain = WechatChannel(wechat_config("http://127.0.0.1:9", "", mode="plain"))
    assert "/channels/wechat" in plain.describe("https://bot.example.com")
