"""Random and malformed requests against the web chat on the real application: 10,000 bodies,
tokens and headers; each gets a correct answer or a 4xx, none a 500, and the worker stays up.
BOT_FUZZ_EXAMPLES sets how many (e.g. 200 while working on it)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.webchat import WebchatChannel
from bot.assembly import build_pipeline
from bot.content.config import Config, WebchatChannelConfig, load_config
from bot.domain.clock import SystemClock
from bot.understanding.encoders import MemoEncoder
from bot.web.app import Parts, make_app
from tests.support.shop import FIXTURE

SECRET = "webchat-fuzz-secret-not-real-0123456789"
EXAMPLES = int(os.environ.get("BOT_FUZZ_EXAMPLES", "10000"))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
message_shaped = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=80), st.integers(), st.none(), json_values),
        "text": st.one_of(st.text(max_size=2500), st.integers(), st.none(), json_values),
        "language": st.one_of(st.text(max_size=10), st.integers(), st.none()),
        "user": json_values,
        "hash": json_values,
        "token": st.one_of(st.text(max_size=200), json_values),
    },
)
bodies = st.one_of(
    st.binary(max_size=3000),
    st.text(max_size=3000).map(lambda t: t.encode("utf-8", "surrogatepass")),
    json_values.map(lambda v: json.dumps(v).encode()),
    message_shaped.map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
    st.integers(min_value=1, max_value=5000).map(lambda n: ("[" * n + "]" * n).encode()),
    # too long a message (413 from the channel), too large a body (413 from the door)
    st.integers(min_value=2001, max_value=5000).map(
        lambda n: json.dumps({"id": "long", "text": "长" * n}).encode()
    ),
    st.integers(min_value=17 * 1024, max_value=40 * 1024).map(lambda n: b"x" * n),
    # well-formed, with random words: these are taken and answered
    st.builds(
        lambda n, text: json.dumps({"id": f"f{n}", "text": text}, ensure_ascii=False).encode(),
        st.integers(min_value=0, max_value=10**9),
        st.text(min_size=1, max_size=300).filter(str.strip),
    ),
)
#: what a header can carry (printable ASCII)
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=200).map(
    str.strip
)
tokens = st.one_of(
    header_text,
    st.from_regex(r"[uv]:[A-Za-z0-9_-]{0,30}\.[A-Za-z0-9_-]{0,50}", fullmatch=True),
)
Request = tuple[str, str, dict[str, str], dict[str, str], bytes]
requests_ = st.one_of(
    st.builds(
        lambda body: ("POST", "/webchat/messages", {}, {}, body),
        bodies,
    ),
    st.builds(lambda body: ("POST", "/webchat/visitor", {}, {}, body), bodies),
    st.builds(
        lambda token, body: ("POST", "/webchat/messages", {"X-Webchat-Token": token}, {}, body),
        tokens,
        bodies,
    ),
    st.builds(
        lambda token, after: ("GET", "/webchat/stream", {}, {"token": token, "after": after}, b""),
        tokens,
        st.text(max_size=40),
    ),
    st.builds(
        lambda token, origin: (
            "GET",
            "/webchat/history",
            {"X-Webchat-Token": token, "Origin": origin},
            {},
            b"",
        ),
        tokens,
        header_text,
    ),
    st.builds(
        lambda language: ("GET", "/webchat/settings", {}, {"language": language}, b""),
        st.text(max_size=20),
    ),
)


@dataclass
class Running:
    url: str
    token: str
    session: requests.Session


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, encoder: MemoEncoder) -> Iterator[Running]:
    """The real application with the web chat, on a loop of its own in a thread, so hypothesis
    can drive it from plain synchronous code. The rate limits are off, so that well-formed
    messages reach the pipeline."""
    folder = tmp_path_factory.mktemp("fuzz") / "shop"
    shutil.copytree(FIXTURE, folder)
    config: Config = load_config(folder / "config.toml")
    config.service.per_ip_per_minute = 0
    config.service.per_customer_per_minute = 0
    pipeline = build_pipeline(
        config, SystemClock(), store_url=f"sqlite:///{folder}/fuzz.sqlite3", encoder=encoder
    )
    channel = WebchatChannel(
        WebchatChannelConfig(enabled=True, per_visitor_per_minute=0, per_ip_per_minute=0),
        SECRET,
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = web.AppRunner(
        make_app(Parts(pipeline, [channel], run_scheduler=False)),
        access_log=None,
        handle_signals=False,
    )

    async def start() -> int:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    port = asyncio.run_coroutine_threadsafe(start(), loop).result(120)
    session = requests.Session()
    url = f"http://127.0.0.1:{port}"
    token = session.post(f"{url}/webchat/visitor", json={}, timeout=10).json()["token"]
    yield Running(url, token, session)
    session.close()
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(60)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    pipeline.store.close()


SEEN: set[int] = set()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests_, signed=st.booleans())
def test_random_requests_get_an_answer_or_a_4xx(
    running: Running, request: Request, signed: bool
) -> None:
    method, path, headers, params, body = request
    if signed and path == "/webchat/messages" and "X-Webchat-Token" not in headers:
        headers = {"X-Webchat-Token": running.token}
    response = running.session.request(
        method,
        running.url + path,
        data=body or None,
        headers={"Content-Type": "application/json", **headers},
        params=params,
        timeout=30,
        stream=True,
    )
    status = response.status_code
    response.close()
    SEEN.add(status)
    assert status < 500, (path, body[:200], status)
    assert status in (200, 202, 400, 401, 403, 413, 429), status


def test_the_worker_is_alive_and_the_fuzzing_reached_the_pipeline(running: Running) -> None:
    assert running.session.get(running.url + "/healthz", timeout=5).status_code == 200
    assert {202, 400, 401, 413} <= SEEN, SEEN
