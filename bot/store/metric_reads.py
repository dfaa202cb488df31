"""What the service metrics are computed from, read from the stored events (never from counters
that drift): customers' messages with the bot's decision and when its first reply reached the
channel, conversations with whether a human was involved, and tickets with their whole history.

Plain, frozen rows out; `bot.metrics` does the arithmetic, so that it can be tested on rows
written by hand and the SQL stays small. A few queries per period, whatever its size.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.store.schema import agents, conversations, decisions, messages, outbox, ticket_events
from bot.store.schema import tickets as tickets_table


@dataclass(frozen=True)
class CustomerMessage:
    """One message from a customer, with what the bot decided and when the first of the bot's
    replies to it was sent (None: the bot did not answer it, e.g. a human owned the chat)."""

    id: int
    conversation_id: int | None
    channel: str
    user_id: str
    at: datetime
    kind: str
    text: str  # masked, as stored
    action: str | None
    faq_id: str | None
    reasons: tuple[str, ...]
    bot_reply_at: datetime | None


@dataclass(frozen=True)
class ConversationFact:
    """A conversation opened in the period: how many text messages the customer wrote in it and
    whether any of its messages was handed to a human (a ticket created, reopened or joined)."""

    id: int
    channel: str
    user_id: str
    opened_at: datetime
    customer_texts: int
    handed_off: bool


@dataclass(frozen=True)
class TicketEventFact:
    kind: str
    at: datetime
    agent_id: int | None
    data: dict[str, Any]


@dataclass(frozen=True)
class TicketFact:
    """A ticket as it stands now, with its customer and its history in order."""

    id: int
    channel: str
    user_id: str
    queue: str
    priority: str
    category: str
    status: str
    created_at: datetime
    available_at: datetime
    assigned_at: datetime | None
    first_response_at: datetime | None
    first_response_due: datetime
    transfer_due: datetime
    resolved_at: datetime | None
    reopened: int
    breached_at: datetime | None
    breach: str | None
    csat: int | None
    nps: int | None
    agent_id: int | None
    events: tuple[TicketEventFact, ...] = field(default_factory=tuple)


def customer_messages(conn: Connection, start: datetime, end: datetime) -> list[CustomerMessage]:
    """Customers' messages with `start <= at < end`, oldest first. The bot's reply time is
    when the first outbox row answering the message (`reply_to`) was sent, or written when it
    is still unsent: what the customer waited, delivery included. Agents' lines never count
    (they answer no message: `reply_to` is empty)."""
    first_reply = (
        sa.select(
            outbox.c.reply_to.label("message_id"),
            sa.func.min(sa.func.coalesce(outbox.c.sent_at, outbox.c.created_at)).label("at"),
        )
        .where(outbox.c.reply_to.is_not(None))
        .group_by(outbox.c.reply_to)
        .subquery()
    )
    query = (
        sa.select(
            messages.c.id,
            messages.c.conversation_id,
            messages.c.channel,
            messages.c.user_id,
            messages.c.at,
            messages.c.kind,
            messages.c.text,
            decisions.c.action,
            decisions.c.faq_id,
            decisions.c.record,
            first_reply.c.at.label("reply_at"),
        )
        .select_from(
            messages.outerjoin(decisions, decisions.c.message_id == messages.c.id).outerjoin(
                first_reply, first_reply.c.message_id == messages.c.id
            )
        )
        .where(messages.c.direction == "in", messages.c.at >= start, messages.c.at < end)
        .order_by(messages.c.at, messages.c.id)
    )
    out = []
    for row in conn.execute(query):
        record = row.record or {}
        out.append(
            CustomerMessage(
                id=row.id,
                conversation_id=row.conversation_id,
                channel=row.channel,
                user_id=row.user_id,
                at=row.at,
                kind=row.kind,
                text=row.text,
                action=row.action,
                faq_id=row.faq_id,
                reasons=tuple(str(r) for r in record.get("reasons", [])),
                bot_reply_at=row.reply_at,
            )
        )
    return out


def conversations_opened(
    conn: Connection, start: datetime, end: datetime
) -> list[ConversationFact]:
    """Conversations opened with `start <= opened_at < end`, oldest first."""
    texts = (
        sa.select(sa.func.count())
        .where(
            messages.c.conversation_id == conversations.c.id,
            messages.c.direction == "in",
            messages.c.kind == "text",
        )
        .scalar_subquery()
    )
    handed = sa.exists().where(
        decisions.c.conversation_id == conversations.c.id, decisions.c.action == "handoff"
    )
    query = (
        sa.select(
            conversations.c.id,
            conversations.c.channel,
            conversations.c.user_id,
            conversations.c.opened_at,
            texts.label("texts"),
            handed.label("handed"),
        )
        .where(conversations.c.opened_at >= start, conversations.c.opened_at < end)
        .order_by(conversations.c.opened_at, conversations.c.id)
    )
    return [
        ConversationFact(
            row.id, row.channel, row.user_id, row.opened_at, int(row.texts), bool(row.handed)
        )
        for row in conn.execute(query)
    ]


def tickets_around(conn: Connection, start: datetime, end: datetime) -> list[TicketFact]:
    """Every ticket with something in its history between `start` and `end` (callers widen
    the span by the reopen window to see what happened after a resolution), with all of its
    history, oldest ticket first. Two queries, however many tickets: the histories are read by
    the same subquery that picks the tickets, after them (a ticket never lacks its events)."""
    touched = (
        sa.select(ticket_events.c.ticket_id)
        .where(ticket_events.c.at >= start, ticket_events.c.at < end)
        .distinct()
    )
    found = (
        conn.execute(
            sa.select(tickets_table, conversations.c.channel, conversations.c.user_id)
            .join(conversations, conversations.c.id == tickets_table.c.conversation_id)
            .where(tickets_table.c.id.in_(touched))
            .order_by(tickets_table.c.created_at, tickets_table.c.id)
        )
        .mappings()
        .all()
    )
    history: dict[int, list[TicketEventFact]] = defaultdict(list)
    for event in conn.execute(
        sa.select(ticket_events)
        .where(ticket_events.c.ticket_id.in_(touched))
        .order_by(ticket_events.c.at, ticket_events.c.id)
    ):
        history[event.ticket_id].append(
            TicketEventFact(event.kind, event.at, event.agent_id, dict(event.data or {}))
        )
    return [
        TicketFact(
            **{name: row[name] for name in _TICKET_COLUMNS}, events=tuple(history[row["id"]])
        )
        for row in found
    ]


#: the TicketFact fields read straight from the row (all but its history)
_TICKET_COLUMNS = tuple(f.name for f in fields(TicketFact) if f.name != "events")


def customers_tickets_created(
    conn: Connection, customers: set[tuple[str, str]], start: datetime, end: datetime
) -> dict[tuple[str, str], list[datetime]]:
    """When each of these customers (channel, user id) opened tickets between `start` and
    `end`: a new ticket soon after a resolution means the first contact did not resolve it."""
    if not customers:
        return {}
    found: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for row in conn.execute(
        sa.select(conversations.c.channel, conversations.c.user_id, tickets_table.c.created_at)
        .join(conversations, conversations.c.id == tickets_table.c.conversation_id)
        .where(tickets_table.c.created_at >= start, tickets_table.c.created_at < end)
    ):
        key = (row.channel, row.user_id)
        if key in customers:
            found[key].append(row.created_at)
    return dict(found)


def agent_names(conn: Connection) -> dict[int, str]:
    """Every agent's display name by id (disabled ones too: their past work still counts)."""
    return {int(r.id): str(r.name) for r in conn.execute(sa.select(agents.c.id, agents.c.name))}
