"""The WeCom 微信客服 channel in the real `bot run` application, against a loopback qyapi and a
"WeCom server" that encrypts callbacks by hand (tests/support/fakes/wecom_api.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.common.text_parts import split_utf8 as split_text
from adapters.wecom import WecomChannel
from adapters.wecom.pull import chat_id
from bot.assembly import build_pipeline
from bot.content.config import Config, WecomChannelConfig, pick
from bot.domain.clock import SystemClock
from bot.domain.delivery import PermanentFailure, RetryAfter
from bot.domain.messages import Outbound
from bot.store import channel_state
from bot.store.database import Store
from bot.understanding.encoders import MemoEncoder
from bot.web.app import SERVICE, Parts, make_app
from tests.support.fakes.wecom_api import (
    CORP_ID,
    SECRET,
    TOKEN,
    FakeQyapi,
    WecomServer,
    random_aes_key,
)
from tests.support.service import AppClient
from tests.support.waiting import until

KF = "wk-test-account"
PATH = "/channels/wecom"
SHIPPING = "订单满 99 元包邮，不满收取 8 元运费。"
INVOICE = "在“我的订单”中点击“申请发票”即可开具电子发票。"
HANDOFF_REPLY = "好的，正在为您转接人工客服。"


@pytest.fixture(autouse=True)
def _no_real_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WECOM_TOKEN", "WECOM_AES_KEY", "WECOM_KF_SECRET"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeQyapi, str]]:
    fake = FakeQyapi()
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server()
    yield fake, str(server.make_url("")).rstrip("/")
    await server.close()


@dataclass
class Rig:
    client: AppClient
    channel: WecomChannel
    api: FakeQyapi
    wecom: WecomServer
    store: Store

    async def news(self, open_kfid: str = KF, token: str = "sync-token-1") -> int:
        query, body = self.wecom.kf_news(open_kfid, token)
        response = await self.client.post(PATH, params=query, data=body)
        assert await response.text() == "success"
        return response.status

    async def settle(self, timeout: float = 8.0) -> None:
        """Until no pull runs here and every reply written has been sent."""
        store = self.store
        puller = self.channel.puller
        assert puller is not None
        await until(lambda: not puller.tasks and not store.unsent_outbound(), timeout)

    async def close(self) -> None:
        await self.client.close()


async def make_rig(
    config: Config,
    encoder: MemoEncoder,
    store_url: str,
    api: tuple[FakeQyapi, str],
    aes_key: str,
    servicer: str = "",
) -> Rig:
    fake, base = api
    channel = WecomChannel(
        WecomChannelConfig(
            enabled=True,
            corp_id=CORP_ID,
            token=TOKEN,
            aes_key=aes_key,
            secret=SECRET,
            api_base=base,
            servicer_userid=servicer,
        )
    )
    pipeline = build_pipeline(config, SystemClock(), store_url=store_url, encoder=encoder)
    app = make_app(Parts(pipeline, [channel], run_scheduler=False))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return Rig(client, channel, fake, WecomServer(aes_key), pipeline.store)


@pytest.fixture
async def rig(
    config: Config, encoder: MemoEncoder, api: tuple[FakeQyapi, str], tmp_path: Path
) -> AsyncIterator[Rig]:
    made = await make_rig(
        config, encoder, f"sqlite:///{tmp_path}/wecom.sqlite3", api, random_aes_key()
    )
    yield made
    await made.close()


def stored_cursor(rig: Rig, open_kfid: str = KF) -> str | None:
    store = rig.store
    with store.engine.connect() as conn:
        return channel_state.get(conn, "wecom", f"cursor:{open_kfid}", datetime.now(UTC))


async def test_url_verification_decrypts_the_echostr(rig: Rig) -> None:
    good = await rig.client.get(PATH, params=rig.wecom.verification("echo-1234567890"))
    assert good.status == 200 and await good.text() == "echo-1234567890"

    # WeCom's echostr is base64: a '+' that reaches us unencoded still verifies
    query = rig.wecom.verification("echo-with-plus")
    while "+" not in query["echostr"]:
        query = rig.wecom.verification("echo-with-plus")
    raw = "&".join(f"{k}={v}" for k, v in query.items())
    unencoded = await rig.client.get(f"{PATH}?{raw}")
    assert unencoded.status == 200 and await unencoded.text() == "echo-with-plus"

    forged = rig.wecom.verification("echo")
    forged["msg_signature"] = "0" * 40
    assert (await rig.client.get(PATH, params=forged)).status == 403
    other_key = WecomServer(random_aes_key())  # signed right, encrypted with another key
    assert (await rig.client.get(PATH, params=other_key.verification("x"))).status == 403
    stale = rig.wecom.verification("echo", timestamp=int(time.time()) - 3600)
    assert (await rig.client.get(PATH, params=stale)).status == 403
    assert (await rig.client.get(PATH)).status == 403


async def test_callback_pulls_every_page_and_answers_each_message_once(rig: Rig) -> None:
    api = rig.api
    first = api.customer_says(KF, "u1", "运费多少")
    api.customer_says(KF, "u2", "运费多少")
    api.customer_says(KF, "u2", "好的", origin=5)  # a human servicer: not bot input
    api.customer_says(KF, "u3", "运费多少")
    api.customer_says(KF, "u4", "运费多少")  # 5 messages: pages of 2 → three pages

    assert await rig.news() == 200
    await rig.settle()
    syncs = api.of("sync_msg")
    assert [c.body.get("cursor") for c in syncs] == [None, "c2", "c4"]
    assert {c.body["token"] for c in syncs} == {"sync-token-1"}
    assert all(c.body["open_kfid"] == KF and c.body["limit"] == 1000 for c in syncs)
    assert stored_cursor(rig) == "c5"
    for user in ("u1", "u2", "u3", "u4"):
        assert rig.api.sent_to(user).count(SHIPPING) == 1, user
    assert api.tokens_issued == 1  # one access token, kept in channel_state

    # the next callback continues from the stored cursor; a re-served msgid is not answered
    api.add(KF, dict(api.log[KF][0]))
    assert api.log[KF][0]["msgid"] == first
    api.customer_says(KF, "u1", "运费多少", msgid="msg-new")
    await rig.news(token="sync-token-2")
    await until(lambda: rig.api.sent_to("u1").count(SHIPPING) == 2)
    await rig.settle()
    later = api.of("sync_msg")[len(syncs) :]
    assert later[0].body["cursor"] == "c5" and later[0].body["token"] == "sync-token-2"
    assert stored_cursor(rig) == "c7"
    assert rig.api.sent_to("u1").count(SHIPPING) == 2  # msg-1 once, msg-new once


async def test_racing_callbacks_answer_each_message_once(rig: Rig) -> None:
    users = [f"r{i}" for i in range(6)]
    for user in users:
        rig.api.customer_says(KF, user, "运费多少")
    statuses = await asyncio.gather(*(rig.news() for _ in range(5)))
    assert statuses == [200] * 5
    await rig.settle()
    for user in users:
        assert rig.api.sent_to(user).count(SHIPPING) == 1
    assert stored_cursor(rig) == "c6"


@pytest.mark.parametrize("servicer", ["", "zhangsan"])
async def test_handoff_moves_the_session_and_the_bot_falls_silent(
    config: Config,
    encoder: MemoEncoder,
    api: tuple[FakeQyapi, str],
    tmp_path: Path,
    servicer: str,
) -> None:
    rig = await make_rig(
        config, encoder, f"sqlite:///{tmp_path}/h.sqlite3", api, random_aes_key(), servicer
    )
    try:
        rig.api.customer_says(KF, "u1", "转人工")
        await rig.news()
        await until(lambda: bool(rig.api.of("service_state/trans")))
        await rig.settle()
        sent = rig.api.sent_to("u1")
        # the handoff's words, whatever the hour: connecting you, nobody online, or closed
        words = (HANDOFF_REPLY, pick(config.texts.handoff_unstaffed, "zh"), "现在是非工作时间")
        assert sent[0].startswith(words), sent
        trans = rig.api.of("service_state/trans")
        assert len(trans) == 1
        expected_state = 3 if servicer else 2
        assert trans[0].body["service_state"] == expected_state
        assert trans[0].body.get("servicer_userid", "") == servicer
        # every reply to the handoff went out before the session left the bot
        order = [c.endpoint for c in rig.api.calls if c.endpoint != "sync_msg"]
        assert order == ["send_msg"] * len(sent) + ["service_state/trans"]
        assert rig.api.states[(KF, "u1")] == expected_state

        rig.api.customer_says(KF, "u1", "运费多少")
        rig.api.customer_says(KF, "u2", "运费多少")  # another customer, still with the bot
        await rig.news()
        await until(lambda: SHIPPING in rig.api.sent_to("u2"))
        await rig.settle()
        assert rig.api.sent_to("u1") == sent  # nothing more: a human has the customer
    finally:
        await rig.close()


async def test_a_customer_of_two_accounts_is_answered_through_each(rig: Rig) -> None:
    """One customer writes to 微信客服 account A, then to account B: each message is answered
    through the account it was written to, and a handoff on B leaves A with the bot."""
    other = "wk-second-account"
    rig.api.customer_says(KF, "u1", "运费多少")
    await rig.news()
    await until(lambda: SHIPPING in rig.api.sent_to("u1"))
    await rig.settle()
    rig.api.customer_says(other, "u1", "可以开发票吗")
    await rig.news(other)
    await until(lambda: INVOICE in rig.api.sent_to("u1"))
    await rig.settle()
    assert SHIPPING in rig.api.sent_through(KF, "u1")
    assert INVOICE not in rig.api.sent_through(KF, "u1")
    assert INVOICE in rig.api.sent_through(other, "u1")

    rig.api.customer_says(other, "u1", "转人工")
    await rig.news(other)
    await until(lambda: bool(rig.api.of("service_state/trans")))
    await rig.settle()
    [trans] = rig.api.of("service_state/trans")
    assert (trans.body["open_kfid"], trans.body["external_userid"]) == (other, "u1")
    before = len(rig.api.sent_through(KF, "u1"))
    rig.api.customer_says(KF, "u1", "运费多少")  # account A's conversation is still the bot's
    await rig.news()
    await until(lambda: len(rig.api.sent_through(KF, "u1")) > before)
    await rig.settle()
    assert rig.api.sent_through(KF, "u1")[before:] == [SHIPPING]
    assert rig.api.states[(KF, "u1")] == 1


async def test_servicer_messages_are_not_answered_and_entering_gets_the_welcome(
    rig: Rig, config: Config
) -> None:
    rig.api.enters(KF, "u9", "welcome-code-1")
    rig.api.customer_says(KF, "u8", "运费多少", origin=5)  # a servicer typed it
    rig.api.customer_says(KF, "u7", "运费多少")
    await rig.news()
    await until(lambda: bool(rig.api.sent_to("u7")))
    await rig.settle()
    welcome = rig.api.of("send_msg_on_event")
    text = rig.channel.welcome_text()
    assert text == config.texts.welcome["zh"]
    assert [c.body for c in welcome] == [
        {"code": "welcome-code-1", "msgtype": "text", "text": {"content": text}}
    ]
    assert rig.api.sent_to("u8") == [] and rig.api.sent_to("u9") == []


async def test_forged_stale_and_hostile_callbacks_are_refused(rig: Rig) -> None:
    rig.api.customer_says(KF, "u1", "运费多少")
    query, body = rig.wecom.kf_news(KF)
    forged = dict(query, msg_signature="f" * 40)
    assert (await rig.client.post(PATH, params=forged, data=body)).status == 403
    stale_query, stale_body = rig.wecom.callback(
        "<xml><Event>kf_msg_or_event</Event><OpenKfId>x</OpenKfId></xml>",
        timestamp=int(time.time()) - 301,
    )
    assert (await rig.client.post(PATH, params=stale_query, data=stale_body)).status == 403
    xxe = (
        '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        "<xml><Encrypt>&e;</Encrypt></xml>"
    )
    assert (await rig.client.post(PATH, params=query, data=xxe)).status == 400
    inner_query, inner_body = rig.wecom.callback(
        '<!DOCTYPE xml [<!ENTITY e "boom">]><xml><Event>&e;</Event></xml>'
    )
    assert (await rig.client.post(PATH, params=inner_query, data=inner_body)).status == 400
    assert (await rig.client.post(PATH, params=query, data="<xml><Enc")).status == 400
    assert (await rig.client.post(PATH, params=query, data=b"\xff\xfe")).status == 400
    assert (await rig.client.post(PATH, data=body)).status == 403  # no signature at all
    garbled_query, garbled_body = rig.wecom.callback("not xml at all <<<")
    assert (await rig.client.post(PATH, params=garbled_query, data=garbled_body)).status == 400
    await asyncio.sleep(0.1)
    assert rig.api.calls == []  # nothing was pulled, nothing read
    # the same callback, signed right, still works afterwards
    assert (await rig.client.post(PATH, params=query, data=body)).status == 200
    await until(lambda: bool(rig.api.sent_to("u1")))
    # a draining worker says so (503), and WeCom calls again
    service = rig.client.app[SERVICE]
    service.accepting = False
    query, body = rig.wecom.kf_news(KF)
    assert (await rig.client.post(PATH, params=query, data=body)).status == 503
    service.accepting = True


async def test_send_errors_mean_what_wecom_says(rig: Rig) -> None:
    send = rig.channel.sender.send
    chat = chat_id(KF, "u5")
    reply = Outbound("wecom", chat, "你好", conversation_id=1, outbox_id=1)

    await send(reply)  # first call: no token yet → gettoken
    assert rig.api.sent_to("u5") == ["你好"] and rig.api.tokens_issued == 1

    rig.api.tokens_issued += 1  # WeCom revoked the token: wechatpy fetches a new one (40014)
    await send(reply)
    assert rig.api.sent_to("u5") == ["你好"] * 2 and rig.api.tokens_issued == 3

    rig.api.failures["send_msg"] = [45009]
    with pytest.raises(RetryAfter) as wait:
        await send(reply)
    assert wait.value.seconds == 60
    for code in (95001, 95002, 95013, 95018):
        rig.api.failures["send_msg"] = [code]
        with pytest.raises(PermanentFailure, match=str(code)):
            await send(reply)
    rig.api.failures["send_msg"] = [-1]  # system busy: a passing failure, retried
    with pytest.raises(ConnectionError):
        await send(reply)
    with pytest.raises(PermanentFailure):
        await send(Outbound("wecom", "no-separator", "x", conversation_id=1, outbox_id=1))

    long = "运费说明。" * 200 + "\n" + "退货说明。" * 200  # 6,000+ bytes
    await send(Outbound("wecom", chat_id(KF, "u6"), long, conversation_id=2, outbox_id=2))
    parts = rig.api.sent_to("u6")
    assert len(parts) == 3 and "".join(parts) == long
    assert all(len(p.encode()) <= 2048 for p in parts)


def test_split_text_respects_bytes_and_lines() -> None:
    assert split_text("") == [""]
    assert split_text("短") == ["短"]
    text = "a" * 2000 + "\n" + "b" * 100
    assert split_text(text) == ["a" * 2000 + "\n", "b" * 100]
    emoji = "😀" * 1000  # 4 bytes each
    parts = split_text(emoji)
    assert [len(p.encode()) for p in parts] == [2048, 1952]


def test_missing_secrets_name_the_environment_variable() -> None:
    with pytest.raises(ValueError, match=r"\$WECOM_AES_KEY"):
        WecomChannel(WecomChannelConfig(enabled=True, corp_id=CORP_ID, token=TOKEN, secret=SECRET))
    with pytest.raises(ValueError, match="EncodingAESKey"):
        WecomChannel(
            WecomChannelConfig(
                enabled=True, corp_id=CORP_ID, token=TOKEN, secret=SECRET, aes_key="short"
            )
        )
    channel = WecomChannel(
        WecomChannelConfig(
            enabled=True, corp_id=CORP_ID, token=TOKEN, secret=SECRET, aes_key=random_aes_key()
        )
    )
    line = channel.describe("https://bot.example.com")
    assert "https://bot.example.com/channels/wecom" in line and "$WECOM_TOKEN" in line


@pytest.mark.slow
async def test_a_callback_while_another_worker_pulls_is_not_lost(
    config: Config, encoder: MemoEncoder, api: tuple[FakeQyapi, str], tmp_path: Path
) -> None:
    """Worker A is mid-pull when worker B gets a callback: B leaves a note, A pulls once more
    with B's token before letting go, and the new message is answered with no further callback."""
    key, url = random_aes_key(), f"sqlite:///{tmp_path}/shared.sqlite3"
    first = await make_rig(config, encoder, url, api, key)
    second = await make_rig(config, encoder, url, api, key)
    fake = first.api
    try:
        fake.customer_says(KF, "u1", "运费多少")
        fake.sync_gate = asyncio.Event()
        await first.news(token="token-A")
        await until(lambda: len(fake.of("sync_msg")) == 1)  # A holds the lease, page cut
        fake.customer_says(KF, "u2", "运费多少")
        await second.news(token="token-B")
        store = second.store

        def noted() -> bool:
            with store.engine.connect() as conn:
                note = channel_state.get(conn, "wecom", f"wanted:{KF}", datetime.now(UTC))
            return note == "token-B"

        await until(noted)
        fake.sync_gate.set()
        await until(lambda: bool(fake.sent_to("u2")))
        await first.settle()
        await second.settle()
        assert fake.sent_to("u1").count(SHIPPING) == 1
        assert fake.sent_to("u2").count(SHIPPING) == 1
        assert "token-B" in {c.body["token"] for c in fake.of("sync_msg")[1:]}
        assert stored_cursor(first) == "c2"
    finally:
        fake.sync_gate = None
        await first.close()
        await second.close()


