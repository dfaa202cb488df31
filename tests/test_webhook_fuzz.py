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

from adapters.webhook import WebhookChannel
from bot.assembly import build_pipeline
from bot.content.config import Config, WebhookChannelConfig
from bot.domain.clock import SystemClock
from bot.understanding.encoders import MemoEncoder
from bot.web.app import Parts, make_app

SECRET = "fuzz-secret-not-real"

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
)


@dataclass
class Running:
    url: str
    loop: asyncio.AbstractEventLoop


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, encoder: MemoEncoder) -> Iterator[Running]:
    """The real application on a loop of its own, in a thread, so hypothesis can drive it from
    plain synchronous code."""
    import shutil

    from bot.content.config import load_config
    from tests.conftest import FIXTURE

    folder = tmp_path_factory.mktemp("fuzz") / "shop"
    shutil.copytree(FIXTURE, folder)
    config: Config = load_config(folder / "config.toml")
    pipeline = build_pipeline(
        config, SystemClock(), store_url=f"sqlite:///{folder}/fuzz.sqlite3", encoder=encoder
    )
    channels: list[Any] = [
        WebhookChannel(
            WebhookChannelConfig(enabled=True, deliver_url="http://127.0.0.1:9/x", wait_seconds=1),
            SECRET,
        )
    ]
    app = make_app(Parts(pipeline, channels, run_scheduler=False))
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    started = threading.Event()
    port: list[int] = []

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        started.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(60)
    started.wait(60)
    yield Running(f"http://127.0.0.1:{port[0]}", loop)
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(60)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def _post(running: Running, path: str, body: bytes, headers: dict[str, str]) -> int:
    response = requests.post(running.url + path, data=body, headers=headers, timeout=10)
    return response.status_code


def _alive(running: Running) -> None:
    assert requests.get(running.url + "/healthz", timeout=5).status_code == 200


ROUTES: dict[str, Callable[[], tuple[str, dict[str, str]]]] = {
    "webhook": lambda: (
        "/channels/webhook/messages",
        {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"},
    ),
}


@pytest.mark.parametrize("channel", sorted(ROUTES))
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies)
def test_random_bodies_get_an_answer_or_a_4xx(running: Running, channel: str, body: bytes) -> None:
    path, headers = ROUTES[channel]()
    status = _post(running, path, body, headers)
    assert status < 500, (channel, body[:200], status)
    assert status in (200, 400, 401, 403, 404, 405, 413, 415), status


def test_the_worker_is_still_well_after_the_fuzzing(running: Running) -> None:
    _alive(running)
    good = json.dumps({"id": "after-fuzz", "user": "fz", "text": "运费多少", "wait": True})
    response = requests.post(
        running.url + "/channels/webhook/messages",
        data=good.encode(),
        headers={"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["replies"][0]["text"] == "订单满 99 元包邮，不满收取 8 元运费。"
