"""The Telegram channel end to end: the real `bot run` application with the real aiogram,
against a loopback fake of the Bot API (tests/support/fakes/telegram_api.py), in polling and webhook
mode, on SQLite and (two workers) on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from adapters.telegram import TelegramChannel, callback_inbound, message_inbound
from adapters.telegram.sender import (
    Limits,
    TokenBucket,
    keyboard,
    reply_target,
    split_text,
    utf16_len,
)
from bot.assembly import build_pipeline
from bot.content.config import Config, TelegramChannelConfig, load_config
from bot.domain.clock import SystemClock
from bot.domain.messages import Kind
from bot.store.database import Store
from bot.store.schema import channel_state, conversations, decisions, messages, tickets
from bot.understanding.encoders import MemoEncoder
from bot.web.app import SERVICE, Parts, make_app
from tests.support.fakes import telegram_api as tg
from tests.support.fakes.telegram_api import TOKEN, FakeBotAPI
from tests.support.service import AppClient
from tests.support.shop import SHANGHAI, pin_thresholds
from tests.support.waiting import until

SECRET = "test-webhook-secret_not-real"
SHIPPING = "订单满 99 元包邮，不满收取 8 元运费。"
INVOICE = "在“我的订单”中点击“申请发票”即可开具电子发票。"
PUBLIC = "https://bot.example.test"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeBotAPI, str]]:
    async with tg.running() as found:
        yield found


def channel_config(base: str, mode: str = "polling") -> TelegramChannelConfig:
    return TelegramChannelConfig(
        enabled=True,
        mode=mode,
        token=TOKEN,
        token_env="BOT_TEST_UNSET_TELEGRAM_TOKEN",
        webhook_secret=SECRET,
        webhook_secret_env="BOT_TEST_UNSET_TELEGRAM_SECRET",
        api_base=base,
        polling_timeout=1,
        per_chat_per_second=50,
        per_group_per_minute=600,  # a group's own limit has tests of its own
        overall_per_second=100,
    )


async def start_worker(
    config: Config,
    encoder: MemoEncoder,
    base: str,
    store_url: str,
    *,
    mode: str = "polling",
    worker: str = "w1",
) -> tuple[AppClient, TelegramChannel]:
    """One `bot run` worker, in-process, with only the Telegram channel."""
    config.service.public_url = PUBLIC
    pipeline = build_pipeline(config, SystemClock(), store_url=store_url, encoder=encoder)
    pipeline.worker = worker
    channel = TelegramChannel(channel_config(base, mode), standby_seconds=0.2, retry_seconds=0.2)
    app = make_app(Parts(pipeline, [channel], run_scheduler=False))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client, channel


def texts(api: FakeBotAPI) -> list[str]:
    return [str(c.params["text"]) for c in api.sent()]


def stored(store_url: str) -> int:
    store = Store(store_url)
    try:
        with store.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(messages)
                    .where(messages.c.channel == "telegram", messages.c.direction == "in")
                ).scalar_one()
            )
    finally:
        store.close()


async def post_update(
    client: AppClient, update: dict[str, Any], secret: str | None = SECRET
) -> ClientResponse:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return await client.post("/channels/telegram/webhook", json=update, headers=headers)


# --- polling --------------------------------------------------------------------------------


@pytest.mark.slow
async def test_polling_answers_a_message_once(
    config: Config, encoder: MemoEncoder, fake: tuple[FakeBotAPI, str], tmp_path: Path
) -> None:
    api, base = fake
    url = f"sqlite:///{tmp_path}/bot.sqlite3"
    client, channel = await start_worker(config, encoder, base, url)
    try:
        assert channel.describe(PUBLIC) == "long polling (no URL to register)"
        api.push(tg.text_update("运费多少", message_id=11))
        await until(lambda: SHIPPING in texts(api))
        [answer] = [c for c in api.sent() if c.params["text"] == SHIPPING]
        assert answer.params["chat_id"] == "777"
        assert answer.params["reply_parameters"]["message_id"] == 11
        assert api.called("deleteWebhook")  # polling takes over from a webhook
        # the same message delivered again (Telegram re-sends what was not confirmed)
        api.push(tg.text_update("运费多少", message_id=11))
        await until(lambda: not api.pending)  # fetched and confirmed
        await asyncio.sleep(0.6)  # a dispatcher round
        assert texts(api).count(SHIPPING) == 1
        # each getUpdates confirmed what the previous one returned
        offsets = [c.params.get("offset") for c in api.called("getUpdates")]
        assert offsets[0] is None and "1001" in offsets
    finally:
        await client.close()
    assert stored(url) == 1
    assert channel.bot is None and channel.polling is None


@pytest.mark.slow
async def test_polling_survives_answers_it_cannot_read(
    config: Config, encoder: MemoEncoder, fake: tuple[FakeBotAPI, str], tmp_path: Path
) -> None:
    """A proxy in front of the Bot API answers with an HTML error page: polling goes on and
    the customer is answered once the API is back."""
    api, base = fake
    for _ in range(3):
        api.fail("getUpdates", 502, "", page="<html><body>502 Bad Gateway</body></html>")
    url = f"sqlite:///{tmp_path}/bot.sqlite3"
    client, channel = await start_worker(config, encoder, base, url)
    try:
        api.push(tg.text_update("运费多少", message_id=15))
        await until(lambda: SHIPPING in texts(api))
        assert len(api.called("getUpdates")) >= 4
        assert channel.polling is not None and channel.polling.polling
    finally:
        await client.close()


async def test_polling_skips_an_update_aiogram_cannot_read(
    config: Config,
    encoder: MemoEncoder,
    fake: tuple[FakeBotAPI, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One update whose `message.date` is a string made every getUpdates answer unreadable to
    aiogram at the same offset: every customer went unanswered. The others in the batch are
    answered, the bad one is fetched again a few times, then skipped with a warning naming it,
    its body kept masked, and polling carries on."""
    api, base = fake
    url = f"sqlite:///{tmp_path}/bot.sqlite3"
    caplog.set_level("WARNING", logger="adapters.telegram")
    client, channel = await start_worker(config, encoder, base, url)
    try:
        await until(lambda: bool(api.called("getUpdates")))
        api.push(tg.text_update("运费多少", message_id=91, chat_id=901))
        poison = api.push(tg.unreadable_update("我的手机 13812345678", message_id=92, chat_id=902))
        api.push(tg.text_update("运费多少", message_id=93, chat_id=903))
        await until(lambda: not api.pending, seconds=20)
        await until(lambda: {"901", "903"} <= {c.params["chat_id"] for c in api.sent()})
        api.push(tg.text_update("运费多少", message_id=94, chat_id=904))
        await until(lambda: "904" in {c.params["chat_id"] for c in api.sent()})
        assert "902" not in {c.params["chat_id"] for c in api.sent()}
        assert channel.polling is not None and channel.polling.trouble() is None
    finally:
        await client.close()
    # fetched three times, then skipped: the offset moved past it
    returned = [c for c in api.called("getUpdates") if c.result]
    assert sum(any(u["update_id"] == poison for u in c.result) for c in returned) == 3
    offsets = [int(c.params["offset"]) for c in api.called("getUpdates") if "offset" in c.params]
    assert offsets[:2] == [poison, poison] and max(offsets) > poison
    assert any(
        f"update {poison} cannot be read after 3 tries" in r.getMessage() for r in caplog.records
    )
    assert not any("13812345678" in r.getMessage() for r in caplog.records)
    store = Store(url)
    with store.engine.connect() as conn:
        kept = conn.execute(
            sa.select(channel_state.c.value).where(
                channel_state.c.channel == "telegram",
                channel_state.c.key == f"unreadable:{poison}",
            )
        ).scalar_one()
    store.close()
    assert "138****5678" in kept and "13812345678" not in kept
    assert json.loads(kept)["message"]["date"] == "yesterday"
    assert stored(url) == 3  # the three readable ones, each once


