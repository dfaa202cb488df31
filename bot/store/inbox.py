"""Inbound deliveries: each (channel, external id) is stored once, whatever the channel retries."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from bot.store.schema import messages


def accept(
    conn: Connection,
    channel: str,
    external_id: str,
    user_id: str,
    kind: str,
    masked_text: str,
    at: datetime,
    stale_after: timedelta = timedelta(seconds=60),
) -> int | None:
    """Record an inbound delivery; None when it is a duplicate that must not be answered again.

    `INSERT … ON CONFLICT DO NOTHING`: only the unique delivery key counts as a duplicate, every
    other error surfaces. A duplicate whose first delivery was never handled (the worker died
    mid-way) and is older than `stale_after` is handed back for another try, so a crash does not
    lose the message; the per-customer lock and the one-decision-per-message key keep two
    workers from both answering it.
    """
    row = dict(
        channel=channel,
        external_id=external_id,
        user_id=user_id,
        direction="in",
        kind=kind,
        text=masked_text,
        at=at,
    )
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    inserted = conn.execute(
        dialect.insert(messages)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["channel", "external_id"])
        .returning(messages.c.id)
    ).scalar()
    if inserted is not None:
        return int(inserted)
    taken = conn.execute(
        messages.update()
        .where(
            messages.c.channel == channel,
            messages.c.external_id == external_id,
            messages.c.handled.is_(False),
            messages.c.at < at - stale_after,
        )
        .values(at=at)
        .returning(messages.c.id)
    ).scalar()
    return int(taken) if taken is not None else None


def transcript(conn: Connection, conversation_id: int) -> list[tuple[str, str]]:
    """(direction, masked text) pairs, oldest first."""
    rows = conn.execute(
        sa.select(messages.c.direction, messages.c.text)
        .where(messages.c.conversation_id == conversation_id)
        .order_by(messages.c.id)
    ).all()
    return [(r.direction, r.text) for r in rows]
