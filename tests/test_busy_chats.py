"""One busy chat never delays another (issue 21): the real `bot run` application with the
Telegram and WeCom channels, against the loopback fakes of both APIs, while a Telegram group
is at its sending limit or a chat's request hangs. Times are taken at the fake servers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer

from adapters.telegram import TelegramChannel
from adapters.wecom import WecomChannel
from bot.assembly import build_pipeline
from bot.content.config import Config, TelegramChannelConfig, WecomChannelConfig
from bot.domain.clock import SystemClock
from bot.store import outbox
from bot.store.database import Store
from bot.store.schema import conversations
from bot.understanding.encoders import MemoEncoder
from bot.web.app import Parts, make_app
from bot.web.channels import Channel
from tests.support.fakes import telegram_api as tg
from tests.support.fakes.telegram_api import TOKEN, FakeBotAPI
from tests.support.fakes.wecom_api import CORP_ID, SECRET, FakeQyapi, WecomServer, random_aes_key
from tests.support.fakes.wecom_api import TOKEN as WECOM_TOKEN
from tests.support.service import AppClient
from tests.support.waiting import until

KF = "wk-test-account"
GROUP = -100777
PRIVATE = 777
#: a group's limit, per minute: Telegram's 20, scaled up so that the test takes seconds
GROUP_PER_MINUTE = 120
GROUP_REPLIES = 24


@dataclass
class Service:
    client: AppClient
    store: Store
    telegram: FakeBotAPI
    qyapi: FakeQyapi
    wecom: WecomServer

    def sent_to(self, chat: int) -> list[tg.Call]:
        return [c for c in self.telegram.sent() if c.params["chat_id"] == str(chat)]

    async def wecom_says(self, user: str, text: str) -> float:
        """A WeCom customer's message and WeCom's callback about it; returns when."""
        self.qyapi.customer_says(KF, user, text)
        query, body = self.wecom.kf_news(KF)
        at = time.monotonic()
        response = await self.client.post("/channels/wecom", params=query, data=body)
        assert await response.text() == "success"
        return at

    def wecom_replies(self, user: str, after: float) -> list[float]:
        return [
            c.at
            for c in self.qyapi.of("send_msg")
            if c.body["touser"] == user and c.errcode == 0 and c.at >= after
        ]


@pytest.fixture
async def service(config: Config, encoder: MemoEncoder, tmp_path: Path) -> AsyncIterator[Service]:
    qyapi = FakeQyapi()
    qyapi_server = TestServer(qyapi.app, host="127.0.0.1")
    await qyapi_server.start_server()
    async with tg.running() as (telegram, telegram_base):
        aes_key = random_aes_key()
        channels: list[Channel] = [
            TelegramChannel(
                TelegramChannelConfig(
                    enabled=True,
                    token=TOKEN,
                    token_env="BOT_TEST_UNSET_TELEGRAM_TOKEN",
                    api_base=telegram_base,
                    polling_timeout=1,
                    per_group_per_minute=GROUP_PER_MINUTE,
                    request_timeout=1,
                ),
                standby_seconds=0.2,
                retry_seconds=0.2,
            ),
            WecomChannel(
                WecomChannelConfig(
                    enabled=True,
                    corp_id=CORP_ID,
                    token=WECOM_TOKEN,
                    aes_key=aes_key,
                    secret=SECRET,
                    api_base=str(qyapi_server.make_url("")).rstrip("/"),
                )
            ),
        ]
        url = f"sqlite:///{tmp_path}/bot.sqlite3"
        pipeline = build_pipeline(config, SystemClock(), store_url=url, encoder=encoder)
        app = make_app(Parts(pipeline, channels, run_scheduler=False))
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        try:
            yield Service(client, pipeline.store, telegram, qyapi, WecomServer(aes_key))
        finally:
            await client.close()
            await qyapi_server.close()


def write_to_group(store: Store, texts: list[str]) -> None:
    """Replies for the group's conversation, as agents' notices to an agents' group are."""
    with store.transaction() as tx:
        conversation_id = tx.execute(
            sa.select(conversations.c.id).where(conversations.c.chat_id == str(GROUP))
        ).scalar_one()
    conversation = store.conversation(conversation_id)
    with store.transaction() as tx:
        for text in texts:
            outbox.add(tx, conversation, None, text, SystemClock().now())


def in_group(text: str) -> dict[str, Any]:
    """A member's question to the bot in the group (a group's chatter not addressed to the bot
    is not answered): the bot's @mention first."""
    mention = "@shop_bot "
    return tg.text_update(
        mention + text,
        chat_id=GROUP,
        user_id=501,
        message_id=1,
        entities=[{"type": "mention", "offset": 0, "length": len(mention) - 1}],
    )


@pytest.mark.slow
async def test_a_group_at_its_limit_delays_no_other_customer(service: Service) -> None:
    telegram = service.telegram
    telegram.push(in_group("运费多少"))
    await until(lambda: service.sent_to(GROUP), 15)
    await until(lambda: not service.store.unsent_outbound())
    before = len(service.sent_to(GROUP))
    group_texts = [f"group notice {n}" for n in range(GROUP_REPLIES)]
    write_to_group(service.store, group_texts)
    # the group has used its burst and waits for its turn at 2 a second
    await until(lambda: len(service.sent_to(GROUP)) >= before + 5)

    asked = time.monotonic()
    telegram.push(tg.text_update("运费多少", chat_id=PRIVATE, message_id=2))
    wecom_asked = await service.wecom_says("wx-customer", "运费多少")
    await until(lambda: service.sent_to(PRIVATE) and service.wecom_replies("wx-customer", 0), 20)
    private_wait = service.sent_to(PRIVATE)[0].at - asked
    wecom_wait = service.wecom_replies("wx-customer", wecom_asked)[0] - wecom_asked
    assert private_wait < 1.0, f"the private customer waited {private_wait:.2f} s"
    assert wecom_wait < 1.0, f"the WeCom customer waited {wecom_wait:.2f} s"
    assert len(service.sent_to(GROUP)) < before + GROUP_REPLIES  # the group was still busy

    # the group's replies all arrive, in order, each once, and within its limit
    await until(lambda: len(service.sent_to(GROUP)) >= before + GROUP_REPLIES, 30)
    await until(lambda: not service.store.unsent_outbound())
    sent = service.sent_to(GROUP)[before:]
    assert [c.params["text"] for c in sent] == group_texts
    spread = sent[-1].at - sent[0].at
    assert spread >= (GROUP_REPLIES - 4) * 60 / GROUP_PER_MINUTE - 0.5


@pytest.mark.slow
async def test_a_hanging_request_delays_only_its_own_chat(service: Service) -> None:
    telegram = service.telegram
    telegram.slow[str(GROUP)] = [30.0]  # the next send to the group hangs
    telegram.push(in_group("运费多少"))
    await until(lambda: telegram.called("sendMessage"), 15)

    asked = time.monotonic()
    telegram.push(tg.text_update("运费多少", chat_id=PRIVATE, message_id=2))
    wecom_asked = await service.wecom_says("wx-customer", "运费多少")
    await until(lambda: service.sent_to(PRIVATE) and service.wecom_replies("wx-customer", 0), 20)
    assert service.sent_to(PRIVATE)[0].at - asked < 1.0
    assert service.wecom_replies("wx-customer", wecom_asked)[0] - wecom_asked < 1.0
    # the hung send was given up after request_timeout and tried again
    await until(lambda: service.sent_to(GROUP), 15)