@pytest.mark.slow
async def test_readyz_reports_polling_that_fails_without_moving(
    config: Config, encoder: MemoEncoder, fake: tuple[FakeBotAPI, str], tmp_path: Path
) -> None:
    """Telegram keeps failing (here a proxy's error page): after `stall_seconds` of failed
    rounds the worker says it is not ready and why; it is ready again once polling moves."""
    api, base = fake
    for _ in range(4):
        api.fail("getUpdates", 502, "", page="<html><body>502 Bad Gateway</body></html>")
    config.service.public_url = PUBLIC
    pipeline = build_pipeline(
        config, SystemClock(), store_url=f"sqlite:///{tmp_path}/bot.sqlite3", encoder=encoder
    )
    channel = TelegramChannel(
        channel_config(base), standby_seconds=0.2, retry_seconds=0.2, stall_seconds=1.0
    )
    client = TestClient(
        TestServer(make_app(Parts(pipeline, [channel], run_scheduler=False)), host="127.0.0.1")
    )
    await client.start_server()

    async def ready() -> dict[str, Any]:
        response = await client.get("/readyz")
        body: dict[str, Any] = await response.json()
        assert response.status == (200 if body["ready"] else 503)
        return body

    try:
        body = await ready()
        deadline = time.monotonic() + 10
        while body["ready"] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            body = await ready()
        assert body["channels"] is False and body["database"]
        assert "polling has not moved" in body["troubles"]["telegram"]
        assert "502" in body["troubles"]["telegram"] or "unreadable" in body["troubles"]["telegram"]
        api.push(tg.text_update("运费多少", message_id=95))
        await until(lambda: SHIPPING in texts(api), seconds=30)
        assert (await ready())["ready"]
    finally:
        await client.close()


