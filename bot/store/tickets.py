"""Tickets in human queues. One open ticket per conversation (`uq_tickets_open`)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.domain.conversation import ConversationKey
from bot.domain.messages import Priority
from bot.domain.ticket import Ticket, TicketState
from bot.store.schema import agents, conversations, desk_changes, ticket_events, tickets

#: the PostgreSQL NOTIFY channel every console listens on; any ticket change is announced there
DESK_CHANNEL = "desk"


def get(conn: Connection, ticket_id: int, *, lock: bool = False) -> Ticket | None:
    """One ticket; `lock`: held until the transaction ends (PostgreSQL FOR UPDATE; SQLite's
    write transaction already excludes other writers)."""
    query = sa.select(tickets).where(tickets.c.id == ticket_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    return from_row(row) if row else None


def change(conn: Connection, ticket_id: int, now: datetime, **values: Any) -> Ticket:
    """Set columns on a ticket and mark it changed (the consoles refresh)."""
    row = (
        conn.execute(
            tickets.update()
            .where(tickets.c.id == ticket_id)
            .values(updated_at=now, **values)
            .returning(*tickets.c)
        )
        .mappings()
        .one()
    )
    announce(conn)
    return from_row(row)


def event(
    conn: Connection,
    ticket_id: int,
    kind: str,
    now: datetime,
    agent_id: int | None = None,
    **data: Any,
) -> None:
    """A step in the ticket's history (what the console lists and the reports count)."""
    conn.execute(
        ticket_events.insert().values(
            ticket_id=ticket_id, kind=kind, at=now, agent_id=agent_id, data=data or None
        )
    )


def events_many(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(ticket_events.insert(), rows)


def announce(conn: Connection) -> None:
    """Tell every worker's console that tickets changed: a `desk_changes` row, which `version`
    counts (SQLite consoles poll it), and on PostgreSQL a NOTIFY, delivered at commit. An
    insert, not a counter row: a counter would hold a lock to the end of every transaction
    that changes a ticket, and two of them could wait for each other."""
    conn.execute(desk_changes.insert())
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_notify(DESK_CHANNEL, "")))


#: the newest `desk_changes` rows `version` counts, and that `forget_changes` keeps
RECENT_CHANGES = 1000


def version(conn: Connection) -> str:
    """Moves whenever a ticket changes or is added: the newest `desk_changes` id, and how many
    of the recent ids are there (on PostgreSQL a transaction may take its id before another's
    and commit after it). Not the tickets' newest `updated_at`: one ticket stamped in the
    future (a clock ahead, a chat on a pretend clock) would hide every change after it."""
    newest = conn.execute(sa.select(sa.func.max(desk_changes.c.id))).scalar()
    if newest is None:
        return "0:0"
    recent = conn.execute(
        sa.select(sa.func.count()).where(desk_changes.c.id > newest - RECENT_CHANGES)
    ).scalar_one()
    return f"{newest}:{recent}"


def forget_changes(conn: Connection) -> int:
    """Drop the `desk_changes` rows `version` no longer looks at; returns how many."""
    newest = conn.execute(sa.select(sa.func.max(desk_changes.c.id))).scalar()
    if newest is None:
        return 0
    return conn.execute(
        desk_changes.delete().where(desk_changes.c.id <= newest - RECENT_CHANGES)
    ).rowcount


