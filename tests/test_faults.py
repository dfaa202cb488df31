"""Faults injected into the running service under load: a worker killed with SIGKILL and
restarted, PostgreSQL restarted, the SQLite data folder unable to take writes. Real `bot run`
processes over the generic webhook; the customers resend what got no 200, as a platform does.
What must hold each time: every message that got a 200 is decided once and answered, each reply
is delivered exactly once, each customer's replies in order, and the workers recover with no
manual step. Each test prints its counts (sent / 200s / answered / duplicates) as JSON."""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from bot.store.schema import decisions, messages, outbox
from tests.support import postgres
from tests.support.platform import Load, Receiver, Worker, customers, receiving
from tests.support.service import free_port, ready
from tests.support.waiting import until

#: the `bot` processes started here find the content encoded (conftest `shop`)
pytestmark = [pytest.mark.warm_content, pytest.mark.slow]

SEPARATOR = "\x1f"  # adapters.webhook's, between user and message id in a delivery key


def _configure(shop: Path, storage_url: str, deliver_url: str, lease: float = 60) -> Path:
    path = shop / "config.toml"
    text = path.read_text(encoding="utf-8").replace(
        'url = "sqlite:///var/bot.sqlite3"', f'url = "{storage_url}"'
    )
    text = text.replace("[service]", f"[service]\nsend_lease_seconds = {lease}")
    if "send_lease_seconds" not in text:
        text += f"\n[service]\nsend_lease_seconds = {lease}\n"
    text += f'\n[channels.webhook]\nenabled = true\ndeliver_url = "{deliver_url}"\n'
    path.write_text(text, encoding="utf-8")
    return path


async def _ready_all(session: aiohttp.ClientSession, workers: list[Worker]) -> None:
    for worker in workers:
        await ready(session, worker.port, 120)


async def _settled(storage_url: str, receiver: Receiver, seconds: float = 60) -> None:
    """Until every reply in the outbox is sent and the receiver has had them; then a moment
    more, for a second delivery that must not come."""
    engine = sa.create_engine(storage_url)

    def unsent() -> int:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(outbox).where(outbox.c.status != "sent")
                ).scalar_one()
            )

    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + seconds
    while await loop.run_in_executor(None, unsent) and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
    await asyncio.sleep(2)
    engine.dispose()


def _undecided(engine: sa.Engine) -> int:
    """Messages stored but not decided yet."""
    with engine.connect() as conn:
        count = conn.execute(
            sa.select(sa.func.count())
            .select_from(messages)
            .where(messages.c.direction == "in", messages.c.handled.is_(False))
        ).scalar_one()
    return int(count)


