"""`bot run` as a service: the webhook channel in-process against a loopback receiver, then four
real `bot run` processes on one PostgreSQL sharing 200 customers' messages."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from adapters.webhook import WebhookChannel
from bot.assembly import build_pipeline
from bot.content.config import Config, WebhookChannelConfig, load_config
from bot.domain.clock import SystemClock
from bot.domain.messages import Inbound
from bot.store.database import Store
from bot.store.schema import decisions, messages, outbox
from bot.understanding.encoders import MemoEncoder
from bot.web.app import SERVICE, Parts, make_app, make_runner
from tests.support.service import SECRET, AppClient, bot_command, free_port, ready

#: the `bot` processes started here find the content encoded (conftest `shop`)
pytestmark = pytest.mark.warm_content


class Receiver:
    """The other end of the webhook channel: records what the bot delivers."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.app = web.Application()
        self.app.router.add_post("/deliver", self.deliver)

    async def deliver(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {SECRET}":
            return web.Response(status=401)
        self.received.append(await request.json())
        return web.json_response({"ok": True})


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    found = Receiver()
    server = TestServer(found.app, host="127.0.0.1")
    await server.start_server()
    yield found, str(server.make_url("/deliver"))
    await server.close()


async def _client(config: Config, encoder: MemoEncoder, url: str, tmp: Path) -> AppClient:
    pipeline = build_pipeline(
        config, SystemClock(), store_url=f"sqlite:///{tmp}/service.sqlite3", encoder=encoder
    )
    channel = WebhookChannel(
        WebhookChannelConfig(enabled=True, deliver_url=url, wait_seconds=4.0), SECRET
    )
    app = make_app(Parts(pipeline, [channel], run_scheduler=False))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


async def test_webhook_channel_end_to_end(
    config: Config, encoder: MemoEncoder, receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    found, url = receiver
    client = await _client(config, encoder, url, tmp_path)
    service = client.app[SERVICE]
    auth = {"Authorization": f"Bearer {SECRET}"}
    try:
        assert (await client.get("/healthz")).status == 200
        ready = await (await client.get("/readyz")).json()
        assert ready["ready"] and ready["database"] and ready["schema"]

        forged = await client.post(
            "/channels/webhook/messages",
            json={"id": "1", "user": "u", "text": "hi"},
            headers={"Authorization": "Bearer guess"},
        )
        assert forged.status == 401
        broken = await client.post("/channels/webhook/messages", data="{not json", headers=auth)
        assert broken.status == 400

        # waiting: the replies come back inline and are not delivered a second time
        inline = await client.post(
            "/channels/webhook/messages",
            json={"id": "m1", "user": "alice", "text": "运费多少", "wait": True},
            headers=auth,
        )
        body = await inline.json()
        assert body["action"] == "answer"
        # (plus the after-hours notice when this runs outside the fixture shop's hours)
        assert body["replies"][0]["text"] == "订单满 99 元包邮，不满收取 8 元运费。"
        joined = await service.handle(
            Inbound("webhook", "joined-1", "erin", "erin", "转人工", datetime.now(UTC)), wait=4
        )
        assert joined.inline and joined.joined() == "\n\n".join(r.text for r in joined.replies)
        await service.confirm_inline(joined)

        # not waiting: the dispatcher delivers to the receiver
        queued = await client.post(
            "/channels/webhook/messages",
            json={"id": "m2", "user": "bob", "text": "可以开发票吗"},
            headers=auth,
        )
        assert (await queued.json())["replies"] == []
        for _ in range(100):
            if found.received:
                break
            await asyncio.sleep(0.05)
        assert {r["chat"] for r in found.received} == {"bob"}
        assert {r["reply_to"] for r in found.received} == {"m2"}  # the caller's own id
        delivered = len(found.received)

        # Prometheus: this worker's counters and the queues read from the database
        scraped = await client.get("/metrics")
        assert scraped.status == 200 and scraped.content_type == "text/plain"
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(await scraped.text())
            for s in family.samples
        }
        assert samples[("bot_messages_in_total", (("channel", "webhook"),))] >= 2
        assert samples[("bot_decisions_total", (("action", "handoff"),))] >= 1
        depth = samples[("bot_queue_depth", (("queue", "general"), ("status", "queued")))]
        waiting = samples[("bot_queue_depth", (("queue", "general"), ("status", "waiting")))]
        assert depth + waiting == 1  # erin's handoff
        assert ("bot_oldest_waiting_seconds", (("queue", "general"),)) in samples

        # ids are per user: carol's m1 is not alice's m1
        carol = await client.post(
            "/channels/webhook/messages",
            json={"id": "m1", "user": "carol", "text": "运费多少", "wait": True},
            headers=auth,
        )
        assert (await carol.json())["action"] == "answer"
        # a text message without text is malformed: 400, nothing stored
        empty = await client.post(
            "/channels/webhook/messages", json={"id": "m9", "user": "dan"}, headers=auth
        )
        assert empty.status == 400 and "text" in (await empty.json())["error"]

        # the same delivery again: answered once
        again = await client.post(
            "/channels/webhook/messages",
            json={"id": "m1", "user": "alice", "text": "运费多少", "wait": True},
            headers=auth,
        )
        assert (await again.json())["action"] == "duplicate"
        await asyncio.sleep(0.6)  # a dispatcher round: nothing for alice
        assert {r["chat"] for r in found.received} == {"bob"}
        assert len(found.received) == delivered
    finally:
        await client.close()


@asynccontextmanager
async def _serving(app: web.Application) -> AsyncIterator[str]:
    """The application served as `bot run` serves it, on a free port; its address."""
    runner = make_runner(app, 5.0)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/channels/webhook/messages"
    finally:
        await runner.cleanup()


def _webhook_app(config: Config, encoder: MemoEncoder, url: str, store_url: str) -> web.Application:
    pipeline = build_pipeline(config, SystemClock(), store_url=store_url, encoder=encoder)
    channel = WebhookChannel(
        WebhookChannelConfig(enabled=True, deliver_url=url, wait_seconds=4.0), SECRET
    )
    return make_app(Parts(pipeline, [channel], run_scheduler=False))


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
async def test_a_client_that_gives_up_waiting_gets_its_replies_once(
    backend: str,
    config: Config,
    encoder: MemoEncoder,
    receiver: tuple[Receiver, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """A client waits for the replies inline, times out and sends the same id again: the
    replies reach it once, in the retry's answer or at deliver_url, and a reply counts as
    sent inline only when a response carrying it was written. On PostgreSQL the retry lands
    on a second worker."""
    found, url = receiver
    store_url = f"sqlite:///{tmp_path}/service.sqlite3"
    if backend == "postgresql":
        store_url = request.getfixturevalue("postgres_url")
    first_app = _webhook_app(config, encoder, url, store_url)
    second_app = first_app
    if backend == "postgresql":
        second_app = _webhook_app(config, encoder, url, store_url)
    auth = {"Authorization": f"Bearer {SECRET}"}
    async with AsyncExitStack() as serving:
        first = await serving.enter_async_context(_serving(first_app))
        second = first
        if second_app is not first_app:
            second = await serving.enter_async_context(_serving(second_app))
        # the whole request is sent; the client gives up waiting for the answer. On a quick
        # day the answer comes within 20 ms, so then a second customer with less patience
        for number, patience in enumerate((0.02, 0.005), start=1):
            user = f"dora{number}"
            message = {"id": f"m{number}", "user": user, "text": "运费多少", "wait": True}
            gives_up = aiohttp.ClientTimeout(total=None, sock_read=patience)
            async with aiohttp.ClientSession(timeout=gives_up) as impatient:
                try:
                    async with impatient.post(first, json=message, headers=auth) as response:
                        await response.read()
                except TimeoutError:
                    break
        else:
            pytest.fail("the server answered within 5 ms: no client gave up")
        store = first_app[SERVICE].pipeline.store
        for _ in range(200):  # the retry comes after the first delivery was stored
            with store.engine.connect() as conn:
                stored = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(messages)
                    .where(messages.c.user_id == user)
                ).scalar_one()
            if stored:
                break
            await asyncio.sleep(0.05)
        assert stored, "the first request reached the worker"
        async with (
            aiohttp.ClientSession() as patient,
            patient.post(second, json=message, headers=auth) as response,
        ):
            answer = await response.json()
        assert answer["action"] == "duplicate"
        returned = [reply["outbox_id"] for reply in answer["replies"]]

        rows: list[Any] = []
        for _ in range(100):  # the first request's replies are written
            with store.engine.connect() as conn:
                rows = list(conn.execute(sa.select(outbox.c.id).where(outbox.c.chat_id == user)))
            if rows:
                break
            await asyncio.sleep(0.05)
        assert rows
        for _ in range(100):  # dispatcher rounds deliver what the retry did not get
            if len(returned) + len(found.received) >= len(rows):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.6)  # one more round: nothing is sent twice
        delivered = [body["outbox_id"] for body in found.received]
        assert sorted(returned + delivered) == sorted(row.id for row in rows)
        with store.engine.connect() as conn:
            via = dict(
                conn.execute(
                    sa.select(outbox.c.id, outbox.c.via).where(outbox.c.chat_id == user)
                ).all()
            )
        assert {i for i, how in via.items() if how == "inline"} == set(returned)
        assert {i for i, how in via.items() if how == "api"} == set(delivered)
    for app in {id(first_app): first_app, id(second_app): second_app}.values():
        app[SERVICE].pipeline.store.close()


async def test_a_cancelled_request_frees_its_replies_for_the_retry(
    config: Config, encoder: MemoEncoder, receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    """Behind a server that cancels the request of a client gone away (aiohttp's test server
    does), the replies held for it are free once decided: the retry gets them at once, not
    when the hold (`wait_seconds`, 4 s here) ends."""
    found, url = receiver
    # a message waits 50 ms for others to share its reading batch, so a client with 20 ms of
    # patience has always gone before the answer, however loaded the machine
    slow = config.model_copy(deep=True)
    slow.service.batch_wait_ms = 50
    client = await _client(slow, encoder, url, tmp_path)
    auth = {"Authorization": f"Bearer {SECRET}"}
    address = client.make_url("/channels/webhook/messages")
    try:
        message = {"id": "m1", "user": "ivy", "text": "运费多少", "wait": True}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.02)) as impatient:
            with pytest.raises(TimeoutError):
                async with impatient.post(address, json=message, headers=auth) as response:
                    await response.read()
        started = time.monotonic()
        answer = await (
            await client.post("/channels/webhook/messages", json=message, headers=auth)
        ).json()
        assert answer["replies"], answer
        assert time.monotonic() - started < 3.0
        await asyncio.sleep(0.6)  # a dispatcher round: nothing sent a second time
        assert found.received == []
    finally:
        await client.close()