def reopenable(conn: Connection, key: ConversationKey, since: datetime) -> Ticket | None:
    """The most recent ticket resolved since `since` (the reopen window) of the customer in
    this chat (`key`: channel, user id, chat id)."""
    channel, user_id, chat_id = key
    row = (
        conn.execute(
            sa.select(tickets)
            .join(conversations, conversations.c.id == tickets.c.conversation_id)
            .where(
                conversations.c.channel == channel,
                conversations.c.user_id == user_id,
                conversations.c.chat_id == chat_id,
                tickets.c.status == TicketState.RESOLVED,
                tickets.c.resolved_at >= since,
            )
            .order_by(tickets.c.resolved_at.desc(), tickets.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    return from_row(row) if row else None


def queue_load(
    conn: Connection, queue: str, rank: int, now: datetime, history: int = 20
) -> tuple[int, float | None]:
    """How many queued tickets of this queue come before one of priority `rank` arriving now,
    and the expected wait in minutes: the mean time from available to claimed of the queue's
    last `history` claimed tickets in the past week (None without any)."""
    ahead = conn.execute(
        sa.select(sa.func.count()).where(
            tickets.c.queue == queue,
            tickets.c.status == TicketState.QUEUED,
            tickets.c.priority_rank <= rank,
        )
    ).scalar_one()
    recent = conn.execute(
        sa.select(tickets.c.available_at, tickets.c.assigned_at)
        .where(
            tickets.c.queue == queue,
            tickets.c.assigned_at.is_not(None),
            tickets.c.assigned_at >= now - timedelta(days=7),
        )
        .order_by(tickets.c.assigned_at.desc())
        .limit(history)
    ).all()
    waits = [max(0.0, (claimed - available).total_seconds()) for available, claimed in recent]
    return int(ahead), (sum(waits) / len(waits) / 60 if waits else None)


def agent_name(conn: Connection, agent_id: int | None, *, active: bool = False) -> str | None:
    """The agent's name; with `active`, None for an agent since disabled."""
    if agent_id is None:
        return None
    query = sa.select(agents.c.name).where(agents.c.id == agent_id)
    if active:
        query = query.where(agents.c.active)
    return conn.execute(query).scalar()


def close_resolved(conn: Connection, before: datetime, now: datetime) -> int:
    """Resolved tickets past the reopen window become closed (a `closed` line in each one's
    history)."""
    ids = [
        int(i)
        for i in conn.execute(
            tickets.update()
            .where(tickets.c.status == TicketState.RESOLVED, tickets.c.resolved_at < before)
            .values(status=TicketState.CLOSED, updated_at=now)
            .returning(tickets.c.id)
        ).scalars()
    ]
    if ids:
        events_many(
            conn,
            [dict(ticket_id=i, kind="closed", at=now, agent_id=None, data=None) for i in ids],
        )
        announce(conn)
    return len(ids)


def listed(conn: Connection, queue: str | None = None, status: str = "queued") -> list[Ticket]:
    """Tickets in a queue, in the order agents should take them: priority, then age."""
    query = sa.select(tickets).where(tickets.c.status == status)
    if queue:
        query = query.where(tickets.c.queue == queue)
    query = query.order_by(tickets.c.priority_rank, tickets.c.created_at, tickets.c.id)
    return [from_row(row) for row in conn.execute(query).mappings()]


def _clocks_from(
    available_at: datetime, first_response_due: datetime, transfer_due: datetime, start: datetime
) -> dict[str, datetime]:
    """A ticket's SLA clocks moved to start at `start`, each deadline as far after it as before."""
    shift = start - available_at
    return {
        "available_at": start,
        "first_response_due": first_response_due + shift,
        "transfer_due": transfer_due + shift,
    }


def follow_opening(conn: Connection, queue: str, opening: datetime, now: datetime) -> int:
    """Move the SLA clocks of a closed queue's queue_closed tickets to its next opening, when
    the schedule changed since they were made (an operator opens early tomorrow, or adds a
    closure): the console shows, and the care job counts, the deadlines that will hold.
    Returns how many tickets moved."""
    query = sa.select(
        tickets.c.id, tickets.c.available_at, tickets.c.first_response_due, tickets.c.transfer_due
    ).where(
        tickets.c.queue == queue,
        tickets.c.status == TicketState.QUEUE_CLOSED,
        tickets.c.available_at != opening,
    )
    found = conn.execute(query).all()
    for row in found:
        conn.execute(
            tickets.update()
            .where(tickets.c.id == row.id, tickets.c.status == TicketState.QUEUE_CLOSED)
            .values(
                updated_at=now,
                **_clocks_from(row.available_at, row.first_response_due, row.transfer_due, opening),
            )
        )
    if found:
        announce(conn)
    return len(found)


def release_queue_closed(conn: Connection, queue: str, now: datetime) -> list[Ticket]:
    """Make a queue's queue_closed tickets available to agents: urgent first, then oldest.

    Idempotent and safe with several workers: rows are locked (PostgreSQL: skipped by the
    others), and only `queue_closed` rows change.
    """
    query = (
        sa.select(
            tickets.c.id,
            tickets.c.available_at,
            tickets.c.first_response_due,
            tickets.c.transfer_due,
        )
        .where(tickets.c.queue == queue, tickets.c.status == TicketState.QUEUE_CLOSED)
        .order_by(tickets.c.priority_rank, tickets.c.created_at, tickets.c.id)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    found = conn.execute(query).all()
    if not found:
        return []
    for row in found:
        # released at another time than planned (an operator added a closure, opened early or
        # changed the hours): the SLA clocks start now, not at the opening that did not happen
        conn.execute(
            tickets.update()
            .where(tickets.c.id == row.id, tickets.c.status == TicketState.QUEUE_CLOSED)
            .values(
                status=TicketState.QUEUED,
                updated_at=now,
                **_clocks_from(row.available_at, row.first_response_due, row.transfer_due, now),
            )
        )
    announce(conn)
    ids = [row.id for row in found]
    rows = {
        row["id"]: row
        for row in conn.execute(sa.select(tickets).where(tickets.c.id.in_(ids))).mappings()
    }
    return [from_row(rows[i]) for i in ids]


def claim_next(
    conn: Connection, agent_id: int, queues: Collection[str], now: datetime
) -> Ticket | None:
    """ "Claim next": the first queued ticket of these queues (urgent first, then oldest) becomes
    this agent's. Exactly one agent gets each ticket, however many claim at once: PostgreSQL
    skips the rows another claim has locked (`FOR UPDATE SKIP LOCKED`), SQLite claims under
    its one write lock, and the UPDATE changes only a ticket still queued."""
    query = (
        sa.select(tickets.c.id)
        .where(tickets.c.status == TicketState.QUEUED, tickets.c.queue.in_(list(queues)))
        .order_by(tickets.c.priority_rank, tickets.c.created_at, tickets.c.id)
        .limit(1)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    found = conn.execute(query).scalar()
    return None if found is None else claim(conn, int(found), agent_id, now)


def claim(conn: Connection, ticket_id: int, agent_id: int, now: datetime) -> Ticket | None:
    """Take this queued ticket, or one held until its queue opens (an agent at work early
    takes it then); None when it is neither any more (someone was faster)."""
    row = (
        conn.execute(
            tickets.update()
            .where(
                tickets.c.id == ticket_id,
                tickets.c.status.in_((TicketState.QUEUED, TicketState.QUEUE_CLOSED)),
            )
            .values(
                status=TicketState.ASSIGNED,
                agent_id=agent_id,
                assigned_at=sa.func.coalesce(tickets.c.assigned_at, _at(now)),
                updated_at=now,
            )
            .returning(*tickets.c)
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    event(conn, ticket_id, "claimed", now, agent_id)
    announce(conn)
    return from_row(row)


def escalate(
    conn: Connection,
    conversation_id: int,
    queue: str,
    priority: str,
    rank: int,
    now: datetime,
    first_response: timedelta,
    transfer: timedelta,
) -> list[int]:
    """Move a conversation's queue_closed or queued tickets to `queue` at `priority`, available now,
    with that queue's SLA clocks starting now (an emergency on a Sunday is not due Monday)."""
    return [
        int(i)
        for i in conn.execute(
            tickets.update()
            .where(
                tickets.c.conversation_id == conversation_id,
                tickets.c.status.in_((TicketState.QUEUE_CLOSED, TicketState.QUEUED)),
            )
            .values(
                queue=queue,
                priority=priority,
                priority_rank=rank,
                status=TicketState.QUEUED,
                available_at=now,
                updated_at=now,
                first_response_due=now + first_response,
                transfer_due=now + transfer,
            )
            .returning(tickets.c.id)
        ).scalars()
    ]


def missed_deadline(now: datetime) -> Any:
    """`Ticket.missed` in SQL: no human reply by the first-response deadline, or no agent by
    the transfer deadline."""
    return sa.or_(
        sa.and_(tickets.c.first_response_at.is_(None), tickets.c.first_response_due < now),
        sa.and_(tickets.c.assigned_at.is_(None), tickets.c.transfer_due < now),
    )


def ahead_of(conn: Connection, ticket: Ticket) -> int:
    """Queued tickets of the same queue an agent takes before this one."""
    rank = Priority(ticket.priority).rank
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(
                tickets.c.queue == ticket.queue,
                tickets.c.status == TicketState.QUEUED,
                tickets.c.id != ticket.id,
                sa.or_(
                    tickets.c.priority_rank < rank,
                    sa.and_(
                        tickets.c.priority_rank == rank,
                        sa.tuple_(tickets.c.created_at, tickets.c.id)
                        < sa.tuple_(
                            sa.literal(ticket.created_at, tickets.c.created_at.type),
                            sa.literal(ticket.id),
                        ),
                    ),
                ),
            )
        ).scalar_one()
    )


def _at(moment: datetime) -> Any:
    """A time inside an SQL expression, stored as the columns store it (UTC)."""
    return sa.literal(moment, tickets.c.assigned_at.type)


def from_row(row: Any) -> Ticket:
    """A ticket from its row (the domain value has no `priority_rank`: its priority says it)."""
    data = {k: v for k, v in dict(row).items() if k != "priority_rank"}
    data["status"] = TicketState(data["status"])
    return Ticket(**data)


def awaiting_care(
    conn: Connection, available_before: datetime
) -> list[tuple[Ticket, str, datetime]]:
    """Open tickets no human has answered, with agents since before `available_before`, not yet
    sent the apology-and-update; each with its conversation's channel and last customer message
    (whether the channel still lets the bot write). Locked until the transaction ends: on
    PostgreSQL another worker's care job skips them rather than waiting, and sees them cared
    for once this transaction commits."""
    query = (
        sa.select(tickets, conversations.c.channel, conversations.c.last_at)
        .join(conversations, conversations.c.id == tickets.c.conversation_id)
        .where(
            tickets.c.status.in_((TicketState.QUEUED, TicketState.ASSIGNED)),
            tickets.c.first_response_at.is_(None),
            tickets.c.care_sent_at.is_(None),
            tickets.c.available_at <= available_before,
        )
        .order_by(tickets.c.priority_rank, tickets.c.available_at, tickets.c.id)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(of=tickets, skip_locked=True)
    found = []
    for row in conn.execute(query).mappings():
        ticket = from_row({c.name: row[c.name] for c in tickets.c})
        found.append((ticket, str(row["channel"]), row["last_at"]))
    return found


def mark_cared(conn: Connection, ticket_id: int, now: datetime) -> Ticket | None:
    """Record the apology-and-update; None when it was already sent or a human answered (the
    guard that keeps it to once per ticket whatever runs at the same time)."""
    row = (
        conn.execute(
            tickets.update()
            .where(
                tickets.c.id == ticket_id,
                tickets.c.care_sent_at.is_(None),
                tickets.c.first_response_at.is_(None),
            )
            .values(care_sent_at=now, updated_at=now)
            .returning(*tickets.c)
        )
        .mappings()
        .first()
    )
    return from_row(row) if row else None


def overdue(conn: Connection, now: datetime) -> list[Ticket]:
    """Open tickets with agents that missed a deadline and were not yet escalated: no human
    reply by `first_response_due`, or no agent by `transfer_due`. A queue_closed ticket is never
    overdue: its queue is closed and its clocks start at `available_at`. Locked like
    `awaiting_care`."""
    query = (
        sa.select(tickets)
        .where(
            tickets.c.status.in_(
                (TicketState.QUEUED, TicketState.ASSIGNED, TicketState.AWAITING_CUSTOMER)
            ),
            tickets.c.breached_at.is_(None),
            tickets.c.available_at <= now,
            missed_deadline(now),
        )
        .order_by(tickets.c.priority_rank, tickets.c.available_at, tickets.c.id)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [from_row(row) for row in conn.execute(query).mappings()]


def mark_breached(
    conn: Connection, ticket_id: int, breach: str, queue: str, priority: Priority, now: datetime
) -> Ticket | None:
    """Record a missed deadline and the escalation (queue, priority); None when the ticket was
    already marked (once per ticket, whatever runs at the same time)."""
    row = (
        conn.execute(
            tickets.update()
            .where(tickets.c.id == ticket_id, tickets.c.breached_at.is_(None))
            .values(
                breached_at=now,
                breach=breach,
                queue=queue,
                priority=priority,
                priority_rank=priority.rank,
                updated_at=now,
            )
            .returning(*tickets.c)
        )
        .mappings()
        .first()
    )
    return from_row(row) if row else None