async def test_polling_does_not_lose_an_update_the_database_refused(
    config: Config, encoder: MemoEncoder, fake: tuple[FakeBotAPI, str], tmp_path: Path
) -> None:
    """The messages table is gone for a moment (a botched migration, a restore): the update is
    not confirmed, and once the table is back the same update is fetched and answered once."""
    api, base = fake
    path = tmp_path / "bot.sqlite3"
    client, _ = await start_worker(config, encoder, base, f"sqlite:///{path}")
    outside = sqlite3.connect(path, isolation_level=None)
    try:
        outside.execute("ALTER TABLE messages RENAME TO messages_away")
        update_id = api.push(tg.text_update("运费多少", message_id=21))

        def fetched_twice() -> bool:
            returned = [c for c in api.called("getUpdates") if c.result]
            return sum(bool(u["update_id"] == update_id) for c in returned for u in c.result) >= 2

        await until(fetched_twice)
        assert api.pending and not api.sent()
        outside.execute("ALTER TABLE messages_away RENAME TO messages")
        await until(lambda: SHIPPING in texts(api))
        await until(lambda: not api.pending)
        await asyncio.sleep(0.3)
        assert texts(api).count(SHIPPING) == 1
    finally:
        outside.close()
        await client.close()


async def test_only_one_worker_polls_and_the_other_takes_over(
    config: Config, encoder: MemoEncoder, fake: tuple[FakeBotAPI, str], postgres_url: str
) -> None:
    api, base = fake
    first, one = await start_worker(config, encoder, base, postgres_url, worker="w1")
    second, two = await start_worker(config, encoder, base, postgres_url, worker="w2")
    workers = {"w1": (first, one), "w2": (second, two)}
    try:
        await until(lambda: one.polling is not None and two.polling is not None)
        await until(lambda: bool(api.called("getUpdates")))
        await asyncio.sleep(0.5)  # the other worker has looked and stood by
        assert one.polling and two.polling
        pollers = [name for name, (_, c) in workers.items() if c.polling and c.polling.polling]
        assert len(pollers) == 1, pollers
        for n in range(5):
            api.push(tg.text_update("运费多少", message_id=100 + n, chat_id=1000 + n))
        await until(lambda: texts(api).count(SHIPPING) == 5)

        client, _ = workers.pop(pollers[0])
        await client.close()  # the poller stops and gives the lease back
        [(_, survivor)] = workers.values()
        assert survivor.polling is not None
        await until(lambda: survivor.polling is not None and survivor.polling.polling)
        for n in range(5, 8):
            api.push(tg.text_update("运费多少", message_id=100 + n, chat_id=1000 + n))
        await until(lambda: texts(api).count(SHIPPING) == 8)
        await asyncio.sleep(0.6)
        assert texts(api).count(SHIPPING) == 8
        assert api.most_polling_at_once == 1
        assert sorted(c.params["chat_id"] for c in api.sent() if c.params["text"] == SHIPPING) == [
            str(1000 + n) for n in range(8)
        ]
    finally:
        for client, _ in workers.values():
            await client.close()
    assert stored(postgres_url) == 8


# --- webhook --------------------------------------------------------------------------------


