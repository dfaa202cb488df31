"""The web chat channel through the real application (`make_app`) on the fixture shop: a
visitor's message goes through the message service, its replies through the outbox and the
dispatcher to the visitor's live stream (Server-Sent Events); the history and a replay from
Last-Event-ID; an agent's reply and the CSAT answer; who is on duty; and the refusals (another
site, a forged token, a wrong user hash, a message too long, too many)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.webchat import WebchatChannel
from bot.assembly import build_pipeline
from bot.content.config import Config, WebchatChannelConfig
from bot.domain.agent import Role
from bot.domain.clock import FixedClock
from bot.humans.desk import Desk
from bot.pipeline.runner import Pipeline
from bot.store import agents
from bot.understanding.encoders import MemoEncoder
from bot.web.app import Parts, make_app
from bot.web.auth import hash_password
from tests.support.service import AppClient
from tests.support.shop import at
from tests.support.webchat import Stream, user_hash

#: the web chat's signing secret in these tests (not a real one)
SECRET = "webchat-test-secret-not-real-0123456789"
SHOP = "https://shop.example.test"


@dataclass
class Chat:
    client: AppClient
    pipeline: Pipeline
    clock: FixedClock
    channel: WebchatChannel

    async def visitor(self, **body: str) -> str:
        response = await self.client.post("/webchat/visitor", json=body)
        assert response.status == 200, await response.text()
        return str((await response.json())["token"])

    async def say(self, token: str, text: str, message_id: str, **headers: str) -> int:
        response = await self.client.post(
            "/webchat/messages",
            json={"id": message_id, "text": text},
            headers={"X-Webchat-Token": token, **headers},
        )
        return response.status

    async def history(self, token: str) -> dict[str, Any]:
        response = await self.client.get("/webchat/history", headers={"X-Webchat-Token": token})
        assert response.status == 200, await response.text()
        return dict(await response.json())

    def desk(self) -> Desk:
        pipeline = self.pipeline
        return Desk(pipeline.config, pipeline.store, pipeline.clock, lambda: pipeline.knowledge)


async def open_stream(client: AppClient, token: str, **headers: str) -> Stream:
    response = await client.get(
        "/webchat/stream", params={"token": token}, headers=headers, timeout=None
    )
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return Stream(response)


def is_out(text: str) -> Any:
    return lambda line: line["direction"] == "out" and text in line["text"]


@asynccontextmanager
async def open_chat(
    config: Config, encoder: MemoEncoder, tmp_path: Path, per_ip_per_minute: int = 120
) -> AsyncIterator[Chat]:
    # a Tuesday morning: the queues are open
    clock = FixedClock(at("2026-11-24 10:00"))
    pipeline = build_pipeline(
        config, clock, store_url=f"sqlite:///{tmp_path}/webchat.sqlite3", encoder=encoder
    )
    settings = WebchatChannelConfig(
        enabled=True,
        allowed_origins=[SHOP],
        per_visitor_per_minute=5,
        per_ip_per_minute=per_ip_per_minute,
        max_message_chars=500,
        streams_per_ip=12,
    )
    channel = WebchatChannel(settings, SECRET)
    app = make_app(Parts(pipeline, [channel], run_scheduler=False))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield Chat(client, pipeline, clock, channel)
    finally:
        await client.close()


@pytest.fixture
async def chat(config: Config, encoder: MemoEncoder, tmp_path: Path) -> AsyncIterator[Chat]:
    async with open_chat(config, encoder, tmp_path) as opened:
        yield opened


async def test_a_visitor_asks_and_the_answer_arrives_live_once(chat: Chat) -> None:
    token = await chat.visitor()
    stream = await open_stream(chat.client, token)
    assert await chat.say(token, "运费多少", "m1") == 202
    answer = await stream.until(is_out("订单满 99 元包邮"))
    assert answer["choices"] == []
    mine = await stream.until(lambda line: line["direction"] == "in")
    assert mine["text"] == "运费多少"
    # the same message sent again (a lost answer) is answered once
    assert await chat.say(token, "运费多少", "m1") == 202
    await asyncio.sleep(1.5)
    answers = [line for _, line in stream.events if is_out("订单满 99 元包邮")(line)]
    assert len(answers) == 1
    ids = [event_id for event_id, _ in stream.events]
    assert len(ids) == len(set(ids))
    stream.response.close()


async def test_history_survives_a_reload_and_a_second_tab_replays_from_its_last_event(
    chat: Chat,
) -> None:
    token = await chat.visitor()
    stream = await open_stream(chat.client, token)
    assert await chat.say(token, "怎么开发票", "m1") == 202
    await stream.until(lambda line: line["direction"] == "out")
    stream.response.close()

    history = await chat.history(token)
    directions = [line["direction"] for line in history["lines"]]
    assert directions[0] == "in" and "out" in directions
    assert history["lines"][0]["text"] == "怎么开发票"

    # a tab that reconnects after the first line gets the rest, not the first line again
    first_id = "1-0"
    replay = await open_stream(chat.client, token, **{"Last-Event-ID": first_id})
    again = await replay.until(lambda line: line["direction"] == "out")
    assert again["text"] == history["lines"][-1]["text"]
    assert all(line["direction"] == "out" for _, line in replay.events)
    replay.response.close()

    # a tab opened at the history's cursor gets nothing old, then what is new
    later = await chat.client.get(
        "/webchat/stream", params={"token": token, "after": history["cursor"]}, timeout=None
    )
    fresh = Stream(later)
    assert await chat.say(token, "运费多少", "m2") == 202
    await fresh.until(is_out("订单满 99 元包邮"))
    assert [line["text"] for _, line in fresh.events if line["direction"] == "in"] == ["运费多少"]
    later.close()


async def test_an_agents_reply_and_the_csat_answer_by_number(chat: Chat) -> None:
    with chat.pipeline.store.transaction() as tx:
        agent = agents.add(
            tx, "mei", "王美", Role.AGENT, hash_password("pw pw pw pw"), chat.clock.now()
        )
    token = await chat.visitor()
    stream = await open_stream(chat.client, token)
    assert await chat.say(token, "转人工", "m1") == 202
    await stream.until(lambda line: line["direction"] == "out")
    desk = chat.desk()
    ticket = desk.claim_next(agent)
    assert ticket is not None
    desk.reply(agent, ticket.id, "您好，我是小美，马上为您查询。", confirmed=True)
    await stream.until(is_out("我是小美"))
    desk.resolve(agent, ticket.id)
    survey = await stream.until(
        lambda line: line["direction"] == "out" and len(line["choices"]) == 5
    )
    assert await chat.say(token, "5", "m2") == 202
    await stream.until(
        lambda line: (
            line["direction"] == "out" and line is not survey and "5" not in line["choices"]
        )
    )
    assert desk.ticket(agent, ticket.id).ticket.csat == 5
    stream.response.close()


async def test_a_logged_in_customer_keeps_one_id_and_a_wrong_hash_is_refused(chat: Chat) -> None:
    token = await chat.visitor(user="alice-42", hash=user_hash("alice-42", SECRET))
    assert token.startswith("u:alice-42.")
    assert await chat.visitor(user="alice-42", hash=user_hash("alice-42", SECRET)) == token
    wrong = await chat.client.post(
        "/webchat/visitor", json={"user": "alice-42", "hash": user_hash("alice-42", "guess")}
    )
    assert wrong.status == 401
    missing = await chat.client.post("/webchat/visitor", json={"user": "alice-42"})
    assert missing.status == 401


async def test_a_forged_or_another_visitors_token_is_refused(chat: Chat) -> None:
    mine = await chat.visitor()
    theirs = await chat.visitor()
    visitor, _, signature = mine.rpartition(".")
    their_visitor = theirs.rpartition(".")[0]
    forged = [
        "",
        "v:someone",
        f"{their_visitor}.{signature}",  # another visitor's id with my signature
        f"{visitor}.{signature[:-2]}xx",
        f"u:alice.{user_hash('alice', SECRET)}",  # a shop's user hash is not a token
    ]
    for token in forged:
        assert await chat.say(token, "你好", "m1") == 401, token
        history = await chat.client.get("/webchat/history", headers={"X-Webchat-Token": token})
        assert history.status == 401
        stream = await chat.client.get("/webchat/stream", params={"token": token})
        assert stream.status == 401
    again = await chat.client.post(
        "/webchat/visitor", json={"token": f"{their_visitor}.{signature}"}
    )
    assert again.status == 401


async def test_another_sites_page_is_refused_and_listed_sites_get_cors(chat: Chat) -> None:
    token = await chat.visitor()
    evil = {"Origin": "https://evil.example.test"}
    assert await chat.say(token, "你好", "m1", **evil) == 403
    assert (await chat.client.post("/webchat/visitor", json={}, headers=evil)).status == 403
    assert (
        await chat.client.get("/webchat/stream", params={"token": token}, headers=evil)
    ).status == 403
    preflight = await chat.client.options("/webchat/messages", headers=evil)
    assert preflight.status == 403 and "Access-Control-Allow-Origin" not in preflight.headers

    listed = await chat.client.post("/webchat/visitor", json={}, headers={"Origin": SHOP})
    assert listed.status == 200
    assert listed.headers["Access-Control-Allow-Origin"] == SHOP
    preflight = await chat.client.options("/webchat/messages", headers={"Origin": SHOP})
    assert preflight.status == 204
    assert "X-Webchat-Token" in preflight.headers["Access-Control-Allow-Headers"]

    panel = await chat.client.get("/webchat/panel")
    policy = panel.headers["Content-Security-Policy"]
    assert f"frame-ancestors 'self' {SHOP}" in policy
    assert "evil" not in policy
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy


async def test_the_panel_has_no_inline_script_or_style_and_never_parses_html(chat: Chat) -> None:
    panel = await (await chat.client.get("/webchat/panel")).text()
    assert "<style" not in panel and " style=" not in panel
    assert panel.count("<script") == panel.count('<script src="')
    for asset in ("panel.js", "widget.js"):
        response = await chat.client.get(f"/webchat/{asset}")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/javascript")
        script = await response.text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in script, (asset, sink)
    assert (await chat.client.get("/webchat/panel.css")).status == 200


async def test_a_message_too_long_gets_413_and_a_body_too_large_too(chat: Chat) -> None:
    token = await chat.visitor()
    assert await chat.say(token, "长" * 501, "m1") == 413
    huge = await chat.client.post(
        "/webchat/messages",
        data=json.dumps({"id": "m2", "text": "x" * 20_000}),
        headers={"X-Webchat-Token": token, "Content-Type": "application/json"},
    )
    assert huge.status == 413
    assert (await chat.history(token))["lines"] == []


async def test_over_the_rate_limit_gets_429_and_the_message_sent_again_is_kept(
    chat: Chat,
) -> None:
    token = await chat.visitor()
    for n in range(5):
        assert await chat.say(token, f"问题 {n}", f"m{n}") == 202
    refused = await chat.client.post(
        "/webchat/messages",
        json={"id": "m5", "text": "最后一个问题"},
        headers={"X-Webchat-Token": token},
    )
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) >= 1
    texts = [
        line["text"] for line in (await chat.history(token))["lines"] if line["direction"] == "in"
    ]
    assert "最后一个问题" not in texts
    # the panel sends it again after Retry-After: taken, and stored once
    chat.clock.advance(timedelta(seconds=61))
    assert await chat.say(token, "最后一个问题", "m5") == 202
    texts = [
        line["text"] for line in (await chat.history(token))["lines"] if line["direction"] == "in"
    ]
    assert texts.count("最后一个问题") == 1


async def test_an_address_over_its_limit_gets_429_on_a_message_of_a_visitor_under_theirs(
    config: Config, encoder: MemoEncoder, tmp_path: Path
) -> None:
    # two visitors behind one address: their ids and messages are the address's POSTs
    async with open_chat(config, encoder, tmp_path, per_ip_per_minute=4) as chat:
        first, second = await chat.visitor(), await chat.visitor()
        assert await chat.say(first, "运费多少", "m1") == 202
        assert await chat.say(second, "运费多少", "m1") == 202
        refused = await chat.client.post(
            "/webchat/messages",
            json={"id": "m2", "text": "几天发货"},
            headers={"X-Webchat-Token": first},
        )
        assert refused.status == 429
        assert int(refused.headers["Retry-After"]) >= 1
        texts = [line["text"] for line in (await chat.history(first))["lines"]]
        assert "几天发货" not in texts
        chat.clock.advance(timedelta(seconds=61))
        assert await chat.say(first, "几天发货", "m2") == 202


async def test_an_address_over_its_limit_gets_429_on_the_visitor_route(
    config: Config, encoder: MemoEncoder, tmp_path: Path
) -> None:
    async with open_chat(config, encoder, tmp_path, per_ip_per_minute=3) as chat:
        token = await chat.visitor()
        await chat.visitor(token=token)
        assert await chat.say(token, "运费多少", "m1") == 202
        for body in ({}, {"token": token}, {"user": "10042", "hash": user_hash("10042", SECRET)}):
            refused = await chat.client.post("/webchat/visitor", json=body)
            assert refused.status == 429, body
            assert int(refused.headers["Retry-After"]) >= 1
        chat.clock.advance(timedelta(seconds=61))
        assert await chat.visitor(token=token)


async def test_settings_show_who_is_on_duty_and_when_they_are_back(chat: Chat) -> None:
    open_now = await (
        await chat.client.get("/webchat/settings", params={"language": "en-GB"})
    ).json()
    assert open_now["on_duty"] is True and open_now["language"] == "en"
    assert open_now["title"] == "Chat with us" and open_now["greeting"]
    # Tuesday 23:00 in Shanghai: closed until Wednesday morning
    chat.clock.set(at("2026-11-24 23:00"))
    closed = await (await chat.client.get("/webchat/settings", params={"language": "zh-CN"})).json()
    assert closed["on_duty"] is False
    assert closed["back_at"].startswith("2026-11-25T")
    assert "11月25日" in closed["back_text"]


async def test_bad_bodies_get_400_never_500(chat: Chat) -> None:
    token = await chat.visitor()
    headers = {"X-Webchat-Token": token, "Content-Type": "application/json"}
    for body in [
        "",
        "{",
        "[]",
        '"x"',
        "null",
        '{"id": 1, "text": "x"}',
        '{"id": "a"}',
        '{"id": "a", "text": "  "}',
        '{"id": "a\\u0000", "text": "x"}',
        "[" * 5000,
    ]:
        response = await chat.client.post("/webchat/messages", data=body, headers=headers)
        assert response.status in (400, 413), (body[:20], response.status)
    for body in ["{", "[]", '{"user": 5}', '{"token": 7}', '{"user": "", "hash": 1}']:
        response = await chat.client.post("/webchat/visitor", data=body, headers=headers)
        assert response.status in (200, 400, 401), (body, response.status)


def test_settings_are_checked_and_a_missing_secret_is_named(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import ValidationError

    from bot.assembly import channel_problems

    wrongs: list[dict[str, Any]] = [
        {"allowed_origins": ["https://shop.example.test/page"]},
        {"allowed_origins": ["shop.example.test"]},
        {"colour": "blue"},
        {"avatar": "http://insecure.example.test/a.png"},
        {"languages": []},
        {"max_message_chars": 0},
    ]
    for wrong in wrongs:
        with pytest.raises(ValidationError):
            WebchatChannelConfig(**wrong)
    monkeypatch.delenv("BOT_WEBCHAT_SECRET", raising=False)
    config.channels.webchat = WebchatChannelConfig(enabled=True)
    problems = [str(p) for p in channel_problems(config)]
    assert any("channels.webchat" in p and "signing secret" in p for p in problems), problems
    monkeypatch.setenv("BOT_WEBCHAT_SECRET", "too short")
    problems = [str(p) for p in channel_problems(config)]
    assert any("32 or more" in p for p in problems), problems
    monkeypatch.setenv("BOT_WEBCHAT_SECRET", SECRET)
    assert channel_problems(config) == []


def test_bot_run_prints_the_line_to_paste(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters import channels_from_config

    monkeypatch.setenv("BOT_WEBCHAT_SECRET", SECRET)
    config.channels.webchat = WebchatChannelConfig(enabled=True)
    [channel] = channels_from_config(config)
    assert channel.name == "webchat"
    assert channel.describe("https://bot.example.test") == (
        'paste into your pages: <script src="https://bot.example.test/webchat/widget.js" '
        'data-site="main" async></script>'
    )


async def test_open_streams_are_capped_per_visitor_and_per_address(chat: Chat) -> None:
    first, second = await chat.visitor(), await chat.visitor()
    opened = [await open_stream(chat.client, first) for _ in range(8)]
    refused = await chat.client.get("/webchat/stream", params={"token": first})
    assert refused.status == 429 and refused.headers["Retry-After"]
    opened += [await open_stream(chat.client, second) for _ in range(4)]
    # this address holds 12 now, its cap: a third visitor from it waits too
    third = await chat.client.get("/webchat/stream", params={"token": await chat.visitor()})
    assert third.status == 429
    opened[0].response.close()
    # a closed stream's place is freed once its handler ends (here at once: the test server
    # cancels it; `bot run` ends it at its next write, the keepalive at the latest)
    for _ in range(50):
        await asyncio.sleep(0.1)
        again = await chat.client.get("/webchat/stream", params={"token": first}, timeout=None)
        if again.status == 200:
            again.close()
            break
        again.close()
    else:
        raise AssertionError("a closed stream's place was not freed")
    for stream in opened[1:]:
        stream.response.close()
