"""Inbound deliveries, accepted once: each (channel, external id) is stored once in `messages`,
whatever the channel retries; and the transcripts read back from there. (Not an "inbox" in
Chatwoot's sense, which is a channel.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from bot.store.schema import messages

#: a delivery not decided this long after it was stored is taken again when it is redelivered:
#: its worker probably died. Should it only have been slow, the customer's lock and the
#: one-decision-per-message key still let just one of them answer.
STALE_AFTER = timedelta(seconds=10)


@dataclass(frozen=True)
class Delivery:
    channel: str
    external_id: str
    user_id: str
    kind: str
    masked_text: str
    at: datetime
    details: dict[str, Any] | None = None


def accept_many(
    conn: Connection, deliveries: Sequence[Delivery], stale_after: timedelta = STALE_AFTER
) -> list[int | None]:
    """`accept` for several deliveries in one statement; the same delivery twice in the batch is
    accepted once (the first)."""
    if not deliveries:
        return []
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    rows = [
        dict(
            channel=d.channel,
            external_id=d.external_id,
            user_id=d.user_id,
            direction="in",
            kind=d.kind,
            text=d.masked_text,
            at=d.at,
            details=d.details,
        )
        for d in deliveries
    ]
    # the rows as parameters, not as the statement's VALUES: the statement is compiled once and
    # cached, not once per batch size (SQLAlchemy still sends one multi-row INSERT)
    statement = (
        dialect.insert(messages)
        .on_conflict_do_nothing(index_elements=["channel", "external_id"])
        .returning(messages.c.id, messages.c.channel, messages.c.external_id)
    )
    inserted = {
        (row.channel, row.external_id): int(row.id) for row in conn.execute(statement, rows)
    }
    ids: list[int | None] = []
    seen: set[tuple[str, str]] = set()
    for d in deliveries:
        key = (d.channel, d.external_id)
        if key in seen:  # the same delivery earlier in this batch
            ids.append(None)
        elif key in inserted:
            ids.append(inserted[key])
        else:
            ids.append(_retake_stale(conn, d.channel, d.external_id, d.at, stale_after))
        seen.add(key)
    return ids


def undecided(conn: Connection, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Of these (channel, external id) deliveries, the ones stored but not decided yet."""
    if not keys:
        return set()
    rows = conn.execute(
        sa.select(messages.c.channel, messages.c.external_id).where(
            sa.tuple_(messages.c.channel, messages.c.external_id).in_(list(keys)),
            messages.c.handled.is_(False),
        )
    )
    return {(row.channel, row.external_id) for row in rows}


def accept(
    conn: Connection,
    channel: str,
    external_id: str,
    user_id: str,
    kind: str,
    masked_text: str,
    at: datetime,
    stale_after: timedelta = STALE_AFTER,
) -> int | None:
    """Record an inbound delivery; None when it is a duplicate that must not be answered again.

    `INSERT … ON CONFLICT DO NOTHING`: only the unique delivery key counts as a duplicate, every
    other error surfaces. A duplicate whose first delivery was never handled (the worker died
    mid-way) and is older than `stale_after` is handed back for another try, so a crash does not
    lose the message.
    """
    delivery = Delivery(channel, external_id, user_id, kind, masked_text, at)
    return accept_many(conn, [delivery], stale_after)[0]


def _retake_stale(
    conn: Connection, channel: str, external_id: str, at: datetime, stale_after: timedelta
) -> int | None:
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
