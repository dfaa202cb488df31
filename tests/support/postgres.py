"""This run's own PostgreSQL database, on the server BOT_TEST_POSTGRES_URL names.

Each run (each pytest-xdist worker) creates a database with a random name, `bot_test_<hex>`,
and drops it at the end, so two runs on one machine never empty each other's tables. The
database named in the URL is only connected to, to create and drop the run's own.
"""

from __future__ import annotations

import os
import secrets

import pytest
import sqlalchemy as sa

SERVER_URL = os.environ.get(
    "BOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def shown(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


def unreachable() -> str | None:
    """Why the server cannot be used, or None when it can."""
    try:
        engine = sa.create_engine(SERVER_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to reach the server
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


def require_server() -> None:
    """Skip without PostgreSQL, except in CI (CI=true), where it must be there."""
    problem = unreachable()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {shown(SERVER_URL)} is required in CI: {problem}")
        pytest.skip(f"no PostgreSQL at {shown(SERVER_URL)} ({problem}); set BOT_TEST_POSTGRES_URL")


def create_database() -> str:
    """A new, empty database for this run; its URL."""
    name = f"bot_test_{secrets.token_hex(6)}"
    engine = sa.create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return sa.make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop the run's database, closing what is still connected to it (a killed worker's)."""
    name = sa.make_url(url).database
    engine = sa.create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def empty_postgres(engine: sa.Engine) -> None:
    """Drop everything the previous test left, `alembic_version` included."""
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
