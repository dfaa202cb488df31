"""Random and malformed bodies against every channel's webhook, on the real application: each
gets a 4xx or a correct answer; none gets a 500, crashes the worker or hangs it."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.telegram import TelegramChannel
from adapters.webhook import WebhookChannel
from adapters.wechat import WechatChannel
from adapters.wecom import WecomChannel
from bot.assembly import build_pipeline
from bot.content.config import (
    Config,
    TelegramChannelConfig,
    WebhookChannelConfig,
    WechatChannelConfig,
    WecomChannelConfig,
)
from bot.domain.clock import SystemClock
from bot.understanding.encoders import MemoEncoder
from bot.web.app import Parts, make_app
from tests.support.fakes import telegram_api as telegram_fake
from tests.support.fakes.wechat_api import APP_SECRET as WECHAT_SECRET
from tests.support.fakes.wechat_api import WechatServer, random_aes_key
from tests.support.fakes.wecom_api import SECRET as WECOM_SECRET
from tests.support.fakes.wecom_api import WecomServer

SECRET = "fuzz-secret_not-real"
TELEGRAM_TOKEN = "123456:TEST-not-a-real-token"

#: what a body may be: nothing, bytes, text, JSON of any shape, XML-ish
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
webhook_shaped = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=200), st.integers(), st.none()),
        "user": st.one_of(st.text(max_size=200), st.integers(), st.lists(st.integers())),
        "chat": json_values,
        "text": st.one_of(st.text(max_size=3000), st.integers(), st.none()),
        "kind": st.one_of(st.sampled_from(["text", "image", "event", "bogus"]), st.text()),
        "wait": json_values,
    },
)
bodies = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=2000).map(lambda t: t.encode("utf-8", "surrogatepass")),
    json_values.map(lambda v: json.dumps(v).encode()),
    webhook_shaped.map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
    st.text(max_size=200).map(
        lambda t: f"<xml><Content>{t}</Content></xml>".encode(errors="replace")
    ),
    # well-formed, with random values: these must be answered
    st.builds(
        lambda n, user, text: json.dumps({"id": f"f{n}", "user": user, "text": text}).encode(),
        st.integers(min_value=0, max_value=10**9),
        st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True),
        st.text(min_size=1, max_size=200).filter(str.strip),
    ),
    st.builds(
        lambda msg_id, text: (
            "<xml><ToUserName><![CDATA[gh_test]]></ToUserName>"
            f"<FromUserName><![CDATA[ofuzz{msg_id % 7}]]></FromUserName>"
            f"<CreateTime>{1_790_000_000 + msg_id}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{text}]]></Content><MsgId>{msg_id}</MsgId></xml>"
        ).encode(),
        st.integers(min_value=1, max_value=2**62),
        st.text(min_size=1, max_size=200).filter(lambda t: "]]>" not in t and t.strip()),
    ),
    # shaped like the platforms' own messages, with random fields
    st.builds(
        lambda kind, text, msg_id, extra: (
            "<xml><ToUserName><![CDATA[gh_test]]></ToUserName>"
            f"<FromUserName><![CDATA[o{msg_id}]]></FromUserName><CreateTime>{msg_id}</CreateTime>"
            f"<MsgType><![CDATA[{kind}]]></MsgType><Content><![CDATA[{text}]]></Content>"
            f"<MsgId>{msg_id}</MsgId>{extra}</xml>"
        ).encode(errors="replace"),
        st.sampled_from(["text", "image", "voice", "event", "location", "bogus", ""]),
        st.text(max_size=300).filter(lambda t: "]]>" not in t),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.sampled_from(
            [
                "",
                "<Event>subscribe</Event>",
                "<Event></Event>",
                "<Encrypt>x</Encrypt>",
                "<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>",
            ]
        ),
    ),
    st.builds(
        lambda update_id, text, chat: json.dumps(
            {
                "update_id": update_id,
                "message": {
                    "message_id": update_id,
                    "date": 1,
                    "chat": {"id": chat, "type": "private"},
                    "from": {"id": chat, "is_bot": False, "first_name": "x"},
                    "text": text,
                },
            }
        ).encode(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.text(max_size=300),
        st.integers(min_value=-(2**70), max_value=2**70),
    ),
)


@dataclass
class Running:
    url: str
    loop: asyncio.AbstractEventLoop
    wechat: WechatServer
    wecom: WecomServer


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, encoder: MemoEncoder) -> Iterator[Running]:
    """The real application with every webhook channel, on a loop of its own in a thread, so
    hypothesis can drive it from plain synchronous code. Telegram's API is a loopback fake (it
    registers its webhook at start-up); replies to WeChat and pulls from WeCom go nowhere and are
    retried quietly."""
    import shutil

    from bot.content.config import load_config
    from tests.support.shop import FIXTURE

    folder = tmp_path_factory.mktemp("fuzz") / "shop"
    shutil.copytree(FIXTURE, folder)
    config: Config = load_config(folder / "config.toml")
    config.service.public_url = "https://bot.example.test"
    pipeline = build_pipeline(
        config, SystemClock(), store_url=f"sqlite:///{folder}/fuzz.sqlite3", encoder=encoder
    )
    wechat = WechatServer(random_aes_key())
    wecom = WecomServer(random_aes_key())
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner: list[web.AppRunner] = []
    port: list[int] = []
    telegram_api = telegram_fake.running()

    async def start() -> None:
        _, base = await telegram_api.__aenter__()
        channels: list[Any] = [
            WebhookChannel(
                WebhookChannelConfig(
                    enabled=True, deliver_url="http://127.0.0.1:9/x", wait_seconds=1
                ),
                SECRET,
            ),
            TelegramChannel(
                TelegramChannelConfig(
                    enabled=True,
                    mode="webhook",
                    token=TELEGRAM_TOKEN,
                    token_env="BOT_TEST_UNSET_TELEGRAM_TOKEN",
                    webhook_secret=SECRET,
                    webhook_secret_env="BOT_TEST_UNSET_TELEGRAM_SECRET",
                    api_base=base,
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
        app = make_app(Parts(pipeline, channels, run_scheduler=False))
        runner.append(web.AppRunner(app, access_log=None, handle_signals=False))
        await runner[0].setup()
        site = web.TCPSite(runner[0], "127.0.0.1", 0)
        await site.start()
        port.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    asyncio.run_coroutine_threadsafe(start(), loop).result(120)
    yield Running(f"http://127.0.0.1:{port[0]}", loop, wechat, wecom)

    async def stop() -> None:
        await runner[0].cleanup()
        await telegram_api.__aexit__(None, None, None)

    asyncio.run_coroutine_threadsafe(stop(), loop).result(60)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def _post(
    running: Running, path: str, body: bytes, headers: dict[str, str], params: dict[str, str]
) -> int:
    response = requests.post(
        running.url + path, data=body, headers=headers, params=params, timeout=10
    )
    return response.status_code


def _alive(running: Running) -> None:
    assert requests.get(running.url + "/healthz", timeout=5).status_code == 200


Route = tuple[str, dict[str, str], dict[str, str], bytes]
XML = {"Content-Type": "text/xml"}


def _text(body: bytes) -> str:
    return body.decode("utf-8", "replace")


def _wechat_signed(running: Running, body: bytes) -> Route:
    """A correctly signed plain push: the body itself is what is fuzzed."""
    return "/channels/wechat", XML, running.wechat.query(), body


def _wechat_encrypted(running: Running, body: bytes) -> Route:
    """The body encrypted and signed as WeChat would: decryption passes, the XML inside is what
    is fuzzed."""
    query, envelope = running.wechat.encrypted_push(_text(body))
    return "/channels/wechat", XML, query, envelope.encode()


def _wecom_encrypted(running: Running, body: bytes) -> Route:
    query, envelope = running.wecom.callback(_text(body))
    return "/channels/wecom", XML, query, envelope.encode()


#: the statuses each route answered, to check that fuzzing reached past the front door
SEEN: dict[str, set[int]] = {}

ROUTES: dict[str, Callable[[Running, bytes], Route]] = {
    "webhook": lambda r, body: (
        "/channels/webhook/messages",
        {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"},
        {},
        body,
    ),
    "telegram": lambda r, body: (
        "/channels/telegram/webhook",
        {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"},
        {},
        body,
    ),
    "wechat-plain": _wechat_signed,
    "wechat-encrypted": _wechat_encrypted,
    "wechat-unsigned": lambda r, body: ("/channels/wechat", XML, {}, body),
    "wecom-encrypted": _wecom_encrypted,
    "wecom-unsigned": lambda r, body: ("/channels/wecom", XML, {}, body),
}


@pytest.mark.parametrize("channel", sorted(ROUTES))
@settings(
    max_examples=80,
    deadline=None,
    # the same bodies on every run: the closing check counts on each route having both
    # refused and taken some, which a random draw of 80 does not always give
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies)
def test_random_bodies_get_an_answer_or_a_4xx(running: Running, channel: str, body: bytes) -> None:
    path, headers, params, body = ROUTES[channel](running, body)
    status = _post(running, path, body, headers, params)
    SEEN.setdefault(channel, set()).add(status)
    assert status < 500, (channel, body[:200], status)
    assert status in (200, 400, 401, 403, 404, 405, 413, 415), status


def test_the_worker_is_still_well_after_the_fuzzing(running: Running) -> None:
    _alive(running)
    # bodies were both refused and taken, except where no random body can be right
    assert {200, 400} <= SEEN["webhook"] and {200, 400} <= SEEN["telegram"], SEEN
    assert 200 in SEEN["wechat-plain"] and 400 in SEEN["wechat-plain"], SEEN
    assert 200 in SEEN["wechat-encrypted"] and 400 in SEEN["wechat-encrypted"], SEEN
    assert 200 in SEEN["wecom-encrypted"] and 400 in SEEN["wecom-encrypted"], SEEN
    # nothing unsigned is ever taken (a body that is not even an envelope may get 400 first)
    assert SEEN["wechat-unsigned"] | SEEN["wecom-unsigned"] <= {400, 403}, SEEN
    good = json.dumps({"id": "after-fuzz", "user": "fz", "text": "运费多少", "wait": True})
    response = requests.post(
        running.url + "/channels/webhook/messages",
        data=good.encode(),
        headers={"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["replies"][0]["text"] == "订单满 99 元包邮，不满收取 8 元运费。"