async def test_webhook_secret_bodies_commands_edits_and_photos(
    config: Config, encoder: MemoEncoder, fake: tuple[FakeBotAPI, str], tmp_path: Path
) -> None:
    api, base = fake
    url = f"sqlite:///{tmp_path}/bot.sqlite3"
    api.fail("setWebhook", 502, "Bad Gateway")  # Telegram unreachable for a moment at start
    client, channel = await start_worker(config, encoder, base, url, mode="webhook")
    try:
        hook = f"{PUBLIC}/channels/telegram/webhook"
        await until(lambda: channel.webhook_url is not None)  # registered in the background
        assert len(api.called("setWebhook")) == 2
        assert api.webhook["url"] == hook and api.webhook["secret_token"] == SECRET
        assert api.webhook["allowed_updates"] == ["message", "edited_message", "callback_query"]
        assert hook in channel.describe(PUBLIC)
        assert not api.called("getUpdates")

        update = {"update_id": 1, **tg.text_update("运费多少", message_id=31)}
        assert (await post_update(client, update, secret="guess")).status == 401
        assert (await post_update(client, update, secret=None)).status == 401
        assert stored(url) == 0
        broken = await client.post(
            "/channels/telegram/webhook",
            data="{not json",
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        )
        assert broken.status == 400
        assert (await post_update(client, {"update_id": "x", "message": 5})).status == 200
        unreadable = {"update_id": 99, **tg.unreadable_update("电话 13812345678", message_id=30)}
        assert (await post_update(client, unreadable)).status == 200
        assert stored(url) == 0

        assert (await post_update(client, update)).status == 200
        assert stored(url) == 1  # written before the 200
        await until(lambda: SHIPPING in texts(api))
        # Telegram re-sends (the 200 was lost): answered once
        assert (await post_update(client, {**update, "update_id": 2})).status == 200
        await asyncio.sleep(0.6)
        assert texts(api).count(SHIPPING) == 1

        # /start: the welcome event gets a reply; /human hands off
        before = len(api.sent())
        start = {"update_id": 3, **tg.text_update("/start", message_id=32, chat_id=778)}
        assert (await post_update(client, start)).status == 200
        await until(lambda: any(c.params["chat_id"] == "778" for c in api.sent()))
        human = {"update_id": 4, **tg.text_update("/human", message_id=33, chat_id=779)}
        assert (await post_update(client, human)).status == 200
        await until(lambda: any(c.params["chat_id"] == "779" for c in api.sent()))

        # an edit is a new message: answered, not a crash
        edited = tg.message("可以开发票吗", message_id=31, edit_date=int(time.time()))
        assert (await post_update(client, {"update_id": 5, "edited_message": edited})).status == 200
        # a photo (with no caption) is asked for words
        photo = tg.message(
            message_id=34,
            chat_id=780,
            photo=[
                {"file_id": "small-id", "file_unique_id": "s", "width": 90, "height": 90},
                {"file_id": "large-id", "file_unique_id": "l", "width": 800, "height": 800},
            ],
        )
        assert (await post_update(client, {"update_id": 6, "message": photo})).status == 200
        await until(lambda: any(c.params["chat_id"] == "780" for c in api.sent()))
        [asked] = [c for c in api.sent() if c.params["chat_id"] == "780"][:1]
        assert "文字" in asked.params["text"]
        await until(lambda: len(api.sent()) >= before + 4)
        edits = [c for c in api.sent()[before:] if c.params["chat_id"] == "777"]
        assert edits and edits[0].params["reply_parameters"]["message_id"] == 31

        # the database refuses: 500, so Telegram sends it again, and then it is answered once
        again = {"update_id": 7, **tg.text_update("运费多少", message_id=35, chat_id=781)}
        outside = sqlite3.connect(tmp_path / "bot.sqlite3", isolation_level=None)
        outside.execute("ALTER TABLE messages RENAME TO messages_away")
        try:
            assert (await post_update(client, again)).status == 500
        finally:
            outside.execute("ALTER TABLE messages_away RENAME TO messages")
            outside.close()
        assert (await post_update(client, again)).status == 200
        await until(lambda: any(c.params["chat_id"] == "781" for c in api.sent()))
        # shutting down: 503, another worker (or this one, later) takes it
        await client.app[SERVICE].drain(0)
        late = {"update_id": 8, **tg.text_update("运费多少", message_id=36, chat_id=782)}
        assert (await post_update(client, late)).status == 503
    finally:
        await client.close()
    store = Store(url)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(messages.c.external_id, messages.c.kind, decisions.c.action)
            .join(decisions, decisions.c.message_id == messages.c.id)
            .where(messages.c.channel == "telegram")
            .order_by(messages.c.id)
        ).all()
    store.close()
    by_id = {row.external_id: (row.kind, row.action) for row in rows}
    assert by_id["777:31"] == ("text", "answer")
    assert by_id["778:32"][0] == "event"
    assert by_id["779:33"] == ("text", "handoff")
    assert [k for k in by_id if k.startswith("777:31:e")]
    assert by_id["780:34"] == ("image", "not_text")
    assert by_id["781:35"] == ("text", "answer") and "782:36" not in by_id
    store = Store(url)
    with store.engine.connect() as conn:
        kept = dict(
            conn.execute(
                sa.select(channel_state.c.key, channel_state.c.value).where(
                    channel_state.c.channel == "telegram"
                )
            ).all()
        )
    store.close()
    assert list(kept) == ["unreadable:99"] and "138****5678" in kept["unreadable:99"]


PHOTO = [
    {"file_id": "small-id", "file_unique_id": "s", "width": 90, "height": 90},
    {"file_id": "large-id", "file_unique_id": "l", "width": 800, "height": 800},
]


async def test_a_photo_caption_is_read_as_the_customers_words(
    config: Config, encoder: MemoEncoder, fake: tuple[FakeBotAPI, str], tmp_path: Path
) -> None:
    """A photo captioned with an emergency goes to the urgent line like the same words typed;
    the photo stays with the message for the agent. A photo without words is asked for words."""
    api, base = fake
    url = f"sqlite:///{tmp_path}/bot.sqlite3"
    client, _ = await start_worker(config, encoder, base, url, mode="webhook")
    try:
        smoke = tg.message(message_id=71, chat_id=790, photo=PHOTO, caption="紧急！插座冒烟了")
        assert (await post_update(client, {"update_id": 1, "message": smoke})).status == 200
        bare = tg.message(message_id=72, chat_id=791, photo=PHOTO)
        assert (await post_update(client, {"update_id": 2, "message": bare})).status == 200
        await until(lambda: {c.params["chat_id"] for c in api.sent()} >= {"790", "791"})
        [urgent] = [c.params["text"] for c in api.sent() if c.params["chat_id"] == "790"][:1]
        assert "文字" not in urgent
        [asked] = [c.params["text"] for c in api.sent() if c.params["chat_id"] == "791"][:1]
        assert "文字" in asked
    finally:
        await client.close()
    store = Store(url)
    with store.engine.connect() as conn:
        rows = {
            row.external_id: row
            for row in conn.execute(
                sa.select(
                    messages.c.external_id,
                    messages.c.kind,
                    messages.c.details,
                    decisions.c.action,
                    decisions.c.record,
                )
                .join(decisions, decisions.c.message_id == messages.c.id)
                .where(messages.c.channel == "telegram")
            )
        }
        queues = conn.execute(sa.select(tickets.c.queue)).scalars().all()
    store.close()
    smoke_row, bare_row = rows["790:71"], rows["791:72"]
    assert (smoke_row.kind, smoke_row.action) == ("text", "handoff")
    assert smoke_row.record["queue"] == "urgent"
    assert smoke_row.details["media"] == "image" and smoke_row.details["file_id"] == "large-id"
    assert (bare_row.kind, bare_row.action) == ("image", "not_text")
    assert queues == ["urgent"]


