"""Counting requests per key and minute for the HTTP limits (`bot/web/rates.py`): one UPSERT
that adds one and returns the new count, so two workers counting the same key at once see 1
and 2, never 1 and 1 (PostgreSQL: the row lock of ON CONFLICT DO UPDATE; SQLite: its one
writer)."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from bot.store.schema import rate_limits


def count(conn: Connection, key: str, window_start: int) -> int:
    """Add one request to `key` in the window starting at `window_start` (epoch seconds);
    the window's count with it."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(rate_limits).values(key=key, window_start=window_start, count=1)
    statement = insert.on_conflict_do_update(
        index_elements=["key", "window_start"],
        set_={"count": rate_limits.c.count + 1},
    ).returning(rate_limits.c.count)
    return int(conn.execute(statement).scalar_one())


def prune(conn: Connection, before: int) -> int:
    """Forget the windows that started before `before`; how many rows went."""
    result = conn.execute(rate_limits.delete().where(rate_limits.c.window_start < before))
    return int(result.rowcount or 0)
