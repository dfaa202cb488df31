"""What the agent console reads about tickets, in a few queries each: lists with the customer's
last words and the agent's name, queue counts, a customer's transcript with the bot's decisions,
a ticket's history, today's volumes. Plain rows out; `bot.humans` turns them into views."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.domain.ticket import Ticket, TicketState
from bot.store.schema import agents, conversations, decisions, messages, ticket_events, tickets
from bot.store.tickets import from_row, missed_deadline


@dataclass(frozen=True)
class ListedTicket:
    ticket: Ticket
    channel: str
    user_id: str
    agent_name: str | None
    last_text: str


def _last_text() -> Any:
    return (
        sa.select(messages.c.text)
        .where(
            messages.c.conversation_id == tickets.c.conversation_id,
            messages.c.direction == "in",
        )
        .order_by(messages.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def listed(
    conn: Connection,
    *,
    queues: Collection[str] | None = None,
    statuses: Collection[str] = TicketState.open(),
    agent_id: int | None = None,
    ids: Collection[int] | None = None,
    visible_to: tuple[Collection[str], int] | None = None,
    matching: Sequence[str] = (),
    customer: tuple[str, str] | None = None,
    newest_first: bool = False,
    offset: int = 0,
    limit: int = 50,
) -> list[ListedTicket]:
    """Tickets in claim order (queued before queue_closed, urgent first, then oldest), or the
    last done first (`newest_first`: by when they were resolved). `visible_to` (queues, agent
    id): the tickets of those queues and the agent's own, as the desk lets an agent see them.
    `matching`: the customer's id, or a message of the ticket's conversation, holds one of
    these texts (case-insensitive; `%` and `_` are themselves, not wildcards). `customer`: (channel,
    user id), that customer's tickets only."""
    query = (
        sa.select(
            tickets,
            conversations.c.channel,
            conversations.c.user_id,
            agents.c.name.label("agent_name"),
            _last_text().label("last_text"),
        )
        .join(conversations, conversations.c.id == tickets.c.conversation_id)
        .outerjoin(agents, agents.c.id == tickets.c.agent_id)
        .where(tickets.c.status.in_(list(statuses)))
    )
    if queues is not None:
        query = query.where(tickets.c.queue.in_(list(queues)))
    if agent_id is not None:
        query = query.where(tickets.c.agent_id == agent_id)
    if ids is not None:
        query = query.where(tickets.c.id.in_(list(ids)))
    if visible_to is not None:
        visible_queues, own = visible_to
        query = query.where(
            sa.or_(tickets.c.queue.in_(list(visible_queues)), tickets.c.agent_id == own)
        )
    if matching:
        query = query.where(sa.or_(*(_matches(words) for words in matching)))
    if customer is not None:
        query = query.where(
            conversations.c.channel == customer[0], conversations.c.user_id == customer[1]
        )
    if newest_first:
        done_at = sa.func.coalesce(tickets.c.resolved_at, tickets.c.updated_at)
        query = query.order_by(done_at.desc(), tickets.c.id.desc())
    else:
        order = sa.case((tickets.c.status == TicketState.QUEUE_CLOSED, 1), else_=0)
        query = query.order_by(order, tickets.c.priority_rank, tickets.c.created_at, tickets.c.id)
    out = []
    for row in conn.execute(query.offset(offset).limit(limit)).mappings():
        data = {column.name: row[column.name] for column in tickets.c}
        out.append(
            ListedTicket(
                from_row(data),
                row["channel"],
                row["user_id"],
                row["agent_name"],
                row["last_text"] or "",
            )
        )
    return out


#: LIKE's escape character in `_matches`
ESCAPE = "\\"


