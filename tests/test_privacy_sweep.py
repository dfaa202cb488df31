"""The privacy sweep: a seeded corpus of made-up personal data (tests/support/pii.py) sent
through every channel to a real `bot run` (generic webhook, Telegram, WeChat OA, WeCom) on real
SQLite and real PostgreSQL, some of it in complaints that are handed off, an agent's reply and
a transfer note quoting it, and a send that fails with the customer's text in the error. Then
every place text lands is searched: the worker's log, every column of every table, the weekly
report, `bot faq gaps` and the faq/drafts.yaml it writes, and /metrics. ID numbers, bank cards,
phones and passwords are found nowhere as written (digits-only forms included); e-mail and
street addresses only where an agent handles the case (docs/privacy.md)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.domain.agent import Role
from bot.domain.clock import SystemClock
from bot.store import agents
from bot.store.database import Store
from bot.web.auth import hash_password
from tests.support import pii
from tests.support.fakes import telegram_api as tg
from tests.support.fakes import wechat_api as wx
from tests.support.fakes import wecom_api as wc
from tests.support.service import SECRET, bot_command, free_port, ready
from tests.support.waiting import until

pytestmark = [pytest.mark.warm_content, pytest.mark.slow]

TELEGRAM_SECRET = "sweep-test-secret_not-real"
KF = "wk-sweep-account"
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
#: the places where an agent handles the case: the transcript and what is sent from it, and
#: the worker's log (masked as transcripts are). Elsewhere e-mail and addresses are masked too.
AGENTS_SEE = ("db:", "log")


class Receiver:
    """The generic webhook's other end (deliver_url)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.app = web.Application()
        self.app.router.add_post("/deliver", self.deliver)

    async def deliver(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        return web.json_response({"ok": True})


@pytest.fixture
async def fakes() -> AsyncIterator[dict[str, Any]]:
    receiver = Receiver()
    receiving = TestServer(receiver.app, host="127.0.0.1")
    await receiving.start_server()
    wechat = wx.FakeWechatAPI()
    wechat_base = await wechat.start()
    qy = wc.FakeQyapi()
    qy_server = TestServer(qy.app, host="127.0.0.1")
    await qy_server.start_server()
    async with tg.running() as (telegram, telegram_base):
        yield {
            "receiver": receiver,
            "deliver_url": str(receiving.make_url("/deliver")),
            "wechat": wechat,
            "wechat_base": wechat_base,
            "qy": qy,
            "qy_base": str(qy_server.make_url("")).rstrip("/"),
            "telegram": telegram,
            "telegram_base": telegram_base,
        }
    await qy_server.close()
    await wechat.close()
    await receiving.close()


def _configure(shop: Path, store_url: str, port: int, fakes: dict[str, Any]) -> Path:
    path = shop / "config.toml"
    text = path.read_text(encoding="utf-8").replace(
        'url = "sqlite:///var/bot.sqlite3"', f'url = "{store_url}"'
    )
    text += (
        f'\n[service]\npublic_url = "http://127.0.0.1:{port}"\n'
        f'\n[channels.webhook]\nenabled = true\ndeliver_url = "{fakes["deliver_url"]}"\n'
        '\n[channels.telegram]\nenabled = true\nmode = "webhook"\n'
        f'api_base = "{fakes["telegram_base"]}"\n'
        f'\n[channels.wechat]\nenabled = true\napp_id = "{wx.APP_ID}"\nmode = "safe"\n'
        f'api_base = "{fakes["wechat_base"]}"\n'
        f'\n[channels.wecom]\nenabled = true\ncorp_id = "{wc.CORP_ID}"\n'
        f'api_base = "{fakes["qy_base"]}"\n'
    )
    path.write_text(text, encoding="utf-8")
    return path


def _environment(wechat_key: str, wecom_key: str) -> dict[str, str]:
    env = {
        **os.environ,
        "BOT_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_BOT_TOKEN": tg.TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
        "WECHAT_TOKEN": wx.TOKEN,
        "WECHAT_AES_KEY": wechat_key,
        "WECHAT_APP_SECRET": wx.APP_SECRET,
        "WECOM_TOKEN": wc.TOKEN,
        "WECOM_AES_KEY": wecom_key,
        "WECOM_KF_SECRET": wc.SECRET,
    }
    env.pop("BOT_CONSOLE_SECRET", None)
    return env


async def _send(
    http: aiohttp.ClientSession,
    base: str,
    fakes: dict[str, Any],
    keys: tuple[str, str],
    channel: str,
    n: int,
    user: str,
    text: str,
) -> None:
    """One customer message through `channel`'s real route."""
    if channel == "webhook":
        async with http.post(
            f"{base}/channels/webhook/messages",
            json={"id": f"w{n}", "user": user, "text": text},
            headers={"Authorization": f"Bearer {SECRET}"},
        ) as response:
            assert response.status == 200, await response.text()
    elif channel == "telegram":
        chat = 7000 + int(user.rsplit("-", 1)[1])
        async with http.post(
            f"{base}/channels/telegram/webhook",
            json={"update_id": 9000 + n, **tg.text_update(text, message_id=n, chat_id=chat)},
            headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET},
        ) as response:
            assert response.status == 200, await response.text()
    elif channel == "wechat":
        server = wx.WechatServer(keys[0])
        query, push = server.encrypted_push(wx.text_xml(user, 70_000 + n, text))
        async with http.post(
            f"{base}/channels/wechat", params=query, data=push.encode()
        ) as response:
            assert response.status == 200
    else:
        fakes["qy"].customer_says(KF, user, text)
        query, news = wc.WecomServer(keys[1]).kf_news(KF, f"sync-{n}")
        async with http.post(f"{base}/channels/wecom", params=query, data=news) as response:
            assert response.status == 200


