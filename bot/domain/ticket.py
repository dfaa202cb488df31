"""A ticket: a conversation waiting for, or with, a human in one queue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class TicketState(StrEnum):
    """queue_closed → queued → assigned ⇄ awaiting_customer → resolved → closed; a resolved ticket
    reopens (assigned to its agent, or queued) when the customer needs a human again within the
    reopen time. An agent *claims* a ticket (the act, and the `claimed` event); the ticket is then
    *assigned*. "Waiting" is only ever the customer's: waiting for an agent."""

    QUEUE_CLOSED = "queue_closed"  # handed off while the queue is closed; agents see it at opening
    QUEUED = "queued"  # agents can take it
    ASSIGNED = "assigned"  # an agent has it, and it is their move
    AWAITING_CUSTOMER = "awaiting_customer"  # the agent answered; the customer's move
    RESOLVED = "resolved"  # done; the bot answers again; may reopen within the reopen time
    CLOSED = "closed"  # past the reopen time

    @classmethod
    def open(cls) -> tuple[TicketState, ...]:
        """The states in which a ticket still owns its conversation (the bot is silent)."""
        return (cls.QUEUE_CLOSED, cls.QUEUED, cls.ASSIGNED, cls.AWAITING_CUSTOMER)

    @classmethod
    def with_agent(cls) -> tuple[TicketState, ...]:
        return (cls.ASSIGNED, cls.AWAITING_CUSTOMER)


@dataclass(frozen=True)
class TicketDraft:
    """A ticket about to be written; SLA clocks start when the queue's humans are at work."""

    queue: str
    priority: str
    priority_rank: int
    category: str
    available_at: datetime
    first_response: timedelta
    transfer: timedelta
    reasons: dict[str, Any]

    def row(self, now: datetime) -> dict[str, Any]:
        start = max(now, self.available_at)
        return dict(
            status=TicketState.QUEUE_CLOSED if self.available_at > now else TicketState.QUEUED,
            queue=self.queue,
            priority=self.priority,
            priority_rank=self.priority_rank,
            category=self.category,
            available_at=self.available_at,
            first_response_due=start + self.first_response,
            transfer_due=start + self.transfer,
            reasons=self.reasons,
            updated_at=now,
        )


@dataclass(frozen=True)
class Ticket:
    id: int
    conversation_id: int
    queue: str
    priority: str
    category: str
    status: TicketState
    created_at: datetime
    available_at: datetime
    first_response_due: datetime
    transfer_due: datetime
    reasons: dict[str, Any]
    #: the agent it is assigned to, and when it was first assigned (claimed, or transferred)
    agent_id: int | None = None
    assigned_at: datetime | None = None
    updated_at: datetime | None = None
    #: a human's first reply (the bot's replies never count)
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: int | None = None
    reopened: int = 0
    #: the apology-and-update sent to the waiting customer
    care_sent_at: datetime | None = None
    #: an SLA deadline passed (`breach`: first_response or transfer) and it was escalated
    breached_at: datetime | None = None
    breach: str | None = None
    csat_asked_at: datetime | None = None
    csat: int | None = None
    nps: int | None = None

    @property
    def is_open(self) -> bool:
        return self.status in TicketState.open()

    def missed(self, now: datetime) -> str | None:
        """The deadline missed first, if any: "first_response" (no human reply by then) or
        "transfer" (still not with an agent by then)."""
        missed = []
        if self.first_response_at is None and now > self.first_response_due:
            missed.append((self.first_response_due, "first_response"))
        if self.assigned_at is None and now > self.transfer_due:
            missed.append((self.transfer_due, "transfer"))
        return min(missed)[1] if missed else None

    def breached(self, now: datetime) -> bool:
        """Open and past a deadline not met."""
        return self.is_open and self.missed(now) is not None
