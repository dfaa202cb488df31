"""What a channel keeps between messages, shared by every worker: WeCom's sync cursor per
customer-service account, a platform's access token until it expires, the signed pushes
already taken (WeChat's plain-mode nonces, within the replay window).

`locked` serialises a read-modify-write of one key across workers (PostgreSQL: a transaction
advisory lock on the key; SQLite: its one write lock, which the transaction already holds).
"""

from __future__ import annotations

import zlib
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from bot.store.locks import CHANNEL_STATE_LOCK
from bot.store.schema import channel_state


def get(conn: Connection, channel: str, key: str, now: datetime) -> str | None:
    """The value, or None when it was never set or has expired."""
    row = conn.execute(
        sa.select(channel_state.c.value, channel_state.c.expires_at).where(
            channel_state.c.channel == channel, channel_state.c.key == key
        )
    ).first()
    if row is None or (row.expires_at is not None and row.expires_at <= now):
        return None
    return str(row.value)


def put(
    conn: Connection,
    channel: str,
    key: str,
    value: str,
    now: datetime,
    expires_at: datetime | None = None,
) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(channel_state).values(
        channel=channel, key=key, value=value, expires_at=expires_at, updated_at=now
    )
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["channel", "key"],
            set_={
                "value": insert.excluded.value,
                "expires_at": insert.excluded.expires_at,
                "updated_at": insert.excluded.updated_at,
            },
        )
    )


def put_if_absent(conn: Connection, channel: str, key: str, value: str, now: datetime) -> str:
    """Store `value` unless the key has one, and return the value that is there: two workers
    racing to create the same secret both end up with the first one written."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(channel_state)
        .values(channel=channel, key=key, value=value, expires_at=None, updated_at=now)
        .on_conflict_do_nothing(index_elements=["channel", "key"])
    )
    stored = conn.execute(
        sa.select(channel_state.c.value).where(
            channel_state.c.channel == channel, channel_state.c.key == key
        )
    ).scalar_one()
    return str(stored)


def first_use(conn: Connection, channel: str, key: str, now: datetime, until: datetime) -> bool:
    """Mark `key` used until `until`; False when it already was and has not expired (a signed
    push replayed). One statement, so two workers given the same key cannot both get True."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(channel_state).values(
        channel=channel, key=key, value="used", expires_at=until, updated_at=now
    )
    statement = insert.on_conflict_do_update(
        index_elements=["channel", "key"],
        set_={"expires_at": insert.excluded.expires_at, "updated_at": insert.excluded.updated_at},
        where=channel_state.c.expires_at <= now,
    ).returning(channel_state.c.key)
    return conn.execute(statement).first() is not None


def forget_expired(conn: Connection, channel: str, prefix: str, now: datetime) -> int:
    """Delete the channel's keys under `prefix` that have expired; how many went."""
    result = conn.execute(
        channel_state.delete().where(
            channel_state.c.channel == channel,
            channel_state.c.key.startswith(prefix, autoescape=True),
            channel_state.c.expires_at <= now,
        )
    )
    return int(result.rowcount or 0)


def forget(conn: Connection, channel: str, key: str) -> None:
    conn.execute(
        channel_state.delete().where(channel_state.c.channel == channel, channel_state.c.key == key)
    )


def lock(conn: Connection, channel: str, key: str) -> None:
    """Hold this key until the transaction ends: other workers wait here (PostgreSQL); on SQLite
    the transaction (`BEGIN IMMEDIATE`) already excludes every other writer."""
    if conn.dialect.name == "postgresql":
        digest = zlib.crc32(f"{channel}\x1f{key}".encode()) - 2**31
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(:space, :key)"),
            {"space": CHANNEL_STATE_LOCK, "key": digest},
        )
