"""Tickets in human queues. One open ticket per conversation (`uq_tickets_open`)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.domain.ticket import Ticket, TicketStatus
from bot.store.schema import tickets


def listed(conn: Connection, queue: str | None = None, status: str = "queued") -> list[Ticket]:
    """Tickets in a queue, in the order agents should take them: priority, then age."""
    query = sa.select(tickets).where(tickets.c.status == status)
    if queue:
        query = query.where(tickets.c.queue == queue)
    query = query.order_by(tickets.c.priority_rank, tickets.c.created_at, tickets.c.id)
    return [_ticket(row) for row in conn.execute(query).mappings()]


def release_waiting(conn: Connection, queue: str) -> list[Ticket]:
    """Make a queue's waiting tickets available to agents: urgent first, then oldest.

    Idempotent and safe with several workers: rows are locked (PostgreSQL: skipped by the
    others), and only `waiting` rows change.
    """
    query = (
        sa.select(tickets.c.id)
        .where(tickets.c.queue == queue, tickets.c.status == TicketStatus.WAITING)
        .order_by(tickets.c.priority_rank, tickets.c.created_at, tickets.c.id)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = [row.id for row in conn.execute(query)]
    if not ids:
        return []
    conn.execute(
        tickets.update()
        .where(tickets.c.id.in_(ids), tickets.c.status == TicketStatus.WAITING)
        .values(status=TicketStatus.QUEUED)
    )
    rows = {
        row["id"]: row
        for row in conn.execute(sa.select(tickets).where(tickets.c.id.in_(ids))).mappings()
    }
    return [_ticket(rows[i]) for i in ids]


def claim_next(
    conn: Connection, agent_id: int, queues: Collection[str], now: datetime
) -> Ticket | None:
    """ "Claim next": the first queued ticket of these queues (urgent first, then oldest) becomes
    this agent's. Exactly one agent gets each ticket, however many claim at once: PostgreSQL
    skips the rows another claim has locked (`FOR UPDATE SKIP LOCKED`), SQLite claims under
    its one write lock, and the UPDATE changes only a ticket still queued."""
    query = (
        sa.select(tickets.c.id)
        .where(tickets.c.status == TicketStatus.QUEUED, tickets.c.queue.in_(list(queues)))
        .order_by(tickets.c.priority_rank, tickets.c.created_at, tickets.c.id)
        .limit(1)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    found = conn.execute(query).scalar()
    if found is None:
        return None
    row = (
        conn.execute(
            tickets.update()
            .where(tickets.c.id == found, tickets.c.status == TicketStatus.QUEUED)
            .values(status=TicketStatus.CLAIMED, agent_id=agent_id, claimed_at=now)
            .returning(*tickets.c)
        )
        .mappings()
        .first()
    )
    return _ticket(row) if row else None


def escalate(
    conn: Connection, conversation_id: int, queue: str, priority: str, rank: int, now: datetime
) -> list[int]:
    """Move a conversation's waiting or queued tickets to `queue` at `priority`, available now."""
    return [
        int(i)
        for i in conn.execute(
            tickets.update()
            .where(
                tickets.c.conversation_id == conversation_id,
                tickets.c.status.in_((TicketStatus.WAITING, TicketStatus.QUEUED)),
            )
            .values(
                queue=queue,
                priority=priority,
                priority_rank=rank,
                status=TicketStatus.QUEUED,
                available_at=now,
            )
            .returning(tickets.c.id)
        ).scalars()
    ]


def _ticket(row: Any) -> Ticket:
    data = {k: v for k, v in dict(row).items() if k != "priority_rank"}
    data["status"] = TicketStatus(data["status"])
    return Ticket(**data)
