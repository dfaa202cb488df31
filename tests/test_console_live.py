"""The console's live watcher: a NOTIFY on channel `desk` from any connection wakes every
console of a worker (real PostgreSQL); on SQLite, or when listening fails, a moving
`Desk.version()` does the same by polling."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bot.assembly import build_pipeline
from bot.content.config import Config
from bot.domain.agent import Role
from bot.domain.clock import FixedClock
from bot.domain.messages import Inbound
from bot.humans.desk import Desk
from bot.pipeline.knowledge import Knowledge
from bot.store import agents, tickets
from bot.store.database import Store
from bot.understanding.encoders import MemoEncoder
from bot.web.console.live import DeskWatch
from bot.web.console.parts import CONSOLE
from tests.support.console import Console, open_console
from tests.support.shop import at
from tests.support.waiting import until

HASH = "$argon2id$v=19$m=65536,t=3,p=4$not-a-real-hash"


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as executor:
        yield executor


async def test_notify_on_postgresql_wakes_the_consoles(
    pool: ThreadPoolExecutor, postgres_url: str
) -> None:
    calls: list[int] = []

    def version() -> str:
        calls.append(1)
        return "unchanged"

    watch = DeskWatch(version, pool, listen_url=make_url(postgres_url), poll_seconds=0.05)
    watch.start()
    try:
        await until(lambda: watch.listening)
        watch.subscribers = 1
        seen = watch.counter
        assert not await watch.wait(seen, 0.3)  # nothing happened
        engine = sa.create_engine(postgres_url)
        with engine.begin() as conn:  # another worker's transaction
            conn.execute(sa.text("NOTIFY desk"))
        engine.dispose()
        assert await watch.wait(seen, 5)
        assert calls == []  # listening: no polling
    finally:
        await watch.close()


async def test_polling_sees_the_version_move(pool: ThreadPoolExecutor) -> None:
    current = ["1"]
    watch = DeskWatch(lambda: current[0], pool, poll_seconds=0.05)
    watch.start()
    try:
        seen = await watch.subscribe()
        assert not await watch.wait(seen, 0.3)
        current[0] = "2"
        assert await watch.wait(seen, 5)
        seen = watch.counter
        assert not await watch.wait(seen, 0.3)
    finally:
        await watch.close()


async def test_a_change_just_before_a_console_connects_is_not_lost(
    pool: ThreadPoolExecutor,
) -> None:
    """The version is read as the console connects, not at the next poll: a change between
    the two still wakes it (the console refreshed once on connecting, before the change)."""
    current = ["1"]
    watch = DeskWatch(lambda: current[0], pool, poll_seconds=0.5)
    watch.start()
    try:
        await asyncio.sleep(0.6)  # the poller ran once with nobody watching
        current[0] = "2"  # the page was rendered before this; the stream opens after it
        seen = await watch.subscribe()
        current[0] = "3"  # after the stream's first refresh
        assert await watch.wait(seen, 5)
        watch.unsubscribe()
        assert watch.subscribers == 0
    finally:
        await watch.close()


async def test_a_failed_listen_falls_back_to_polling(
    pool: ThreadPoolExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    """No server at that address: the watcher says so and polls instead."""
    current = ["a"]
    nowhere = make_url("postgresql+psycopg://postgres@127.0.0.1:9/none")
    watch = DeskWatch(lambda: current[0], pool, listen_url=nowhere, poll_seconds=0.05)
    with caplog.at_level(logging.WARNING, "bot.web.console"):
        watch.start()
        try:
            watch.subscribers = 1
            await until(lambda: "polling" in caplog.text)
            seen = watch.counter
            await asyncio.sleep(0.2)
            current[0] = "b"
            assert await watch.wait(seen, 5)
        finally:
            await watch.close()


async def test_closing_ends_every_wait(pool: ThreadPoolExecutor) -> None:
    watch = DeskWatch(lambda: "1", pool, poll_seconds=0.05)
    watch.start()
    waiting = asyncio.create_task(watch.wait(watch.counter, 30))
    await asyncio.sleep(0.1)
    await watch.close()
    assert await asyncio.wait_for(waiting, 2)
    assert watch.closed


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
async def test_the_event_stream_says_changed_when_a_ticket_arrives(
    backend: str,
    config: Config,
    encoder: MemoEncoder,
    shop_knowledge: Knowledge,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """Through the real application: PostgreSQL by LISTEN desk, SQLite by polling."""
    url = None
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
    console = await open_console(config, encoder, tmp_path, url, shop_knowledge)
    try:
        console.add_agent("alice")
        assert (await console.log_in("alice")).status == 303
        stream = await console.client.get("/console/events")
        assert stream.headers["Content-Type"] == "text/event-stream"
        first = await asyncio.wait_for(stream.content.readuntil(b"data: 0\n\n"), 5)
        assert b"event: changed" in first  # the refresh on opening
        if backend == "postgresql":
            await until(lambda: _watch(console).listening)
        await asyncio.get_running_loop().run_in_executor(
            None,
            console.pipeline.handle,
            Inbound("webhook", "m1", "cust", "cust", "人工客服", console.clock.now()),
        )
        changed = await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 10)
        assert changed.startswith(b"event: changed\ndata: ")
        stream.close()
    finally:
        await console.client.close()
        console.pipeline.store.close()


def _watch(console: Console) -> DeskWatch:
    for resource in console.client.app.router.resources():
        sub = getattr(resource, "_app", None)
        if sub is not None and CONSOLE in sub:
            watch: DeskWatch = sub[CONSOLE].watch
            return watch
    raise AssertionError("no console mounted")


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_a_ticket_from_the_future_does_not_freeze_the_check(
    backend: str,
    config: Config,
    shop_knowledge: Knowledge,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """A ticket stamped ahead of the clock (a chat on a pretend clock, a worker whose clock
    runs fast) must not hide the changes made after it."""
    url = f"sqlite:///{tmp_path}/desk.sqlite3"
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
    clock = FixedClock(at("2027-01-20 10:00"))
    pipeline = build_pipeline(config, clock, store_url=url, knowledge=shop_knowledge)
    desk = Desk(config, pipeline.store, clock, lambda: pipeline.knowledge)
    try:
        later = pipeline.handle(Inbound("webhook", "m1", "later", "later", "人工客服", clock.now()))
        clock.set(at("2026-11-24 10:00"))
        today = pipeline.handle(Inbound("webhook", "m2", "cust", "cust", "人工客服", clock.now()))
        assert later.decision is not None and later.decision.ticket_id is not None
        assert today.decision is not None and today.decision.ticket_id is not None
        with pipeline.store.transaction() as tx:
            alice = agents.add(tx, "alice", "Alice", Role.AGENT, HASH, clock.now())
        before = desk.version()
        assert desk.version() == before  # nothing changed: no refresh
        desk.claim(alice, today.decision.ticket_id)
        assert desk.version() != before
    finally:
        pipeline.store.close()


def test_a_change_committed_after_a_newer_one_is_seen(postgres_url: str) -> None:
    """On PostgreSQL a transaction may take its change number before another's and commit after
    it: the check still moves when it commits."""
    store = Store(postgres_url)
    store.migrate()
    try:
        with store.engine.connect() as first:
            first.begin()
            tickets.announce(first)  # takes its number, not committed yet
            with store.transaction() as second:
                tickets.announce(second)
            with store.engine.connect() as conn:
                seen = tickets.version(conn)
            first.commit()
        with store.engine.connect() as conn:
            assert tickets.version(conn) != seen
    finally:
        store.close()