async def test_stories_paid_media_checklists_and_games_are_asked_for_words(
    config: Config, encoder: MemoEncoder, fake: tuple[FakeBotAPI, str], tmp_path: Path
) -> None:
    """Each is a customer sending something the bot cannot read, like a photo: it gets the
    "words only" reply rather than silence."""
    api, base = fake
    url = f"sqlite:///{tmp_path}/bot.sqlite3"
    client, _ = await start_worker(config, encoder, base, url, mode="webhook")
    sent: dict[str, Any] = {
        "story": {"chat": tg.chat(-100900), "id": 7},
        "paid_media": {"star_count": 5, "paid_media": [{"type": "preview"}]},
        "checklist": {"title": "清单", "tasks": [{"id": 1, "text": "一"}]},
        "game": {"title": "Game", "description": "a game", "photo": PHOTO},
    }
    try:
        for n, (content, body) in enumerate(sent.items()):
            update = {
                "update_id": n + 1,
                "message": tg.message(message_id=81, chat_id=800 + n, **{content: body}),
            }
            assert (await post_update(client, update)).status == 200
        chats = {str(800 + n) for n in range(len(sent))}
        await until(lambda: {c.params["chat_id"] for c in api.sent()} >= chats)
        for chat in chats:
            first = next(c.params["text"] for c in api.sent() if c.params["chat_id"] == chat)
            assert "文字" in first, chat
    finally:
        await client.close()
    store = Store(url)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(messages.c.kind, messages.c.details, decisions.c.action)
            .join(decisions, decisions.c.message_id == messages.c.id)
            .where(messages.c.channel == "telegram")
        ).all()
    store.close()
    assert sorted(row.details["content_type"] for row in rows) == sorted(sent)
    assert {(row.kind, row.action) for row in rows} == {("other", "not_text")}


GROUP = -100500


def in_group(text: str, message_id: int, user_id: int, **content: Any) -> dict[str, Any]:
    """A member's message in a supergroup the bot is in."""
    return tg.message(
        text,
        message_id=message_id,
        chat_id=GROUP,
        user_id=user_id,
        chat={"id": GROUP, "type": "supergroup", "title": "买家群"},
        **content,
    )


def answered(api: FakeBotAPI, chat: int = GROUP) -> set[int]:
    """The group's messages the bot replied to (by quoting them)."""
    return {
        int(c.params["reply_parameters"]["message_id"])
        for c in api.sent()
        if c.params["chat_id"] == str(chat) and "reply_parameters" in c.params
    }


async def test_in_a_group_the_bot_answers_only_what_is_addressed_to_it(
    config: Config, encoder: MemoEncoder, fake: tuple[FakeBotAPI, str], tmp_path: Path
) -> None:
    """Members chatting among themselves get nothing (not stored, no fallback, no notice);
    a mention (the mention cut before reading), a text mention, a reply to the bot and its own
    commands are answered; /start@other_bot and another bot's bare /report are not ours."""
    api, base = fake
    url = f"sqlite:///{tmp_path}/bot.sqlite3"
    client, _ = await start_worker(config, encoder, base, url, mode="webhook")
    bot_user = {"id": tg.BOT_ID, "is_bot": True, "first_name": "Shop", "username": "shop_bot"}
    ours = {
        "message_id": 5000,
        "date": int(time.time()),
        "chat": {"id": GROUP, "type": "supergroup"},
        "from": bot_user,
        "text": "订单满 99 元包邮",
    }
    ignored = [
        in_group("大家好，今天发货了吗", 201, 1),
        in_group("/start@other_bot", 202, 2),
        in_group("/report", 203, 3),
        in_group("@someone_else 运费多少", 204, 4, entities=[_mention(0, 13)]),
        in_group("", 205, 5, photo=PHOTO) | {"text": None},
    ]
    addressed = [
        in_group("@shop_bot 运费多少", 211, 6, entities=[_mention(0, 9)]),
        in_group(
            "Shop 运费多少",
            212,
            7,
            entities=[{"type": "text_mention", "offset": 0, "length": 4, "user": bot_user}],
        ),
        in_group("运费多少", 213, 8, reply_to_message=ours),
        in_group("/start@shop_bot", 214, 9),
    ]
    try:
        for n, body in enumerate(ignored + addressed):
            body = {k: v for k, v in body.items() if v is not None}
            assert (await post_update(client, {"update_id": n + 1, "message": body})).status == 200
        await until(lambda: answered(api) >= {211, 212, 213, 214})
        await asyncio.sleep(0.6)  # a dispatcher round: nothing else goes out
        assert answered(api) == {211, 212, 213, 214}
        for quoted in (211, 212, 213):
            assert any(
                c.params["text"] == SHIPPING
                and c.params["reply_parameters"]["message_id"] == quoted
                for c in api.sent()
            ), quoted
        assert api.called("getMe")  # who the bot is: asked once, kept
    finally:
        await client.close()
    store = Store(url)
    with store.engine.connect() as conn:
        rows = dict(
            conn.execute(
                sa.select(messages.c.external_id, messages.c.text).where(
                    messages.c.channel == "telegram", messages.c.direction == "in"
                )
            ).all()
        )
    store.close()
    assert sorted(rows) == [f"{GROUP}:{n}" for n in (211, 212, 213, 214)]
    assert rows[f"{GROUP}:211"] == "运费多少" and rows[f"{GROUP}:212"] == "运费多少"