def _held_by(engine: sa.Engine, pid: int) -> set[int]:
    """The unsent replies the worker with this process id holds (its id is host:pid:random)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.id).where(
                outbox.c.status != "sent", outbox.c.leased_by.like(f"%:{pid}:%")
            )
        )
        return {int(row.id) for row in rows}


def _check(
    storage_url: str, load: Load, receiver: Receiver, in_hand: frozenset[int] = frozenset()
) -> dict[str, Any]:
    """What must hold after the fault, asserted; the counts, returned. `in_hand`: replies a
    killed worker was sending when it died, which may reach the platform twice (the kill fell
    between the platform's 2xx and marking them sent; the platform drops the repeat by its
    `outbox_id`), at most twice."""
    engine = sa.create_engine(storage_url)
    with engine.connect() as conn:
        decided = Counter(
            {
                row.external_id: row.count
                for row in conn.execute(
                    sa.select(messages.c.external_id, sa.func.count().label("count"))
                    .join(decisions, decisions.c.message_id == messages.c.id)
                    .group_by(messages.c.external_id)
                )
            }
        )
        rows = conn.execute(
            sa.select(outbox.c.id, outbox.c.conversation_id, outbox.c.status).order_by(outbox.c.id)
        ).all()
    engine.dispose()
    accepted = load.accepted
    sent = len(load.attempts)
    # every message was finally accepted (resent until it got a 200) …
    assert len(accepted) == sent, {m: s for m, s in load.attempts.items() if m not in accepted}
    # … and decided exactly once
    keys = {f"{m.rsplit('-', 1)[0]}{SEPARATOR}{m}": m for m in accepted}
    assert all(decided[key] == 1 for key in keys), {
        keys[k]: decided[k] for k in keys if decided[k] != 1
    }
    assert all(count == 1 for count in decided.values())
    # every reply written was delivered, exactly once
    delivered = Counter(r["outbox_id"] for r in receiver.received)
    doubled = {i: n for i, n in delivered.items() if n > 1}
    assert set(doubled) <= in_hand and all(n == 2 for n in doubled.values()), (doubled, in_hand)
    assert sorted(delivered) == [r.id for r in rows]
    assert all(r.status == "sent" for r in rows)
    # each customer's replies in the order of their messages, each conversation's in outbox order
    index = {m: n for order in load.order.values() for n, m in enumerate(order)}
    per_chat: dict[str, list[int]] = {}
    per_conversation: dict[int, list[int]] = {}
    for reply in receiver.received:
        if reply["reply_to"] is not None:
            per_chat.setdefault(reply["chat"], []).append(index[reply["reply_to"]])
        per_conversation.setdefault(reply["conversation_id"], []).append(reply["outbox_id"])
    assert all(seen == sorted(seen) for seen in per_chat.values()), per_chat
    assert all(seen == sorted(seen) for seen in per_conversation.values())
    answered = {r["reply_to"] for r in receiver.received if r["reply_to"] is not None}
    assert answered == set(accepted), set(accepted) - answered
    return {
        "messages": sent,
        "attempts": sent + load.refused,
        "200s": len(accepted),
        "answered": len(answered & set(accepted)),
        "replies": len(receiver.received),
        "duplicates": sum(n - 1 for n in doubled.values()),
        "in the killed worker's hands": len(in_hand),
    }


@pytest.mark.postgres
async def test_a_worker_killed_under_load_and_restarted_loses_nothing(
    shop: Path, postgres_url: str
) -> None:
    """Fault: one of two workers on one PostgreSQL is killed (SIGKILL) while 50 customers send
    5 messages each, and started again. Holds: every message that got a 200 is answered exactly
    once, each customer's replies in order; what the dead worker refused or never answered is
    resent to the other, which takes it over (once the dead worker's hold runs out)."""
    async with receiving() as (receiver, url):
        path = _configure(shop, postgres_url, url, lease=5)
        ports = [free_port(), free_port()]
        workers = [Worker(path, port) for port in ports]
        try:
            async with aiohttp.ClientSession() as session:
                await _ready_all(session, workers)
                load = Load()
                engine = sa.create_engine(postgres_url)
                orphans, kills = 0, 0
                in_hand: set[int] = set()
                # a wave of customers per kill, until a kill catches messages stored but not
                # decided (the moment that matters; most of a message's time is elsewhere)
                for wave in range(3):
                    sending = asyncio.create_task(
                        customers(
                            session,
                            lambda k: [ports[k % 2], ports[(k + 1) % 2]],
                            50,
                            load=load,
                            prefix=f"w{wave}c",
                        )
                    )
                    ends = time.monotonic() + 30
                    while _undecided(engine) < 2 and time.monotonic() < ends:
                        await asyncio.sleep(0.01)
                    workers[1].process.send_signal(signal.SIGKILL)
                    assert await workers[1].wait(10) == -signal.SIGKILL
                    kills += 1
                    assert not sending.done()  # the kill came mid-load
                    in_hand |= _held_by(engine, workers[1].pid)
                    await asyncio.sleep(1.5)  # the live worker decides its own meanwhile
                    orphans += _undecided(engine)
                    workers[1] = Worker(path, ports[1])
                    await ready(session, ports[1], 120)
                    await sending
                    if orphans:
                        break
                engine.dispose()
                assert orphans, "no kill caught a message between storing and deciding"
                await _settled(postgres_url, receiver)
                counts = _check(postgres_url, load, receiver, frozenset(in_hand))
        finally:
            for worker in workers:
                await worker.stop()
    print(json.dumps({"fault": "worker SIGKILL", "kills": kills, "orphaned": orphans, **counts}))


@pytest.fixture
def private_postgres() -> Any:
    postgres.require_initdb()
    # not under pytest's tmp_path: as root that is closed to the `postgres` user
    cluster = postgres.PrivateCluster(Path(tempfile.mkdtemp(prefix="bot-test-pg-")), free_port())
    cluster.create()
    yield cluster
    cluster.destroy()


async def test_postgresql_restarted_under_load_loses_and_doubles_nothing(
    shop: Path, private_postgres: postgres.PrivateCluster
) -> None:
    """Fault: the PostgreSQL server of two workers restarts (fast shutdown, 3 s down) while 50
    customers send 5 messages each. Holds: the workers recover with no manual step (/readyz may
    turn unready and comes back), what they could not store gets 503, not 200 nor 500, and every
    message that got a 200 is answered exactly once, each customer's replies in order."""
    cluster = private_postgres
    async with receiving() as (receiver, url):
        path = _configure(shop, cluster.url, url)
        ports = [free_port(), free_port()]
        workers = [Worker(path, port) for port in ports]
        try:
            async with aiohttp.ClientSession() as session:
                await _ready_all(session, workers)
                load = Load()
                sending = asyncio.create_task(
                    customers(session, lambda k: [ports[k % 2], ports[(k + 1) % 2]], 50, load=load)
                )
                await until(lambda: len(load.accepted) >= 60, 120)
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, cluster.stop)
                stopped_at = len(load.accepted)
                unready: set[int] = set()
                for _ in range(6):
                    for port in ports:
                        async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                            if response.status == 503:
                                unready.add(port)
                    await asyncio.sleep(0.5)
                await loop.run_in_executor(None, cluster.start)
                await _ready_all(session, workers)
                await sending
                await _settled(cluster.url, receiver)
                counts = _check(cluster.url, load, receiver)
                assert all(w.process.poll() is None for w in workers)  # none died of it
        finally:
            for worker in workers:
                await worker.stop()
    assert stopped_at < len(load.attempts)  # the restart came mid-load
    assert unready == set(ports)  # /readyz said so while the database was away
    statuses = {s for seen in load.attempts.values() for s in seen}
    assert statuses <= {200, 503}, statuses
    late = sum(w.log.count("was sent but not marked sent") for w in workers)
    print(json.dumps({"fault": "PostgreSQL restart", "marked sent late": late, **counts}))


