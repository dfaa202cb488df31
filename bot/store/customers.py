"""One customer's data, as PIPL and GDPR give them the right to it: everything stored about
them (`bot customers export`), and erasing it with a record that it was done
(`bot customers forget`).

A customer is a channel and the id the channel knows them by. Their data: their conversations,
every message in and out (the text as stored, masked), the bot's decisions with their reasons,
their tickets with each ticket's history and survey answers, and the outbox's replies to them.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.domain.messages import platform_id
from bot.store.schema import (
    conversations,
    decisions,
    erasures,
    messages,
    outbox,
    ticket_events,
    tickets,
)

#: the outbox's bookkeeping of sending, not the customer's data
_SENDING = {"lease_until", "leased_by", "attempts", "next_attempt_at", "last_error"}


def customer_hash(channel: str, user_id: str) -> str:
    """What the erasure record keeps instead of the customer's id: enough to answer "was this
    customer erased?" for an id one already has, nothing to find them by otherwise."""
    return hashlib.sha256(f"{channel}\x00{user_id}".encode()).hexdigest()


def export(conn: Connection, channel: str, user_id: str) -> dict[str, Any]:
    """Everything stored about the customer, as JSON-ready values."""
    conversation_ids = _conversation_ids(conn, channel, user_id)
    ticket_ids = _ticket_ids(conn, conversation_ids)
    events_by_ticket: dict[int, list[dict[str, Any]]] = {}
    for row in conn.execute(
        sa.select(ticket_events)
        .where(ticket_events.c.ticket_id.in_(ticket_ids))
        .order_by(ticket_events.c.id)
    ).mappings():
        events_by_ticket.setdefault(row["ticket_id"], []).append(_plain(row))
    result: list[dict[str, Any]] = []
    for conversation in conn.execute(
        sa.select(conversations)
        .where(conversations.c.id.in_(conversation_ids))
        .order_by(conversations.c.id)
    ).mappings():
        cid = conversation["id"]
        result.append(
            {
                **_plain(conversation),
                "messages": _messages(
                    conn, sa.select(messages).where(messages.c.conversation_id == cid)
                ),
                "decisions": _rows(
                    conn, sa.select(decisions).where(decisions.c.conversation_id == cid)
                ),
                "tickets": [
                    {**ticket, "events": events_by_ticket.get(ticket["id"], [])}
                    for ticket in _rows(
                        conn, sa.select(tickets).where(tickets.c.conversation_id == cid)
                    )
                ],
                "replies": [
                    {k: v for k, v in row.items() if k not in _SENDING}
                    for row in _rows(conn, sa.select(outbox).where(outbox.c.conversation_id == cid))
                ],
            }
        )
    loose = _messages(
        conn,
        sa.select(messages).where(
            messages.c.channel == channel,
            messages.c.user_id == user_id,
            messages.c.conversation_id.is_(None),
        ),
    )
    return {
        "customer": {"channel": channel, "id": user_id},
        "conversations": result,
        "messages_not_in_a_conversation": loose,
    }


def forget(
    conn: Connection, channel: str, user_id: str, at: datetime, note: str | None = None
) -> dict[str, int]:
    """Delete everything stored about the customer and record that it was done; returns how
    many rows of each kind went. Run it in a transaction holding the customer's lock, so a
    message of theirs arriving meanwhile is handled before or after, never half-erased."""
    conversation_ids = _conversation_ids(conn, channel, user_id)
    ticket_ids = _ticket_ids(conn, conversation_ids)
    message_ids = sa.select(messages.c.id).where(
        sa.or_(
            messages.c.conversation_id.in_(conversation_ids),
            sa.and_(messages.c.channel == channel, messages.c.user_id == user_id),
        )
    )
    steps = [
        ("ticket_events", ticket_events.delete().where(ticket_events.c.ticket_id.in_(ticket_ids))),
        ("tickets", tickets.delete().where(tickets.c.id.in_(ticket_ids))),
        (
            "replies",
            outbox.delete().where(
                sa.or_(
                    outbox.c.conversation_id.in_(conversation_ids),
                    outbox.c.reply_to.in_(message_ids),
                )
            ),
        ),
        (
            "decisions",
            decisions.delete().where(
                sa.or_(
                    decisions.c.conversation_id.in_(conversation_ids),
                    decisions.c.message_id.in_(message_ids),
                )
            ),
        ),
        (
            "messages",
            messages.delete().where(
                sa.or_(
                    messages.c.conversation_id.in_(conversation_ids),
                    sa.and_(messages.c.channel == channel, messages.c.user_id == user_id),
                )
            ),
        ),
        ("conversations", conversations.delete().where(conversations.c.id.in_(conversation_ids))),
    ]
    counts = {name: int(conn.execute(statement).rowcount) for name, statement in steps}
    conn.execute(
        erasures.insert().values(
            at=at,
            channel=channel,
            customer_hash=customer_hash(channel, user_id),
            counts=counts,
            note=note,
        )
    )
    return counts


def erased(conn: Connection, channel: str, user_id: str) -> list[dict[str, Any]]:
    """The erasure records of this customer, oldest first."""
    return _rows(
        conn,
        sa.select(erasures)
        .where(erasures.c.customer_hash == customer_hash(channel, user_id))
        .order_by(erasures.c.id),
    )


def channels(conn: Connection) -> list[str]:
    """The channels any stored customer is on, by name: to tell a mistyped channel."""
    return sorted(conn.execute(sa.select(conversations.c.channel).distinct()).scalars())


def _conversation_ids(conn: Connection, channel: str, user_id: str) -> list[int]:
    return list(
        conn.execute(
            sa.select(conversations.c.id).where(
                conversations.c.channel == channel, conversations.c.user_id == user_id
            )
        ).scalars()
    )


def _ticket_ids(conn: Connection, conversation_ids: list[int]) -> list[int]:
    return list(
        conn.execute(
            sa.select(tickets.c.id).where(tickets.c.conversation_id.in_(conversation_ids))
        ).scalars()
    )


def _messages(conn: Connection, query: sa.Select[Any]) -> list[dict[str, Any]]:
    """Messages as the customer knows them: `external_id` as the platform gave it ("m1"), not
    with the scope a channel keeps it unique within ("alice\\x1fm1", `platform_id`)."""
    rows = _rows(conn, query)
    for row in rows:
        if row["external_id"] is not None:
            row["external_id"] = platform_id(row["external_id"])
    return rows


def _rows(conn: Connection, query: sa.Select[Any]) -> list[dict[str, Any]]:
    return [_plain(row) for row in conn.execute(query).mappings()]


def _plain(row: Any) -> dict[str, Any]:
    return {key: _value(value) for key, value in dict(row).items()}


def _value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
