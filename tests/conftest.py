"""Shared fixtures: the real encoder (loaded once), a copy of the small shop fixture, real stores."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bot.assembly import build_pipeline
from bot.content.config import Config, load_config
from bot.content.problems import Problem
from bot.domain.clock import FixedClock
from bot.domain.messages import Inbound, Outbound
from bot.pipeline.runner import Context, Pipeline
from bot.store.database import Store
from bot.understanding.encoders import MemoEncoder, UseEncoder

FIXTURE = Path(__file__).parent / "fixtures" / "shop"
SHANGHAI = ZoneInfo("Asia/Shanghai")
POSTGRES_URL = os.environ.get(
    "BOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def at(text: str) -> datetime:
    """A Shanghai wall time, e.g. at("2026-11-24 10:00") (a Tuesday)."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


@pytest.fixture(scope="session")
def encoder() -> MemoEncoder:
    return MemoEncoder(UseEncoder())


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A private copy of the fixture shop, safe to edit."""
    target = tmp_path / "shop"
    shutil.copytree(FIXTURE, target, ignore=shutil.ignore_patterns("var"))
    return target


@pytest.fixture
def config(shop: Path) -> Config:
    return load_config(shop / "config.toml")


@dataclass
class Outbox:
    """A channel that records what it is asked to send; `fail` makes the next sends raise."""

    sent: list[Outbound] = field(default_factory=list)
    fail: bool = False

    def send(self, message: Outbound) -> None:
        if self.fail:
            raise ConnectionError("channel unreachable")
        self.sent.append(message)


@dataclass
class Harness:
    pipeline: Pipeline
    clock: FixedClock
    outbox: Outbox
    _ids: Iterator[int] = field(default_factory=lambda: count(1))

    def say(
        self,
        text: str,
        *,
        user: str = "u1",
        when: str | None = None,
        external_id: str | None = None,
        channel: str = "wechat",
    ) -> Context:
        if when:
            self.clock.set(at(when))
        self.outbox.sent.clear()
        return self.pipeline.handle(
            Inbound(
                channel=channel,
                external_id=external_id or f"m{next(self._ids)}",
                user_id=user,
                chat_id=user,
                text=text,
                at=self.clock.now(),
            )
        )

    @property
    def replies(self) -> list[str]:
        return [m.text for m in self.outbox.sent]


@pytest.fixture
def harness(config: Config, encoder: MemoEncoder, tmp_path: Path) -> Harness:
    return make_harness(config, encoder, tmp_path)


def make_harness(config: Config, encoder: MemoEncoder, tmp_path: Path) -> Harness:
    clock = FixedClock(at("2026-11-24 10:00"))
    outbox = Outbox()
    pipeline = build_pipeline(
        config, clock, outbox, store_url=f"sqlite:///{tmp_path}/bot.sqlite3", encoder=encoder
    )
    return Harness(pipeline, clock, outbox)


def _postgres_available() -> str | None:
    try:
        engine = sa.create_engine(POSTGRES_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to reach the server
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


def require_postgres() -> None:
    """Skip the test without PostgreSQL, except in CI (CI=true), where it must be there."""
    problem = _postgres_available()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required in CI: {problem}")
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL} ({problem}); set BOT_TEST_POSTGRES_URL")


def empty_postgres(engine: sa.Engine) -> None:
    """Drop everything the previous test left, `alembic_version` included."""
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store on real SQLite and on real PostgreSQL.

    PostgreSQL must be there in CI (CI=true); on a machine without it these tests skip and say why.
    """
    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path}/store.sqlite3")
    else:
        require_postgres()
        store = Store(POSTGRES_URL)
        empty_postgres(store.engine)
    store.migrate()
    yield store
    store.engine.dispose()


@dataclass
class AsyncOutbox:
    """An async channel sender for the dispatcher: records sends; `failures` are raised, one per
    send, before it starts succeeding."""

    sent: list[Outbound] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)

    async def send(self, message: Outbound) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)


def dispatch_once(pipeline: Pipeline, sender: object, channels: tuple[str, ...] = ()) -> int:
    """One dispatcher round on this pipeline's store, for these channels (default: all seen)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from bot.jobs.dispatch import Dispatcher

    names = channels or ("wechat", "telegram", "terminal", "webhook", "eval")

    async def once() -> int:
        with ThreadPoolExecutor(2) as pool:
            dispatcher = Dispatcher(
                pipeline.store,
                {name: sender for name in names},  # type: ignore[misc]
                pipeline.clock,
                "test-worker",
                pool,
                pipeline.config.handoff.reply_windows,
                pipeline.config.handoff.reply_quotas,
            )
            return await dispatcher.run_once()

    return asyncio.run(once())


def checked(path: Path) -> list[Problem]:
    """`bot check` without the calibration warnings the small fixture shop always gets (5
    entries of 4 phrasings are too few to calibrate on; tests/test_problems.py checks that)."""
    from bot.assembly import check

    return [p for p in check(path) if "calibration" not in p.message]
