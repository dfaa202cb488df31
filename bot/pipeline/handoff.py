"""Handing a conversation to a human queue: the ticket, its priority and its SLA clocks."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.content.config import Config
from bot.domain.messages import Category, Priority
from bot.domain.ticket import TicketDraft
from bot.hours.schedule import Schedule


def ticket_for(
    config: Config,
    queue: str,
    priority: Priority,
    category: Category,
    schedule: Schedule,
    now: datetime,
    reasons: dict[str, Any],
) -> TicketDraft:
    """A ticket whose SLA clocks (first human response, transfer within 30 minutes) start now,
    or at the queue's next opening when its humans are away."""
    queue_config = config.queues[queue]
    available = now if schedule.is_open(now) else (schedule.next_open(now) or now)
    return TicketDraft(
        queue=queue,
        priority=priority.value,
        priority_rank=priority.rank,
        category=category.value,
        available_at=available,
        first_response=timedelta(seconds=queue_config.first_response_seconds),
        transfer=timedelta(minutes=queue_config.transfer_minutes),
        reasons=reasons,
    )