@pytest.mark.slow
async def test_stopping_mid_pull_ends_cleanly_and_keeps_the_cursor(
    config: Config, encoder: MemoEncoder, api: tuple[FakeQyapi, str], tmp_path: Path
) -> None:
    rig = await make_rig(config, encoder, f"sqlite:///{tmp_path}/s.sqlite3", api, random_aes_key())
    fake = rig.api
    fake.customer_says(KF, "u1", "运费多少")
    fake.sync_gate = asyncio.Event()
    try:
        await rig.news()
        await until(lambda: len(fake.of("sync_msg")) == 1)
        rig.channel.stop_grace = 0.5
        started = time.monotonic()
        await rig.close()  # the pull is stuck in sync_msg: it is cancelled, not awaited forever
        assert time.monotonic() - started < 3
        assert rig.channel.puller is not None and not rig.channel.puller.tasks
        assert stored_cursor(rig) is None and fake.sent_to("u1") == []
    finally:
        fake.sync_gate.set()


@pytest.mark.slow
async def test_two_workers_on_postgres_answer_each_message_once(
    config: Config,
    encoder: MemoEncoder,
    api: tuple[FakeQyapi, str],
    postgres_url: str,
) -> None:
    key = random_aes_key()
    first = await make_rig(config, encoder, postgres_url, api, key)
    second = await make_rig(config, encoder, postgres_url, api, key)
    fake = first.api
    try:
        users = [f"p{i}" for i in range(8)]
        callbacks: list[Awaitable[int]] = []
        for _ in range(3):
            for user in users:
                fake.customer_says(KF, user, "运费多少")
            callbacks += [first.news(), second.news()]
            await asyncio.gather(*callbacks)
            callbacks = []
        await first.settle()
        await second.settle()
        await until(lambda: stored_cursor(first) == f"c{len(fake.log[KF])}")
        for user in users:
            sent = fake.sent_to(user)
            # three answers, and at most the after-hours notice once
            assert sent.count(SHIPPING) == 3 and len(sent) <= 4, (user, sent)
        # workers share the access token through channel_state (both may fetch at first)
        assert fake.tokens_issued <= 2
        assert stored_cursor(second) == f"c{len(fake.log[KF])}"
    finally:
        await first.close()
        await second.close()


async def test_a_failed_pull_is_tried_again_without_waiting_for_news(rig: Rig) -> None:
    """WeCom busy (errcode -1) on the first sync_msg: the worker pulls again after a pause,
    and the customer is answered although no second callback comes."""
    assert rig.channel.puller is not None
    rig.channel.puller.settings.retry_waits = (0.2,)
    rig.api.failures["sync_msg"] = [-1]
    rig.api.customer_says(KF, "u5", "运费多少")
    await rig.news()
    await until(lambda: SHIPPING in rig.api.sent_to("u5"))
    assert [c.errcode for c in rig.api.of("sync_msg")][:2] == [-1, 0]