async def test_a_group_may_be_answered_in_full(
    shop: Path, encoder: MemoEncoder, fake: tuple[FakeBotAPI, str], tmp_path: Path
) -> None:
    """`groups = "all"`: every member's message is answered, but another bot's command is
    still not the bot's."""
    path = shop / "config.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + '\n[channels.telegram]\ngroups = "all"\n', encoding="utf-8")
    config = load_config(path)
    api, base = fake
    settings = channel_config(base, "webhook").model_copy(
        update={"groups": config.channels.telegram.groups}
    )
    assert settings.groups == "all"
    config.service.public_url = PUBLIC
    pipeline = build_pipeline(
        config, SystemClock(), store_url=f"sqlite:///{tmp_path}/bot.sqlite3", encoder=encoder
    )
    channel = TelegramChannel(settings)
    client = TestClient(
        TestServer(make_app(Parts(pipeline, [channel], run_scheduler=False)), host="127.0.0.1")
    )
    await client.start_server()
    try:
        chatter = {"update_id": 1, "message": in_group("运费多少", 221, 1)}
        other = {"update_id": 2, "message": in_group("/start@other_bot", 222, 2)}
        assert (await post_update(client, other)).status == 200
        assert (await post_update(client, chatter)).status == 200
        await until(lambda: 221 in answered(api))
        await asyncio.sleep(0.6)
        assert answered(api) == {221}
    finally:
        await client.close()


def _mention(offset: int, length: int) -> dict[str, Any]:
    return {"type": "mention", "offset": offset, "length": length}


async def test_a_429_is_waited_out_and_the_reply_sent_once(
    config: Config, encoder: MemoEncoder, fake: tuple[FakeBotAPI, str], tmp_path: Path
) -> None:
    api, base = fake
    client, _ = await start_worker(
        config, encoder, base, f"sqlite:///{tmp_path}/bot.sqlite3", mode="webhook"
    )
    try:
        api.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
        update = {"update_id": 1, **tg.text_update("运费多少", message_id=41)}
        assert (await post_update(client, update)).status == 200
        await until(lambda: SHIPPING in texts(api))
        refused, accepted = api.called("sendMessage")[:2]
        assert refused.result is None and accepted.params["text"] == SHIPPING
        assert accepted.at - refused.at >= 1.0
        await asyncio.sleep(0.6)
        assert texts(api).count(SHIPPING) == 1
    finally:
        await client.close()


async def test_a_blocked_bot_marks_the_conversation_unreachable(
    config: Config, encoder: MemoEncoder, fake: tuple[FakeBotAPI, str], tmp_path: Path
) -> None:
    api, base = fake
    url = f"sqlite:///{tmp_path}/bot.sqlite3"
    client, _ = await start_worker(config, encoder, base, url, mode="webhook")
    try:
        api.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")
        update = {"update_id": 1, **tg.text_update("运费多少", message_id=51)}
        assert (await post_update(client, update)).status == 200

        def reason() -> str | None:
            store = Store(url)
            try:
                with store.engine.connect() as conn:
                    return conn.execute(sa.select(conversations.c.unreachable_reason)).scalar()
            finally:
                store.close()

        await until(lambda: reason() is not None)
        assert "blocked" in str(reason())
        await asyncio.sleep(1.0)  # dispatcher rounds: nothing is tried again
        assert len(api.called("sendMessage")) == 1 and not api.sent()
    finally:
        await client.close()


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_a_suggestion_picked_by_button_is_answered(
    mode: str, shop: Path, encoder: MemoEncoder, fake: tuple[FakeBotAPI, str], tmp_path: Path
) -> None:
    path = pin_thresholds(shop)
    api, base = fake
    client, _ = await start_worker(
        load_config(path), encoder, base, f"sqlite:///{tmp_path}/bot.sqlite3", mode=mode
    )

    async def deliver(update: dict[str, Any]) -> None:
        if mode == "webhook":
            assert (await post_update(client, {"update_id": 1, **update})).status == 200
        else:
            api.push(update)
            await until(lambda: not api.pending)

    try:
        await deliver(tg.text_update("发漂怎么开", message_id=61))
        await until(lambda: any("reply_markup" in c.params for c in api.sent()))
        [offer] = [c for c in api.sent() if "reply_markup" in c.params]
        buttons = [row[0] for row in offer.params["reply_markup"]["inline_keyboard"]]
        assert buttons[0] == {"text": "怎么开发票", "callback_data": "pick:1"}
        assert [b["callback_data"] for b in buttons] == [
            f"pick:{n}" for n in range(1, len(buttons) + 1)
        ]
        assert "1. 怎么开发票" in offer.params["text"]
        before = len(api.sent())

        await deliver(tg.callback_update("pick:1", query_id="q-61"))
        assert [c.params["callback_query_id"] for c in api.called("answerCallbackQuery")] == [
            "q-61"
        ]
        await until(lambda: INVOICE in texts(api)[before:])
        [answer] = [c for c in api.sent()[before:] if c.params["text"] == INVOICE]
        assert "reply_markup" not in answer.params
    finally:
        await client.close()