# --- several `bot run` processes on PostgreSQL ------------------------------------------------


@pytest.mark.slow
async def test_four_workers_share_200_customers(
    shop: Path, postgres_url: str, receiver: tuple[Receiver, str]
) -> None:
    found, url = receiver
    path = shop / "config.toml"
    text = path.read_text(encoding="utf-8").replace(
        'url = "sqlite:///var/bot.sqlite3"', f'url = "{postgres_url}"'
    )
    path.write_text(
        text + f'\n[channels.webhook]\nenabled = true\ndeliver_url = "{url}"\n', encoding="utf-8"
    )
    assert load_config(path).storage_url == postgres_url
    ports = [free_port() for _ in range(4)]
    # prometheus-client's multiprocess mode: any worker's /metrics adds up all of them
    counters = shop / "prometheus"
    counters.mkdir()
    env = {**os.environ, "BOT_WEBHOOK_SECRET": SECRET, "PROMETHEUS_MULTIPROC_DIR": str(counters)}
    workers = [
        subprocess.Popen(
            [bot_command(), "--config", str(path), "run", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for port in ports
    ]
    try:
        async with aiohttp.ClientSession() as session:
            states = [await ready(session, port, 120) for port in ports]
            auth = {"Authorization": f"Bearer {SECRET}"}
            texts = ["你好", "运费多少", "可以开发票吗", "今天天气怎么样", "谢谢"]

            async def customer(n: int) -> None:
                for i, text in enumerate(texts):  # each message to another worker
                    port = ports[(n + i) % len(ports)]
                    body = {"id": f"c{n}-{i}", "user": f"c{n}", "text": text}
                    async with session.post(
                        f"http://127.0.0.1:{port}/channels/webhook/messages",
                        json=body,
                        headers=auth,
                    ) as response:
                        assert response.status == 200, await response.text()

            await asyncio.gather(*(customer(n) for n in range(200)))
            store = Store(postgres_url)
            with store.engine.connect() as conn:
                expected = conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar()
            deadline = time.monotonic() + 60
            while len(found.received) < (expected or 0) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            with store.engine.connect() as conn:
                inbound = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(messages)
                    .where(messages.c.direction == "in")
                ).scalar()
                decided = conn.execute(
                    sa.select(decisions.c.message_id, sa.func.count()).group_by(
                        decisions.c.message_id
                    )
                ).all()
                rows = conn.execute(
                    sa.select(outbox.c.id, outbox.c.conversation_id).order_by(outbox.c.id)
                ).all()
            assert inbound == 1000
            assert len(decided) == 1000 and all(count == 1 for _, count in decided)
            ids = [r["outbox_id"] for r in found.received]
            assert sorted(ids) == [r.id for r in rows]  # every reply sent, and exactly once
            order: dict[int, list[int]] = {}
            for r in found.received:
                order.setdefault(r["conversation_id"], []).append(r["outbox_id"])
            assert all(seen == sorted(seen) for seen in order.values())  # in order

            # a send is counted once the worker has marked it sent, a moment after the
            # receiver got it: read until the counts settle
            deadline = time.monotonic() + 15
            while True:
                async with session.get(f"http://127.0.0.1:{ports[0]}/metrics") as response:
                    assert response.status == 200
                    families = {
                        f.name: f for f in text_string_to_metric_families(await response.text())
                    }
                delivered = families["bot_messages_out"].samples
                sent = sum(s.value for s in delivered if s.name.endswith("_total"))
                if sent == len(rows) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert sent == len(rows)
            received = families["bot_messages_in"].samples
            assert sum(s.value for s in received if s.name == "bot_messages_in_total") == 1000
            decided_total = sum(
                s.value for s in families["bot_decisions"].samples if s.name.endswith("_total")
            )
            assert decided_total == 1000
            latency = families["bot_pipeline_seconds"].samples
            assert [s.value for s in latency if s.name == "bot_pipeline_seconds_count"] == [1000]

            states = [await ready(session, port, 10) for port in ports]
            leaders = [i for i, s in enumerate(states) if s["leader"]]
            assert len(leaders) == 1, states
            workers[leaders[0]].send_signal(signal.SIGKILL)
            workers[leaders[0]].wait(10)
            survivors = [p for i, p in enumerate(ports) if i != leaders[0]]
            deadline = time.monotonic() + 30
            new_leaders: list[int] = []
            while time.monotonic() < deadline and len(new_leaders) != 1:
                await asyncio.sleep(0.5)
                states = [await ready(session, port, 10) for port in survivors]
                new_leaders = [i for i, s in enumerate(states) if s["leader"]]
            assert len(new_leaders) == 1, states
            store.close()
    finally:
        for process in workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in workers:
            try:
                assert process.wait(30) in (0, -signal.SIGKILL)
            except subprocess.TimeoutExpired:
                process.kill()
            if process.stderr:
                err = process.stderr.read().decode()
                assert "Traceback" not in err, err[-3000:]
    print(json.dumps({"workers": 4, "customers": 200}))


def test_an_enabled_webhook_needs_somewhere_to_deliver(shop: Path) -> None:
    from bot.content.problems import ProblemsError

    path = shop / "config.toml"
    path.write_text(
        path.read_text(encoding="utf-8") + "\n[channels.webhook]\nenabled = true\n",
        encoding="utf-8",
    )
    with pytest.raises(ProblemsError) as caught:
        load_config(path)
    [problem] = caught.value.problems
    assert "deliver_url" in str(problem) and problem.line is not None


@pytest.mark.slow
async def test_sigterm_finishes_the_messages_in_flight(
    shop: Path, receiver: tuple[Receiver, str]
) -> None:
    """SIGTERM mid-burst: every message the worker answered 200 to has its decision written,
    none is decided twice, their replies are delivered before the worker exits, and it exits
    cleanly."""
    found, url = receiver
    path = shop / "config.toml"
    path.write_text(
        path.read_text(encoding="utf-8")
        + f'\n[channels.webhook]\nenabled = true\ndeliver_url = "{url}"\n',
        encoding="utf-8",
    )
    port = free_port()
    worker = subprocess.Popen(
        [bot_command(), "--config", str(path), "run", "--port", str(port)],
        env={**os.environ, "BOT_WEBHOOK_SECRET": SECRET},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    statuses: list[int] = []
    try:
        async with aiohttp.ClientSession() as session:
            await ready(session, port, 120)

            async def send(n: int) -> None:
                try:
                    async with session.post(
                        f"http://127.0.0.1:{port}/channels/webhook/messages",
                        json={"id": f"t{n}", "user": f"t{n}", "text": "运费多少"},
                        headers={"Authorization": f"Bearer {SECRET}"},
                    ) as response:
                        statuses.append(response.status)
                        if response.status == 200:
                            first.set()
                except aiohttp.ClientError:
                    statuses.append(0)  # refused once the worker stopped listening

            first = asyncio.Event()
            burst = [asyncio.create_task(send(n)) for n in range(200)]
            # mid-burst: the first answers are out, most of the burst still in flight (a fixed
            # 50 ms could fall before any message passed the limits' count on a busy machine)
            await asyncio.wait_for(first.wait(), 30)
            worker.send_signal(signal.SIGTERM)
            await asyncio.gather(*burst)
            # wait without blocking this loop: the receiver runs on it
            exit_code = await asyncio.get_running_loop().run_in_executor(None, worker.wait, 30)
        assert exit_code == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.stderr is not None
    err = worker.stderr.read().decode()
    assert "Traceback" not in err, err[-3000:]
    store = Store(load_config(path).storage_url)
    with store.engine.connect() as conn:
        unsent = conn.execute(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.status != "sent")
        ).scalar()
        written = conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar()
        decided = conn.execute(
            sa.select(messages.c.external_id, sa.func.count())
            .join(decisions, decisions.c.message_id == messages.c.id)
            .group_by(messages.c.external_id)
        ).all()
    store.close()
    answered = statuses.count(200)
    assert answered > 0 and len(decided) >= answered
    assert all(count == 1 for _, count in decided)
    assert unsent == 0 and len(found.received) == written  # delivered before it exited
    assert "Connector is closed" not in err and "bot run: stopped" in err


def _webhook_config(shop: Path, url: str = "http://127.0.0.1:9/deliver") -> Path:
    path = shop / "config.toml"
    path.write_text(
        path.read_text(encoding="utf-8")
        + f'\n[channels.webhook]\nenabled = true\ndeliver_url = "{url}"\n',
        encoding="utf-8",
    )
    return path


@pytest.mark.slow
def test_the_start_up_lines_give_the_consoles_public_address(shop: Path) -> None:
    """Finding 7 of issue 20's trial: behind nginx with an https `public_url`, `bot run` named
    the console only as http://127.0.0.1:PORT/console/, which no agent can open."""
    path = _webhook_config(shop)
    path.write_text(
        path.read_text(encoding="utf-8")
        + '\n[service]\npublic_url = "https://help.example.test"\n',
        encoding="utf-8",
    )
    port = free_port()
    worker = subprocess.Popen(
        [bot_command(), "--config", str(path), "run", "--port", str(port)],
        env={**os.environ, "BOT_WEBHOOK_SECRET": SECRET},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert worker.stderr is not None
    said = []
    try:
        for line in worker.stderr:  # up to the console's line, or the end if it never comes
            said.append(line.strip())
            if "agents' console" in line:
                break
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=60)
    assert said[-1] == (
        "agents' console: https://help.example.test/console/ "
        f"(this worker: http://127.0.0.1:{port}/console/)"
    ), said


@pytest.mark.slow
def test_start_up_errors_are_one_clear_problem_not_a_traceback(shop: Path) -> None:
    path = _webhook_config(shop)
    env = {k: v for k, v in os.environ.items() if k != "BOT_WEBHOOK_SECRET"}
    no_secret = subprocess.run(
        [bot_command(), "--config", str(path), "run", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert no_secret.returncode == 2 and "Traceback" not in no_secret.stderr
    assert "$BOT_WEBHOOK_SECRET is not set" in no_secret.stderr
    check = subprocess.run(
        [bot_command(), "--config", str(path), "check"], env=env, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout  # a warning: the service may have it set
    assert "$BOT_WEBHOOK_SECRET is not set in this environment" in check.stdout

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run(
            [bot_command(), "--config", str(path), "run", "--port", str(port)],
            env={**env, "BOT_WEBHOOK_SECRET": SECRET},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert busy.returncode == 2 and "Traceback" not in busy.stderr, busy.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in busy.stderr
    assert "listening on" not in busy.stderr