def _writes_fail_quietly() -> None:
    """In the worker: a write over the file-size limit fails (EFBIG) instead of killing it."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


async def test_a_data_folder_that_takes_no_writes_gets_503_and_recovers(
    shop: Path,
) -> None:
    """Fault: the SQLite database's folder stops taking writes mid-load (every write fails, as
    on a full or read-only disk; made here with the worker's file-size limit, which needs no
    root). Holds: the webhook answers 503, never 200, for what it could not store; the log names
    the problem and the database's path; /readyz reports it; once writes work again the worker
    carries on, and every message that got a 200 is answered exactly once, in order."""
    async with receiving() as (receiver, url):
        path = _configure(shop, "sqlite:///var/bot.sqlite3", url)
        storage_url = f"sqlite:///{shop / 'var' / 'bot.sqlite3'}"
        port = free_port()
        worker = Worker(path, port, preexec=_writes_fail_quietly)
        try:
            async with aiohttp.ClientSession() as session:
                await ready(session, port, 120)
                load = Load()
                sending = asyncio.create_task(customers(session, lambda k: [port], 20, load=load))
                await until(lambda: len(load.accepted) >= 30, 120)
                _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
                resource.prlimit(worker.pid, resource.RLIMIT_FSIZE, (1, hard))
                full_at = len(load.accepted)
                await until(lambda: load.refused >= 10, 60)
                async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                    state = await response.json()
                assert response.status == 503 and not state["storage"], state
                assert "bot.sqlite3" in state["troubles"]["storage"], state
                resource.prlimit(worker.pid, resource.RLIMIT_FSIZE, (hard, hard))
                await ready(session, port, 30)
                await sending
                await _settled(storage_url, receiver)
                counts = _check(storage_url, load, receiver)
                assert worker.process.poll() is None
        finally:
            await worker.stop()
    assert full_at < len(load.attempts)
    statuses = {s for seen in load.attempts.values() for s in seen}
    assert statuses == {200, 503}, statuses
    problem = [line for line in worker.lines if "cannot write" in line]
    assert problem and str(shop / "var" / "bot.sqlite3") in problem[0], worker.log[-3000:]
    late = worker.log.count("was sent but not marked sent")
    print(json.dumps({"fault": "data folder takes no writes", "marked sent late": late, **counts}))