# --- where replies go -------------------------------------------------------------------------

CUSTOMERS_GROUP, PRIVATE = -100200, 777
COMPLAINT = "退货拖了两周了 你们到底管不管"


def closed_for_hours(shop: Path) -> None:
    """The shop's team is away for the next three hours, whenever the test runs: every day's
    hours start three hours from now, and no holiday or special date moves them."""
    path = shop / "schedules" / "default.toml"
    hour = datetime.now(SHANGHAI).hour
    start, end = (hour + 3) % 24, (hour + 4) % 24
    hours = f'["{start:02d}:00-{end or 24:02d}:00"]'
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        day = line.split(" = ")[0]
        if day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
            line = f"{day} = {hours}"
        elif line.startswith(("holidays", '"2026-')):
            continue
        lines.append(line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("first", "second"), [(CUSTOMERS_GROUP, PRIVATE), (PRIVATE, CUSTOMERS_GROUP)]
)
async def test_replies_go_to_the_chat_the_message_came_from(
    shop: Path,
    encoder: MemoEncoder,
    fake: tuple[FakeBotAPI, str],
    tmp_path: Path,
    first: int,
    second: int,
) -> None:
    """A customer says hello in one chat (a group, or in private), then complains in the other:
    the handoff and its after-hours words go to the chat of the complaint, nothing more to the
    first one. Each chat is its own conversation, with its own after-hours notice."""
    closed_for_hours(shop)
    api, base = fake
    url = f"sqlite:///{tmp_path}/bot.sqlite3"
    client, _ = await start_worker(
        load_config(shop / "config.toml"), encoder, base, url, mode="webhook"
    )
    try:
        hello = _said("你好", 71, first)
        assert (await post_update(client, {"update_id": 1, **hello})).status == 200
        await until(lambda: len(api.sent()) >= 2)  # the greeting and the after-hours notice
        await asyncio.sleep(0.6)  # a dispatcher round: nothing else
        greeted = api.sent()
        assert {c.params["chat_id"] for c in greeted} == {str(first)}
        assert any("非工作时间" in str(c.params["text"]) for c in greeted)

        angry = _said(COMPLAINT, 72, second)
        assert (await post_update(client, {"update_id": 2, **angry})).status == 200
        await until(lambda: len(api.sent()) > len(greeted))
        await asyncio.sleep(0.6)
        answered = api.sent()[len(greeted) :]
        assert {c.params["chat_id"] for c in answered} == {str(second)}
        # the handoff after hours: recorded, and when people are back
        assert any(str(c.params["text"]).startswith("现在是非工作时间") for c in answered)
        assert answered[0].params["reply_parameters"]["message_id"] == 72
    finally:
        await client.close()
    store = Store(url)
    with store.engine.connect() as conn:
        chats = dict(conn.execute(sa.select(conversations.c.chat_id, conversations.c.state)).all())
    store.close()
    assert chats == {str(first): "bot", str(second): "handoff"}


def _said(text: str, message_id: int, chat_id: int) -> dict[str, Any]:
    """The customer's message in a private chat, or in a group addressed to the bot (a group's
    other chatter is not answered)."""
    if chat_id > 0:
        return tg.text_update(text, message_id=message_id, chat_id=chat_id, user_id=PRIVATE)
    mention = "@shop_bot "
    return tg.text_update(
        mention + text,
        message_id=message_id,
        chat_id=chat_id,
        user_id=PRIVATE,
        entities=[_mention(0, len(mention) - 1)],
    )


# --- the pieces -------------------------------------------------------------------------------


def test_a_missing_token_names_the_variable() -> None:
    with pytest.raises(ValueError, match="TELEGRAM_TEST_NO_TOKEN"):
        TelegramChannel(TelegramChannelConfig(enabled=True, token_env="TELEGRAM_TEST_NO_TOKEN"))


