"""The database: one engine, its transactions and the locks that make several workers safe.

SQLAlchemy Core over SQLite (the embedded default) or PostgreSQL (to scale out). Only masked text
is stored (see bot.domain.privacy). The queries live in one module per aggregate
(deliveries, conversations, decisions, tickets, outbox, leases); `Store` owns the engine, closes
it (`close()`, or use it as a context manager), and has a few read-only views that tests use to
look at what was stored (the console reads through `bot.humans.desk`, the jobs through the query
modules).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bot.domain.conversation import Conversation, ConversationKey
from bot.domain.delivery import UnsentOutbound
from bot.domain.ticket import Ticket
from bot.store import conversations, decisions, deliveries, outbox, tickets
from bot.store.locks import CONVERSATION_LOCK, CUSTOMER_LOCK, conversation_key, customer_key
from bot.store.migrate import is_current, upgrade

log = logging.getLogger("bot.store")

#: SQLite's words for a write the disk refused, and what they mean for whoever reads the log
_WRITE_FAILURES = {
    "database or disk is full": "the disk is full",
    "disk I/O error": "the disk refused the write (full, over a file-size limit, or failing)",
    "readonly database": "the file or its folder is read-only",
    "unable to open database file": "it cannot be opened (the folder is gone or read-only)",
}


class Store:
    def __init__(self, url: str, pool_size: int = 8) -> None:
        if url.startswith("sqlite:///") and not url.endswith(":memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {}
        if url.startswith("postgresql"):
            options = {"pool_size": pool_size, "max_overflow": 4, "pool_pre_ping": True}
        self.engine: Engine = sa.create_engine(url, **options)
        self.dialect = self.engine.dialect.name
        #: why the SQLite file takes no writes (a full or read-only disk), for /readyz and the
        #: 503s; None while writes work. Set by a failed write, cleared by the next that works.
        self.trouble: str | None = None
        self._lock_trouble = threading.Lock()
        #: SQLite has one writer: this process's threads queue here instead of in SQLite's busy
        #: handler, which sleeps in steps of up to 100 ms
        self._sqlite_writer = threading.Lock()
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_connect)
            sa.event.listen(self.engine, "checkout", _sqlite_checkout)
            sa.event.listen(self.engine, "begin", _sqlite_begin)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections: the end of a command, a worker or a test. The store can
        still be used afterwards (the engine opens new connections on demand)."""
        self.engine.dispose()

    def migrate(self) -> str:
        """Bring the schema to this code's Alembic head (see bot.store.migrate); returns it."""
        return upgrade(self.engine)

    def schema_current(self) -> bool:
        """The database is at this code's head revision (for /readyz)."""
        return is_current(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction; on SQLite it takes the write lock at once (`BEGIN IMMEDIATE`), so
        a read-modify-write never fails half-way on a lock upgrade."""
        if self.dialect != "sqlite":
            with self.engine.begin() as conn:
                yield conn
            return
        try:
            with self._sqlite_writer, self.engine.connect() as conn:
                raw = conn.connection.dbapi_connection
                before = getattr(raw, "total_changes", 0)
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    yield conn
                wrote = getattr(raw, "total_changes", 0) > before
        except sa.exc.OperationalError as exc:
            self._write_failed(exc)
            raise
        if wrote and self.trouble is not None:
            self._writable_again()

    def _write_failed(self, exc: sa.exc.OperationalError) -> None:
        """A write the disk refused: said once in the log, with the file, until writes work."""
        said = str(exc.orig)
        meaning = next((m for words, m in _WRITE_FAILURES.items() if words in said), None)
        if meaning is None:
            return  # not the disk (a lock timeout): nothing to report
        trouble = f"cannot write the database {self._file()}: {meaning} ({said})"
        with self._lock_trouble:
            if self.trouble == trouble:
                return
            self.trouble = trouble
        log.error("%s; messages get 503 until it can be written again", trouble)

    def _writable_again(self) -> None:
        with self._lock_trouble:
            if self.trouble is None:
                return
            self.trouble = None
        log.warning("the database %s takes writes again", self._file())

    def _file(self) -> str:
        return str(Path(self.engine.url.database or "").resolve())

    @contextmanager
    def customer_lock(self, channel: str, user_id: str) -> Iterator[Connection]:
        """A transaction holding the lock on the whole customer, exclusive: none of their
        conversations is decided meanwhile, in any chat (erasing the customer; PostgreSQL: the
        customer's advisory lock that deciding holds shared; SQLite: its one write lock)."""
        with self.transaction() as conn:
            if self.dialect == "postgresql":
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:space, :key)"),
                    {"space": CUSTOMER_LOCK, "key": customer_key(channel, user_id)},
                )
            yield conn

    @contextmanager
    def conversation_lock(self, key: ConversationKey) -> Iterator[Connection]:
        """A transaction holding the lock on one conversation key (channel, user, chat): its
        messages are handled one at a time across all workers, other conversations (the same
        customer's other chats too) in parallel."""
        with self.conversations_locked([key]) as conn:
            yield conn

    @contextmanager
    def conversations_locked(self, keys: Sequence[ConversationKey]) -> Iterator[Connection]:
        """A transaction holding the locks on these conversation keys. PostgreSQL: first each
        customer's lock shared (so an erasure waits, and waits for them), then each
        conversation's lock, every group in ascending key order, so that two workers locking
        overlapping groups never deadlock. SQLite: its one write lock."""
        with self.transaction() as conn:
            if self.dialect == "postgresql":
                customers = sorted({customer_key(channel, user) for channel, user, _ in keys})
                talks = sorted({conversation_key(*key) for key in keys})
                for lock, space, group in (
                    ("pg_advisory_xact_lock_shared", CUSTOMER_LOCK, customers),
                    ("pg_advisory_xact_lock", CONVERSATION_LOCK, talks),
                ):
                    # one round trip per group: its keys are locked in ascending order
                    conn.execute(
                        sa.text(
                            f"SELECT count({lock}(:space, k)) FROM (SELECT k FROM "
                            "unnest(CAST(:keys AS integer[])) AS k ORDER BY k) AS o"
                        ),
                        {"space": space, "keys": group},
                    )
            yield conn

    def reachable(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    # --- read-only views -------------------------------------------------------------------

    def conversation(self, conversation_id: int) -> Conversation:
        with self.engine.connect() as conn:
            return conversations.get(conn, conversation_id)

    def transcript(self, conversation_id: int) -> list[tuple[str, str]]:
        with self.engine.connect() as conn:
            return deliveries.transcript(conn, conversation_id)

    def decisions_for(self, conversation_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return decisions.for_conversation(conn, conversation_id)

    def tickets(self, queue: str | None = None, status: str = "queued") -> list[Ticket]:
        with self.engine.connect() as conn:
            return tickets.listed(conn, queue, status)

    def unsent_outbound(self) -> list[UnsentOutbound]:
        """Replies written but not confirmed sent, oldest first."""
        with self.engine.connect() as conn:
            return outbox.unsent(conn)


def _sqlite_connect(dbapi_connection: Any, _: Any) -> None:
    # the driver's own transaction handling off: `_sqlite_begin` says BEGIN itself
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL's recommended setting: no fsync per commit
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    # a connection used with AUTOCOMMIT (migrations) comes back with the driver's default
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn: Connection) -> None:
    options = conn.get_execution_options()
    if options.get("isolation_level") == "AUTOCOMMIT":
        return  # the caller says BEGIN itself (migrations)
    conn.exec_driver_sql(f"BEGIN {options.get('sqlite_begin', 'DEFERRED')}")
