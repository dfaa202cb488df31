"""The production recipe in deploy/, as shipped: Debian's nginx with deploy/nginx/qingmu-bot.conf
(only its ports, certificate paths and workers changed; a self-signed certificate made here) in
front of two `bot run` workers on PostgreSQL with every channel enabled against the loopback fakes
(tests/support/fakes). Every channel's route is reached over HTTPS through nginx; so are the
console's login and its live-update stream. /metrics is refused from another address, a stopping
worker loses nothing, and both workers serve behind the upstream."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import xmltodict
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.domain.agent import Role
from bot.domain.clock import SystemClock
from bot.store import agents
from bot.store.database import Store
from bot.web.auth import hash_password
from bot.web.console.sessions import COOKIE
from tests.support import nginx
from tests.support.fakes import telegram_api as tg
from tests.support.fakes import wechat_api as wx
from tests.support.fakes import wecom_api as wc
from tests.support.service import SECRET, bot_command, free_port, ready
from tests.support.waiting import until

#: the `bot` processes started here find the content encoded (conftest `shop`)
pytestmark = [pytest.mark.warm_content, pytest.mark.slow]

SHIPPING = "订单满 99 元包邮，不满收取 8 元运费。"
TELEGRAM_SECRET = "deploy-test-secret_not-real"
KF = "wk-deploy-account"
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Receiver:
    """The generic webhook's other end (deliver_url): records what the bot delivers."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.app = web.Application()
        self.app.router.add_post("/deliver", self.deliver)

    async def deliver(self, request: web.Request) -> web.Response:
        assert request.headers.get("Authorization") == f"Bearer {SECRET}"
        self.received.append(await request.json())
        return web.json_response({"ok": True})

    def texts(self, user: str) -> list[str]:
        return [str(r["text"]) for r in self.received if r["chat"] == user]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    found = Receiver()
    server = TestServer(found.app, host="127.0.0.1")
    await server.start_server()
    yield found, str(server.make_url("/deliver"))
    await server.close()


@pytest.fixture
async def wechat_api() -> AsyncIterator[tuple[wx.FakeWechatAPI, str]]:
    fake = wx.FakeWechatAPI()
    base = await fake.start()
    yield fake, base
    await fake.close()


@pytest.fixture
async def qyapi() -> AsyncIterator[tuple[wc.FakeQyapi, str]]:
    fake = wc.FakeQyapi()
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server()
    yield fake, str(server.make_url("")).rstrip("/")
    await server.close()


