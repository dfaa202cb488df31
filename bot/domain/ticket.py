"""A ticket: a conversation waiting for, or with, a human in one queue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class TicketStatus(StrEnum):
    WAITING = "waiting"  # the queue is closed; agents see it at opening time
    QUEUED = "queued"  # agents can take it
    CLAIMED = "claimed"  # an agent has it
    RESOLVED = "resolved"

    @classmethod
    def open(cls) -> tuple[TicketStatus, ...]:
        """The states in which a ticket still owns its conversation."""
        return (cls.WAITING, cls.QUEUED, cls.CLAIMED)


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
            status=TicketStatus.WAITING if self.available_at > now else TicketStatus.QUEUED,
            queue=self.queue,
            priority=self.priority,
            priority_rank=self.priority_rank,
            category=self.category,
            available_at=self.available_at,
            first_response_due=start + self.first_response,
            transfer_due=start + self.transfer,
            reasons=self.reasons,
        )


@dataclass(frozen=True)
class Ticket:
    id: int
    conversation_id: int
    queue: str
    priority: str
    category: str
    status: TicketStatus
    created_at: datetime
    available_at: datetime
    first_response_due: datetime
    transfer_due: datetime
    reasons: dict[str, Any]
    #: the agent who claimed it, and when
    agent_id: int | None = None
    claimed_at: datetime | None = None