def test_long_texts_are_split_within_telegram_limit() -> None:
    text = "\n".join(f"第{n}行：" + "很长的回答" * 30 for n in range(60))
    parts = split_text(text)
    assert len(parts) > 1 and all(utf16_len(p) <= 4096 for p in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")
    emoji = "😀" * 3000  # two UTF-16 units each
    assert [utf16_len(p) for p in split_text(emoji)] == [4096, 1904]
    assert split_text("短") == ["短"]


def test_buttons_quotes_and_buckets() -> None:
    markup = keyboard(("运费多少", "x" * 200))
    assert markup is not None
    labels = [row[0].text for row in markup.inline_keyboard]
    assert labels[0] == "运费多少" and len(labels[1]) == 60 and labels[1].endswith("…")
    assert keyboard(()) is None
    assert reply_target("777:12", "777") == 12
    assert reply_target("-100123:12:e1700000000", "-100123") == 12
    assert reply_target("777:12", "778") is None and reply_target("cb:abc", "777") is None
    now = [0.0]
    bucket = TokenBucket(1.0, 2, now=lambda: now[0])
    assert [bucket.reserve() for _ in range(4)] == [0.0, 0.0, 1.0, 2.0]  # waits, never drops
    now[0] = 10.0
    assert bucket.idle() and bucket.reserve() == 0.0
    limits = Limits(per_chat=1, per_group_per_minute=20, overall=30)
    asyncio.run(limits.wait("-100"))
    assert "-100" in limits._groups and "777" not in limits._groups


def test_a_group_at_its_limit_waits_alone_and_the_overall_limit_holds() -> None:
    """Five sends to one group and one to each of 40 private chats, all at once: the group's
    fourth and fifth wait their turn (1 a second after a burst of 3) without holding up the
    private chats, and all of them together never exceed the overall 20 a second."""
    limits = Limits(per_chat=1, per_group_per_minute=60, overall=20)
    sent: dict[str, list[float]] = {}

    async def go() -> None:
        start = time.monotonic()

        async def send(chat: str) -> None:
            await limits.wait(chat)
            sent.setdefault(chat, []).append(time.monotonic() - start)

        await asyncio.gather(*(send("-100") for _ in range(5)), *(send(str(c)) for c in range(40)))

    asyncio.run(go())
    group = sent.pop("-100")
    assert group[3] >= 0.95 and group[4] >= 1.95
    private = sorted(at for times in sent.values() for at in times)
    assert private[-1] < 1.5  # not behind the group's 2 s
    every = sorted(group + private)
    for n, at in enumerate(every):
        assert n + 1 <= 20 + 20 * at + 1, f"{n + 1} sends by {at:.2f} s"


def test_what_customers_send_becomes_inbound_messages() -> None:
    from aiogram.types import CallbackQuery, Message

    def read(**content: Any) -> Any:
        body = tg.message(**content)
        return message_inbound(Message.model_validate(body))

    sticker = {
        "file_id": "st-1",
        "file_unique_id": "u",
        "width": 1,
        "height": 1,
        "is_animated": False,
        "is_video": False,
        "type": "regular",
    }
    assert read(sticker=sticker).kind == Kind.OTHER
    assert read(sticker=sticker).raw["file_id"] == "st-1"
    voice = read(voice={"file_id": "v-1", "file_unique_id": "u", "duration": 3})
    assert (voice.kind, voice.text, voice.raw["file_id"]) == (Kind.VOICE, "", "v-1")
    doc = read(document={"file_id": "d-1", "file_unique_id": "u"}, caption="发票")
    assert (doc.kind, doc.text) == (Kind.OTHER, "发票")
    joined = read(new_chat_members=[tg.user(5)])
    assert joined is None  # a service message: nobody wrote it
    start = read(text="/start@shop_bot promo", language="en-US")
    assert (start.kind, start.text, start.raw["language"]) == (Kind.EVENT, "welcome", "en")
    assert start.raw["start"] == "promo"
    assert read(text="/human", language="en").text == "I want a human agent"
    group = read(text="hi", chat_id=-100200, user_id=42)
    assert (group.chat_id, group.user_id, group.external_id) == ("-100200", "42", "-100200:1")
    query = CallbackQuery.model_validate(tg.callback_update("pick:2", "q9")["callback_query"])
    picked = callback_inbound(query)
    assert picked is not None and (picked.external_id, picked.text) == ("cb:q9", "2")
    other = CallbackQuery.model_validate(tg.callback_update("menu", "q10")["callback_query"])
    assert callback_inbound(other) is None


async def test_webhook_mode_without_a_public_url_is_one_clear_problem(
    config: Config, encoder: MemoEncoder, fake: tuple[FakeBotAPI, str], tmp_path: Path
) -> None:
    from aiohttp import web

    from bot.content.problems import ProblemsError

    api, base = fake
    config.service.public_url = ""
    pipeline = build_pipeline(
        config, SystemClock(), store_url=f"sqlite:///{tmp_path}/bot.sqlite3", encoder=encoder
    )
    channel = TelegramChannel(channel_config(base, "webhook"))
    runner = web.AppRunner(make_app(Parts(pipeline, [channel], run_scheduler=False)))
    with pytest.raises(ProblemsError, match=r"service\.public_url is empty"):
        await runner.setup()
    await runner.cleanup()
    assert channel.bot is None and not api.called("setWebhook")
