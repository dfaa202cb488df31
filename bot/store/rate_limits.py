"""Counting requests per key and minute for the HTTP limits (`bot/web/rates.py`): one UPSERT
that adds one and returns the new count, so two workers counting the same key at once see 1
and 2, never 1 and 1 (PostgreSQL: the row lock of ON CONFLICT DO UPDATE; SQLite: its one
writer)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

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


def count_many(conn: Connection, requests: Sequence[tuple[str, int]]) -> list[int]:
    """`count` for several (key, window start) requests in one statement: each request's
    count, in order, as if they had been counted one after another (a key asked twice in the
    batch gets n and n + 1)."""
    if not requests:
        return []
    asked = Counter(requests)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(rate_limits).values(
        [{"key": key, "window_start": window, "count": n} for (key, window), n in asked.items()]
    )
    statement = insert.on_conflict_do_update(
        index_elements=["key", "window_start"],
        set_={"count": rate_limits.c.count + insert.excluded.count},
    ).returning(rate_limits.c.key, rate_limits.c.window_start, rate_limits.c.count)
    # the count before this batch, per key: each request takes the next one
    before = {
        (key, int(window)): int(total) - asked[(key, int(window))]
        for key, window, total in conn.execute(statement)
    }
    out = []
    for request in requests:
        before[request] += 1
        out.append(before[request])
    return out


def prune(conn: Connection, before: int) -> int:
    """Forget the windows that started before `before`; how many rows went."""
    result = conn.execute(rate_limits.delete().where(rate_limits.c.window_start < before))
    return int(result.rowcount or 0)