def _matches(words: str) -> Any:
    """The customer's id or a message of the ticket's conversation contains `words`: LIKE with
    its wildcards escaped, case-insensitive on SQLite and PostgreSQL alike (ILIKE there, lower()
    on both sides here, which SQLAlchemy's `ilike` writes for each). `channel:id`, the form the
    console shows a customer in (`webhook:alice`, a long id cut with `…`), also finds that
    channel's customers whose id contains `id`."""
    pattern = _contains(words)
    said = (
        sa.select(messages.c.id)
        .where(
            messages.c.conversation_id == tickets.c.conversation_id,
            messages.c.text.ilike(pattern, escape=ESCAPE),
        )
        .exists()
    )
    found = [conversations.c.user_id.ilike(pattern, escape=ESCAPE), said]
    channel, colon, user_id = words.partition(":")
    user_id = user_id.strip().removesuffix("…")
    if colon and channel.strip() and user_id:
        found.append(
            sa.and_(
                sa.func.lower(conversations.c.channel) == channel.strip().lower(),
                conversations.c.user_id.ilike(_contains(user_id), escape=ESCAPE),
            )
        )
    return sa.or_(*found)


def _contains(words: str) -> str:
    """A LIKE pattern for text holding `words`, its wildcards and ESCAPE taken literally."""
    escaped = (
        words.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")
    )
    return f"%{escaped}%"


@dataclass(frozen=True)
class QueueCounts:
    queue_closed: int = 0
    queued: int = 0
    assigned: int = 0
    oldest_available: datetime | None = None
    next_due: datetime | None = None
    breached: int = 0


def queue_counts(conn: Connection, now: datetime) -> dict[str, QueueCounts]:
    """Per queue: open tickets by state, the oldest queued one, the next first-response
    deadline and how many are past a deadline."""
    breached = missed_deadline(now)
    queued = tickets.c.status == TicketState.QUEUED
    rows = conn.execute(
        sa.select(
            tickets.c.queue,
            sa.func.count().filter(tickets.c.status == TicketState.QUEUE_CLOSED),
            sa.func.count().filter(queued),
            sa.func.count().filter(tickets.c.status.in_(TicketState.with_agent())),
            sa.func.min(tickets.c.available_at).filter(queued),
            sa.func.min(tickets.c.first_response_due).filter(queued),
            sa.func.count().filter(breached),
        )
        .where(tickets.c.status.in_(TicketState.open()))
        .group_by(tickets.c.queue)
    ).all()
    return {row[0]: QueueCounts(row[1], row[2], row[3], row[4], row[5], row[6]) for row in rows}


@dataclass(frozen=True)
class Line:
    at: datetime
    direction: str
    text: str
    agent_name: str | None
    decision: dict[str, Any] | None


def transcript(conn: Connection, channel: str, user_id: str, limit: int = 100) -> list[Line]:
    """The customer's last messages across their conversations, oldest first, with the bot's
    decision for each message it decided on and the agent's name for agents' lines."""
    rows = conn.execute(
        sa.select(
            messages.c.at,
            messages.c.direction,
            messages.c.text,
            agents.c.name,
            decisions.c.record,
        )
        .outerjoin(agents, agents.c.id == messages.c.agent_id)
        .outerjoin(decisions, decisions.c.message_id == messages.c.id)
        .where(messages.c.channel == channel, messages.c.user_id == user_id)
        .order_by(messages.c.id.desc())
        .limit(limit)
    ).all()
    return [Line(r[0], r[1], r[2], r[3], r[4]) for r in reversed(rows)]


@dataclass(frozen=True)
class ConversationRow:
    id: int
    opened_at: datetime
    last_at: datetime
    messages_in: int
    tickets: int
    chat_id: str


def conversations_of(
    conn: Connection, channel: str, user_id: str, limit: int = 20
) -> list[ConversationRow]:
    """A customer's conversations in all their chats, the latest first, with how many tickets
    each opened."""
    opened = (
        sa.select(sa.func.count())
        .where(tickets.c.conversation_id == conversations.c.id)
        .scalar_subquery()
    )
    rows = conn.execute(
        sa.select(
            conversations.c.id,
            conversations.c.opened_at,
            conversations.c.last_at,
            conversations.c.messages_in,
            opened,
            conversations.c.chat_id,
        )
        .where(conversations.c.channel == channel, conversations.c.user_id == user_id)
        .order_by(conversations.c.last_at.desc(), conversations.c.id.desc())
        .limit(limit)
    ).all()
    return [ConversationRow(int(r[0]), r[1], r[2], int(r[3]), int(r[4]), r[5]) for r in rows]


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str
    agent_name: str | None
    data: dict[str, Any]


