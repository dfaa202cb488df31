"""The tests' fixtures: the real encoder and the fixture shop's knowledge (each learnt once per
session), a copy of the shop to edit, a harness, real stores, this run's PostgreSQL database.
The helpers they use are in tests/support."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.assembly import load_knowledge
from bot.content.config import Config, load_config
from bot.pipeline.knowledge import Knowledge
from bot.store.database import Store
from bot.understanding.encoders import MemoEncoder, UseEncoder
from tests.support import postgres
from tests.support.harness import Harness, make_harness
from tests.support.shop import FIXTURE


def _copy_shop(target: Path) -> Path:
    shutil.copytree(FIXTURE, target, ignore=shutil.ignore_patterns("var"))
    return target


@pytest.fixture(scope="session")
def encoder() -> MemoEncoder:
    return MemoEncoder(UseEncoder())


@pytest.fixture(scope="session")
def content_cache(encoder: MemoEncoder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture shop's content cache (its embeddings and fitted intent model), made once.
    Modules marked `warm_content` get it in their `shop` copies."""
    shop = _copy_shop(tmp_path_factory.mktemp("cached") / "shop")
    config = load_config(shop / "config.toml")
    assert config.cache_dir is not None
    load_knowledge(config, MemoEncoder(encoder.inner, config.cache_dir))
    return config.cache_dir


@pytest.fixture(scope="session")
def shop_knowledge(encoder: MemoEncoder, tmp_path_factory: pytest.TempPathFactory) -> Knowledge:
    """The fixture shop's content, learnt once for every test that does not edit it."""
    shop = _copy_shop(tmp_path_factory.mktemp("learnt") / "shop")
    return load_knowledge(load_config(shop / "config.toml"), encoder)


@pytest.fixture
def shop(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A private copy of the fixture shop, safe to edit. In a module marked `warm_content` it
    comes with the content cache (`content_cache`), so the `bot run` and `bot chat` processes
    its tests start find the content encoded, as a restarted worker does."""
    copy = _copy_shop(tmp_path / "shop")
    if request.node.get_closest_marker("warm_content"):
        cache: Path = request.getfixturevalue("content_cache")
        shutil.copytree(cache, copy / "var" / "cache")
    return copy


@pytest.fixture
def config(shop: Path) -> Config:
    return load_config(shop / "config.toml")


@pytest.fixture
def harness(
    config: Config, encoder: MemoEncoder, shop_knowledge: Knowledge, tmp_path: Path
) -> Harness:
    """The pipeline on the fixture shop with a fresh store, clock and outbox. A test that edits
    the shop's files builds its own with make_harness, which learns them."""
    return make_harness(config, encoder, tmp_path, shop_knowledge)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """This run's own database (tests/support/postgres.py), created at first use and dropped at
    the end. Without a server the tests that need it skip and say why, except in CI."""
    postgres.require_server()
    url = postgres.create_database()
    yield url
    postgres.drop_database(url)


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """This run's database, emptied of what the previous test left."""
    engine = sa.create_engine(postgres_database)
    postgres.empty_postgres(engine)
    engine.dispose()
    return postgres_database


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store on real SQLite and on real PostgreSQL.

    PostgreSQL must be there in CI (CI=true); on a machine without it these tests skip and say why.
    """
    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path}/store.sqlite3")
    else:
        store = Store(request.getfixturevalue("postgres_url"))
    store.migrate()
    yield store
    store.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that asks for this run's database is a `postgres` test."""
    for item in items:
        if "postgres_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
