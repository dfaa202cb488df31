"""Named cluster-wide leases: one holder at a time, lost when not renewed in time. The
scheduler's leader holds one on SQLite (PostgreSQL uses an advisory lock and records the holder
here too, so anyone can see who leads)."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from bot.store.schema import leases


def hold(
    conn: Connection, name: str, holder: str, now: datetime, ttl: timedelta, force: bool = False
) -> bool:
    """Take or renew the lease; False when someone else holds it and it has not run out.
    `force`: take it whoever holds it (the caller holds a stronger lock)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(leases).values(name=name, holder=holder, expires_at=now + ttl)
    statement = insert.on_conflict_do_update(
        index_elements=["name"],
        set_={"holder": insert.excluded.holder, "expires_at": insert.excluded.expires_at},
        where=None if force else sa.or_(leases.c.expires_at <= now, leases.c.holder == holder),
    ).returning(leases.c.holder)
    return conn.execute(statement).scalar() == holder


def let_go(conn: Connection, name: str, holder: str) -> None:
    conn.execute(leases.delete().where(leases.c.name == name, leases.c.holder == holder))
