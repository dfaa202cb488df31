"""One scheduler per cluster: the worker that holds the leadership runs the cluster's timed jobs
(releasing tickets at opening time, and later SLA checks and reports); the others stand by and
take over when the leader dies.

PostgreSQL: a session-level advisory lock on a connection the leader keeps open. When the leader
process dies its connection closes and the lock is free at once. SQLite (one machine): a lease
row renewed every few seconds; a dead leader's lease runs out after `ttl`. Either way the
holder is also written to the `leases` table, so anyone can see who leads.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.domain.clock import Clock
from bot.store import leases
from bot.store.database import Store
from bot.store.locks import SCHEDULER_LOCK

log = logging.getLogger("bot.jobs")

NAME = "scheduler"


class Leadership:
    def __init__(self, store: Store, worker: str, clock: Clock, ttl: float = 15.0) -> None:
        self.store = store
        self.worker = worker
        self.clock = clock
        self.ttl = timedelta(seconds=ttl)
        self._held: Connection | None = None  # PostgreSQL: the connection holding the lock
        self._leading = False
        self._lock = threading.Lock()

    @property
    def is_leader(self) -> bool:
        return self._leading

    def renew(self) -> bool:
        """Take, keep or lose the leadership; call every few seconds (well within `ttl`)."""
        with self._lock:
            try:
                leading = (
                    self._renew_postgres()
                    if self.store.dialect == "postgresql"
                    else self._renew_lease()
                )
            except sa.exc.SQLAlchemyError as exc:
                log.warning("scheduler leadership check failed: %s", exc)
                self._drop_connection()
                leading = False
            if leading != self._leading:
                log.info(
                    "%s %s the scheduler",
                    self.worker,
                    "now leads" if leading else "no longer leads",
                )
            self._leading = leading
            return leading

    def resign(self) -> None:
        with self._lock:
            if self._leading:
                try:
                    with self.store.transaction() as tx:
                        leases.let_go(tx, NAME, self.worker)
                except sa.exc.SQLAlchemyError:
                    pass
            self._drop_connection()
            self._leading = False

    def _renew_lease(self) -> bool:
        with self.store.transaction() as tx:
            return leases.hold(tx, NAME, self.worker, self.clock.now(), self.ttl)

    def _renew_postgres(self) -> bool:
        if self._held is None:
            conn = self.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            got = conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": SCHEDULER_LOCK}
            ).scalar()
            if not got:
                conn.close()
                return False
            self._held = conn
        else:
            self._held.execute(sa.text("SELECT 1"))  # raises if the connection (and lock) is gone
        with self.store.transaction() as tx:  # for everyone to see; the lock is what counts
            tx.execute(sa.text("SELECT 1"))
            leases.hold(tx, NAME, self.worker, self.clock.now(), self.ttl, force=True)
        return True

    def _drop_connection(self) -> None:
        if self._held is not None:
            try:
                self._held.invalidate()  # closes the socket: PostgreSQL frees the lock
                self._held.close()
            except sa.exc.SQLAlchemyError:
                pass
            self._held = None
