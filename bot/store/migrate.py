"""Bringing a database to the schema this code expects, with the Alembic revisions in
bot/store/migrations, from code: at start-up (Store.migrate) or by `bot db upgrade`.

Several workers may start at once: the first to take the lock migrates, the others wait for it
and then find nothing to do. A database made before Alembic (its `schema_version` table says 1)
is adopted at the baseline revision and upgraded like any other.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from bot.store.locks import MIGRATION_LOCK

#: the revision that is the old `schema_version` 1
BASELINE = "0001"
LEGACY_VERSION = 1
_TABLES = {"conversations", "messages", "decisions", "tickets", "outbox"}
_LOCATION = Path(__file__).with_name("migrations")
#: Alembic's `op` and `context` are process-wide proxies: one migration at a time per process
_IN_PROCESS = threading.Lock()
_SQLITE_WAIT_MS = 600_000


class MigrationError(RuntimeError):
    """The database is not one this code can bring up to date by itself."""


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration without an alembic.ini; env.py migrates `connection`."""
    config = Config()
    config.set_main_option("script_location", str(_LOCATION).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise MigrationError(f"no Alembic revisions in {_LOCATION}: reinstall the bot")
    return head


@cache
def known_revisions() -> frozenset[str]:
    """Every revision this release can migrate from (a backup of a newer release is not)."""
    return frozenset(
        r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    )


def current_revision(engine: Engine) -> str | None:
    """The database's revision; None for an empty database or one made before Alembic."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def is_current(engine: Engine) -> bool:
    """Whether the database has the schema this code expects (for readiness checks)."""
    return current_revision(engine) == head_revision()


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Bring the database to `revision` (normally the head) and return the revision it is at.

    An empty database runs every revision from the baseline, so a new database is built exactly
    as an upgraded one. All of it is one transaction: a failure leaves the database as it was.
    """
    try:
        with _migrating(engine) as conn:
            config = alembic_config(conn)
            _adopt_legacy(conn, config)
            command.upgrade(config, revision)
            return _revision_of(conn)
    except IntegrityError as exc:
        raise MigrationError(
            f"rows do not fit the new schema ({str(exc.orig).splitlines()[0]}), so nothing was "
            "migrated: fix or delete those rows, then start again"
        ) from exc


def downgrade(engine: Engine, revision: str) -> str:
    """Take the database back to `revision`, to run an older release; the bot never does this
    by itself."""
    with _migrating(engine) as conn:
        command.downgrade(alembic_config(conn), revision)
        return _revision_of(conn)


def _revision_of(conn: Connection) -> str:
    current = MigrationContext.configure(conn).get_current_revision()
    if current is None:
        raise MigrationError("the database has no Alembic revision after migrating")
    return current


def _adopt_legacy(conn: Connection, config: Config) -> None:
    """Stamp a pre-Alembic database at the baseline and drop its `schema_version` table."""
    tables = set(sa.inspect(conn).get_table_names())
    if "alembic_version" in tables:
        return
    if "schema_version" in tables:
        versions = conn.execute(sa.text("SELECT version FROM schema_version")).scalars().all()
        if versions != [LEGACY_VERSION]:
            raise MigrationError(
                f"schema_version says {versions}, but this release can only upgrade a database "
                f"at version {LEGACY_VERSION}: restore a backup made by the released bot"
            )
        command.stamp(config, BASELINE)
        conn.execute(sa.text("DROP TABLE schema_version"))
    elif tables & _TABLES:
        raise MigrationError(
            f"the database has the bot's tables ({', '.join(sorted(tables & _TABLES))}) but "
            "neither alembic_version nor schema_version, so its schema is unknown: point "
            "[storage] url at an empty database, or restore a backup made by the bot"
        )


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """One transaction, which one process (the database's lock) and in it one thread (ours) at
    a time may migrate in."""
    with _IN_PROCESS, _locked_transaction(engine) as conn:
        yield conn


@contextmanager
def _locked_transaction(engine: Engine) -> Iterator[Connection]:
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            yield conn
    elif engine.dialect.name == "sqlite":
        with _sqlite_immediate(engine) as conn:
            yield conn
    else:
        raise MigrationError(
            f"the store runs on SQLite or PostgreSQL, not {engine.dialect.name}: "
            "change [storage] url"
        )


@contextmanager
def _sqlite_immediate(engine: Engine) -> Iterator[Connection]:
    """SQLite: BEGIN IMMEDIATE takes the write lock before anything is read, so a second
    process waits instead of migrating too (up to 10 minutes: copying big tables takes time).

    Batch mode copies and drops tables that others reference, which foreign keys would refuse;
    they are off for the migration (SQLite ignores the pragma inside a transaction) and checked
    before commit.
    """
    with engine.connect() as conn:
        # the driver must not open transactions of its own: this one is ours
        conn.execution_options(isolation_level="AUTOCOMMIT")
        enforced = conn.exec_driver_sql("PRAGMA foreign_keys").scalar()
        patience = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.exec_driver_sql(f"PRAGMA busy_timeout={_SQLITE_WAIT_MS}")
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise MigrationError(
                        f"{len(broken)} rows point at rows that do not exist (first: "
                        f"{tuple(broken[0])}), so nothing was migrated: fix or delete the rows "
                        "`PRAGMA foreign_key_check` lists, then start again"
                    )
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
        finally:
            conn.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if enforced else 'OFF'}")
            conn.exec_driver_sql(f"PRAGMA busy_timeout={int(patience or 0)}")