def _worker(path: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [bot_command(), "--config", str(path), "run", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


@dataclass
class Deployment:
    """What the test talks to: nginx over HTTPS, and the platforms' fakes behind the workers."""

    https: aiohttp.ClientSession
    public: str
    http_port: int
    certificate: nginx.Certificate
    workers: set[str]
    receiver: Receiver
    telegram: tg.FakeBotAPI
    qyapi: wc.FakeQyapi
    wechat_key: str
    wecom_key: str
    postgres_url: str


async def test_nginx_in_front_of_two_workers_on_every_channel(
    shop: Path,
    postgres_url: str,
    tmp_path: Path,
    receiver: tuple[Receiver, str],
    wechat_api: tuple[wx.FakeWechatAPI, str],
    qyapi: tuple[wc.FakeQyapi, str],
) -> None:
    nginx.require_nginx()
    found, deliver_url = receiver
    qy, qy_base = qyapi
    http_port, https_port = free_port(), free_port()
    public = f"https://127.0.0.1:{https_port}"
    wechat_key, wecom_key = wx.random_aes_key(), wc.random_aes_key()

    async with tg.running() as (telegram, telegram_base):
        path = shop / "config.toml"
        text = path.read_text(encoding="utf-8").replace(
            'url = "sqlite:///var/bot.sqlite3"', f'url = "{postgres_url}"'
        )
        assert "[service]" not in text
        text += (
            f'\n[service]\npublic_url = "{public}"\n'
            f'\n[channels.webhook]\nenabled = true\ndeliver_url = "{deliver_url}"\n'
            '\n[channels.telegram]\nenabled = true\nmode = "webhook"\n'
            f'api_base = "{telegram_base}"\n'
            f'\n[channels.wechat]\nenabled = true\napp_id = "{wx.APP_ID}"\nmode = "safe"\n'
            f'api_base = "{wechat_api[1]}"\n'
            f'\n[channels.wecom]\nenabled = true\ncorp_id = "{wc.CORP_ID}"\n'
            f'api_base = "{qy_base}"\n'
        )
        path.write_text(text, encoding="utf-8")
        # the secrets as deploy/bot.env.example names them
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
        ports = [free_port(), free_port()]
        workers = [_worker(path, port, env) for port in ports]
        certificate = nginx.self_signed(tmp_path)
        try:
            async with aiohttp.ClientSession() as direct:
                names = {(await ready(direct, port, 120))["worker"] for port in ports}
            assert len(names) == 2
            with nginx.running(
                tmp_path / "nginx", http_port, https_port, certificate, ports
            ) as access_log:
                jar = aiohttp.CookieJar(unsafe=True)  # cookies of an IP address
                connector = aiohttp.TCPConnector(ssl=certificate.client_context())
                async with aiohttp.ClientSession(
                    public, connector=connector, cookie_jar=jar
                ) as https:
                    deployment = Deployment(
                        https,
                        public,
                        http_port,
                        certificate,
                        names,
                        found,
                        telegram,
                        qy,
                        wechat_key,
                        wecom_key,
                        postgres_url,
                    )
                    await health_checks(deployment)
                    await generic_webhook(deployment)
                    await telegram_webhook(deployment)
                    await wechat_push(deployment)
                    await wecom_callback(deployment)
                    await console_live_updates(deployment)
                    await metrics_from_here_only(deployment)
                    await a_worker_stopping_loses_nothing(deployment, workers[1])
                served = {
                    line.split()[-1]
                    for line in access_log.read_text().splitlines()
                    if line.split()[-1] != "-"
                }
            # both workers served requests behind the upstream
            assert {f"127.0.0.1:{p}" for p in ports} <= served, served
        finally:
            for worker in workers:
                _stop(worker)


async def health_checks(d: Deployment) -> None:
    """The load balancer's checks reach both workers in turn; port 80 sends to https."""
    seen = set()
    for _ in range(4):
        async with d.https.get("/readyz") as response:
            assert response.status == 200
            seen.add((await response.json())["worker"])
    assert seen == d.workers
    async with d.https.get("/healthz") as response:
        assert response.status == 200 and (await response.json())["alive"] is True
    async with (
        aiohttp.ClientSession() as plain,
        plain.get(f"http://127.0.0.1:{d.http_port}/console/", allow_redirects=False) as response,
    ):
        assert response.status == 301
        assert response.headers["Location"].startswith("https://127.0.0.1")


async def generic_webhook(d: Deployment) -> None:
    """A question answered inline (or, on a slow machine, delivered a moment later)."""
    async with d.https.post(
        "/channels/webhook/messages",
        json={"id": "d1", "user": "dana", "text": "运费多少", "wait": True},
        headers={"Authorization": f"Bearer {SECRET}"},
    ) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    assert body["action"] == "answer"
    if body["pending"]:
        await until(lambda: SHIPPING in d.receiver.texts("dana"), 30)
    else:
        assert SHIPPING in [r["text"] for r in body["replies"]]


async def telegram_webhook(d: Deployment) -> None:
    """Each worker registered the webhook under public_url; an update is answered."""
    assert d.telegram.webhook["url"] == f"{d.public}/channels/telegram/webhook"
    async with d.https.post(
        "/channels/telegram/webhook",
        json={"update_id": 9001, **tg.text_update("运费多少", message_id=21, chat_id=778)},
        headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET},
    ) as response:
        assert response.status == 200, await response.text()
    await until(lambda: SHIPPING in [str(c.params["text"]) for c in d.telegram.sent()], 30)


async def wechat_push(d: Deployment) -> None:
    """The URL check, then an encrypted push answered in its own response (passive reply)."""
    server = wx.WechatServer(d.wechat_key)
    query = {**server.query(), "echostr": "echo-deploy-1"}
    async with d.https.get("/channels/wechat", params=query) as response:
        assert response.status == 200 and await response.text() == "echo-deploy-1"
    query, push = server.encrypted_push(wx.text_xml("o-deploy", 7001, "运费多少"))
    async with d.https.post("/channels/wechat", params=query, data=push.encode()) as response:
        assert response.status == 200
        answered = await response.text()
    assert answered != "success", "no passive reply within WeChat's 5 s"
    reply = xmltodict.parse(server.open_reply(answered, query["nonce"]))["xml"]
    assert SHIPPING in reply["Content"]


async def wecom_callback(d: Deployment) -> None:
    """The URL check, then kf_msg_or_event: the message pulled from qyapi and answered."""
    wecom = wc.WecomServer(d.wecom_key)
    check = wecom.verification("echo-deploy-2")
    async with d.https.get("/channels/wecom", params=check) as response:
        assert response.status == 200 and await response.text() == "echo-deploy-2"
    d.qyapi.customer_says(KF, "wm-deploy", "运费多少")
    query, news = wecom.kf_news(KF)
    async with d.https.post("/channels/wecom", params=query, data=news) as response:
        assert response.status == 200 and await response.text() == "success"
    await until(lambda: SHIPPING in d.qyapi.sent_to("wm-deploy"), 30)


async def console_live_updates(d: Deployment) -> None:
    """An agent logs in (a Secure cookie, public_url being https) and the live-update stream's
    first event arrives at once, unbuffered, from each worker."""
    store = Store(d.postgres_url)
    try:
        with store.transaction() as tx:
            agents.add(tx, "mei", "Mei", Role.AGENT, hash_password(PASSWORD), SystemClock().now())
    finally:
        store.close()
    async with d.https.get("/console/login") as response:
        assert response.status == 200
        token = CSRF.search(await response.text())
    assert token
    async with d.https.post(
        "/console/login",
        data={"login": "mei", "password": PASSWORD, "csrf": token.group(1)},
        allow_redirects=False,
    ) as response:
        assert response.status == 303, await response.text()
        cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "Secure" in cookie and "HttpOnly" in cookie
    for _ in range(2):  # one stream from each worker
        async with d.https.get("/console/events") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/event-stream"
            first = await asyncio.wait_for(response.content.readuntil(b"data: 0\n\n"), 5)
            assert b"event: changed" in first


async def metrics_from_here_only(d: Deployment) -> None:
    """/metrics from this host, not from another address (127.0.0.2 stands in for one)."""
    async with d.https.get("/metrics") as response:
        assert response.status == 200 and "bot_messages_in_total" in await response.text()
    elsewhere = aiohttp.TCPConnector(
        ssl=d.certificate.client_context(), local_addr=("127.0.0.2", 0)
    )
    async with aiohttp.ClientSession(d.public, connector=elsewhere) as outside:
        async with outside.get("/metrics") as response:
            assert response.status == 403
        async with outside.get("/readyz") as response:
            assert response.status == 200


async def a_worker_stopping_loses_nothing(d: Deployment, worker: subprocess.Popen[bytes]) -> None:
    """`systemctl stop` or `restart` (SIGTERM): nginx passes the stopping worker's requests to
    the other, and every message is answered."""
    worker.send_signal(signal.SIGTERM)
    for n in range(4):
        async with d.https.post(
            "/channels/webhook/messages",
            json={"id": f"s{n}", "user": f"stop{n}", "text": "运费多少"},
            headers={"Authorization": f"Bearer {SECRET}"},
        ) as response:
            assert response.status == 200, await response.text()
    await until(lambda: all(SHIPPING in d.receiver.texts(f"stop{n}") for n in range(4)), 30)
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, worker.wait, 60) == 0