def _tables(store_url: str) -> dict[str, str]:
    """Every row of every table, as text: where stored text lands."""
    engine = sa.create_engine(store_url)
    found: dict[str, str] = {}
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                rows = conn.execute(sa.select(table)).all()
                found[f"db:{table.name}"] = "\n".join(
                    json.dumps([str(v) for v in row], ensure_ascii=False) for row in rows
                )
    finally:
        engine.dispose()
    return found


def _run(args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [bot_command(), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode in (0, 1), done.stderr
    return done.stdout + done.stderr


def leaks(places: dict[str, str], corpus: list[pii.Seeded]) -> list[tuple[str, str, str]]:
    """(kind, value, place) for every seeded value found as written where it must not be."""
    found = []
    for value in corpus:
        for place, text in places.items():
            allowed = value.kind in pii.FOR_AGENTS and place.startswith(AGENTS_SEE)
            if not allowed and pii.find_raw(value, text):
                found.append((value.kind, value.written, place))
    return found


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_no_seeded_personal_data_lands_anywhere_raw(
    backend: str,
    shop: Path,
    tmp_path: Path,
    fakes: dict[str, Any],
    request: pytest.FixtureRequest,
) -> None:
    store_url = (
        f"sqlite:///{tmp_path}/sweep.sqlite3"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    corpus = pii.corpus()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    keys = (wx.random_aes_key(), wc.random_aes_key())
    config_path = _configure(shop, store_url, port, fakes)
    env = _environment(*keys)
    log_path = tmp_path / "worker.log"
    telegram: tg.FakeBotAPI = fakes["telegram"]
    # a failing send whose error quotes what was sent, as a platform's error message may
    mobile = next(v for v in corpus if v.kind == "mobile")
    telegram.fail("sendMessage", 400, f"Bad Request: can't parse message {mobile.message}")
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [bot_command(), "-v", "--config", str(config_path), "run", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                await ready(http, port, 120)
                channels = ["webhook", "telegram", "wechat", "wecom"]
                for n, value in enumerate(corpus, start=1):
                    channel = channels[n % 4]
                    user = f"sweep-{n}" if channel != "wechat" else f"o-sweep-{n}"
                    # every third value comes in a complaint, which is handed off
                    text = f"我要投诉！{value.message}" if n % 3 == 0 else value.message
                    await _send(http, base, fakes, keys, channel, n, user, text)
                await until(lambda: _answered(store_url) >= len(corpus), 120)
                await _agent_quotes_the_customer(http, base, store_url, corpus)
                await until(lambda: _outbox_settled(store_url), 60)
                async with http.get(f"{base}/metrics") as response:
                    metrics = await response.text()
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()

    today = datetime.now(UTC).date().isoformat()
    reports = tmp_path / "reports"
    places = {
        "log": log_path.read_text(encoding="utf-8", errors="replace"),
        "metrics": metrics,
        **_tables(store_url),
        "bot faq gaps": _run(
            ["--config", str(config_path), "faq", "gaps", "--write", "--min-customers", "1"],
            env,
            shop,
        ),
        "bot report": _run(
            [
                "--config",
                str(config_path),
                "report",
                "--week",
                "--at",
                today,
                "--out",
                str(reports),
            ],
            env,
            shop,
        ),
    }
    drafts = shop / "faq" / "drafts.yaml"
    places["faq/drafts.yaml"] = drafts.read_text(encoding="utf-8") if drafts.exists() else ""
    for written in sorted(reports.glob("*")):
        places[f"report:{written.name}"] = written.read_text(encoding="utf-8", errors="replace")

    # the sweep looked where it meant to: the customers' words reached each place that keeps them
    assert "我要投诉" in places["db:messages"] and "Traceback" not in places["bot report"]
    assert "can't parse message" in places["log"], "the failing send was not logged"
    assert places["faq/drafts.yaml"] and any(p.startswith("report:") for p in places)
    found = leaks(places, corpus)
    print(
        json.dumps(
            {
                "backend": backend,
                "values_seeded": len(corpus),
                "never_raw": sum(v.kind in pii.NEVER_RAW for v in corpus),
                "places_searched": len(places),
                "places": sorted(places),
                "raw_values_found": len(found),
            },
            ensure_ascii=False,
        )
    )
    assert found == [], "\n".join(f"{kind} {value!r} in {place}" for kind, value, place in found)


def _answered(store_url: str) -> int:
    """How many customer messages the bot has handled."""
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text("SELECT count(*) FROM messages WHERE direction = 'in' AND handled")
                ).scalar_one()
            )
    finally:
        engine.dispose()


def _outbox_settled(store_url: str) -> bool:
    """Every reply sent or given up (none still waiting for its first try)."""
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn:
            waiting = conn.execute(
                sa.text("SELECT count(*) FROM outbox WHERE sent_at IS NULL AND attempts = 0")
            ).scalar_one()
            return int(waiting) == 0
    finally:
        engine.dispose()


async def _agent_quotes_the_customer(
    http: aiohttp.ClientSession, base: str, store_url: str, corpus: list[pii.Seeded]
) -> None:
    """A supervisor claims the complaints one by one, replies quoting the customer's data, and
    transfers one with a note quoting it too."""
    store = Store(store_url)
    try:
        with store.transaction() as tx:
            agents.add(
                tx, "mei", "Mei", Role.SUPERVISOR, hash_password(PASSWORD), SystemClock().now()
            )
    finally:
        store.close()
    async with http.get(f"{base}/console/login") as response:
        token = CSRF.search(await response.text())
    assert token
    async with http.post(
        f"{base}/console/login",
        data={"login": "mei", "password": PASSWORD, "csrf": token.group(1)},
        allow_redirects=False,
    ) as response:
        assert response.status == 303, await response.text()
    async with http.get(f"{base}/console/") as response:
        token = CSRF.search(await response.text())
    assert token
    csrf = token.group(1)
    quoted = [v for v in corpus if v.kind in pii.NEVER_RAW]
    for round_ in range(3):
        async with http.post(
            f"{base}/console/claim-next", data={"csrf": csrf}, allow_redirects=False
        ) as response:
            location = response.headers.get("Location", "")
        if "/tickets/" not in location:
            break
        ticket = location.rsplit("/", 1)[1]
        said = quoted[round_ % len(quoted)]
        async with http.post(
            f"{base}/console/tickets/{ticket}/reply",
            data={
                "csrf": csrf,
                "text": f"您好，已核实您提供的信息：{said.message}，我们马上处理。",
                "confirmed": "1",
            },
            allow_redirects=False,
        ) as response:
            assert response.status in (200, 303), await response.text()
        if round_ == 0:
            note = quoted[-1].message
            async with http.post(
                f"{base}/console/tickets/{ticket}/transfer",
                data={"csrf": csrf, "target": "queue:general", "note": f"客户说：{note}"},
                allow_redirects=False,
            ) as response:
                assert response.status == 303, await response.text()