def history(conn: Connection, ticket_id: int) -> list[Event]:
    rows = conn.execute(
        sa.select(ticket_events.c.at, ticket_events.c.kind, agents.c.name, ticket_events.c.data)
        .outerjoin(agents, agents.c.id == ticket_events.c.agent_id)
        .where(ticket_events.c.ticket_id == ticket_id)
        .order_by(ticket_events.c.id)
    ).all()
    return [Event(r[0], r[1], r[2], dict(r[3] or {})) for r in rows]


def customer_of(conn: Connection, conversation_id: int) -> tuple[str, str, str, str | None]:
    """(channel, user id, language, unreachable reason) of a conversation."""
    row = conn.execute(
        sa.select(
            conversations.c.channel,
            conversations.c.user_id,
            conversations.c.language,
            conversations.c.unreachable_reason,
        ).where(conversations.c.id == conversation_id)
    ).one()
    return row[0], row[1], row[2], row[3]


def recent_questions(conn: Connection, channel: str, user_id: str, limit: int = 5) -> list[str]:
    """The customer's last text messages, newest first (for agent assist)."""
    return [
        str(text)
        for text in conn.execute(
            sa.select(messages.c.text)
            .where(
                messages.c.channel == channel,
                messages.c.user_id == user_id,
                messages.c.direction == "in",
                messages.c.kind == "text",
            )
            .order_by(messages.c.id.desc())
            .limit(limit)
        ).scalars()
    ]


def counts_since(conn: Connection, since: datetime) -> dict[str, Any]:
    """Volumes since `since`: tickets created and resolved, customer messages, CSAT answers
    and their mean."""
    created = conn.execute(
        sa.select(sa.func.count()).where(tickets.c.created_at >= since)
    ).scalar_one()
    resolved = conn.execute(
        sa.select(sa.func.count()).where(
            ticket_events.c.kind == "resolved", ticket_events.c.at >= since
        )
    ).scalar_one()
    inbound = conn.execute(
        sa.select(sa.func.count()).where(messages.c.direction == "in", messages.c.at >= since)
    ).scalar_one()
    scores = [
        int((data or {}).get("score", 0))
        for data in conn.execute(
            sa.select(ticket_events.c.data).where(
                ticket_events.c.kind == "csat", ticket_events.c.at >= since
            )
        ).scalars()
    ]
    return {
        "created": int(created),
        "resolved": int(resolved),
        "messages": int(inbound),
        "csat_answers": len(scores),
        "csat_mean": sum(scores) / len(scores) if scores else None,
    }


def agent_loads(conn: Connection, since: datetime) -> dict[int, tuple[int, int]]:
    """Per agent id: open tickets now, tickets they resolved since `since`."""
    open_: dict[Any, Any] = dict(
        conn.execute(
            sa.select(tickets.c.agent_id, sa.func.count())
            .where(tickets.c.status.in_(TicketState.with_agent()), tickets.c.agent_id.is_not(None))
            .group_by(tickets.c.agent_id)
        ).all()
    )
    done: dict[Any, Any] = dict(
        conn.execute(
            sa.select(ticket_events.c.agent_id, sa.func.count())
            .where(ticket_events.c.kind == "resolved", ticket_events.c.at >= since)
            .group_by(ticket_events.c.agent_id)
        ).all()
    )
    return {
        int(agent): (int(open_.get(agent, 0)), int(done.get(agent, 0)))
        for agent in {*open_, *done}
        if agent is not None
    }


def breaches_by_queue(conn: Connection) -> dict[str, int]:
    """Tickets ever escalated for a missed deadline, per the queue they are in now."""
    return {
        str(queue): int(count)
        for queue, count in conn.execute(
            sa.select(tickets.c.queue, sa.func.count())
            .where(tickets.c.breached_at.is_not(None))
            .group_by(tickets.c.queue)
        ).all()
    }
