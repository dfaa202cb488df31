"""Waiting care: what happens to a ticket while it waits for a human, on the scheduler's clock.

Three steps, each its own transaction so that one failing never holds up the others:

- a customer no human has answered `care.apology_minutes` after their ticket reached the agents
  gets one apology-and-update (texts.waiting_care) — the standard's "never leave a waiting
  customer without an update";
- a ticket past a deadline (first human response, or transfer to an agent) is marked breached
  (the console's alert), raised one priority step and moved to `care.escalate_queue`;
- a resolved ticket past `handoff.reopen_minutes` is closed: the customer's next request for a
  human starts a new ticket instead of reopening the old one.

Each is a cluster job run by the leader only, and each is once per ticket however often and on
however many workers it runs: the rows are locked (PostgreSQL: skipped by the other worker), and
every write is guarded by the column it sets still being empty.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.content.config import Config, pick
from bot.domain.delivery import may_write
from bot.domain.messages import Outbound, Priority
from bot.domain.ticket import Ticket
from bot.hours.schedule import Schedule
from bot.store import conversations, outbox, tickets
from bot.store.database import Store

log = logging.getLogger("bot.jobs")


@dataclass
class CareRound:
    """What one run of the care job did."""

    #: apologies now in the outbox, for the dispatcher to send
    notices: list[Outbound] = field(default_factory=list)
    #: tickets newly marked breached, as they are after the escalation
    breached: list[Ticket] = field(default_factory=list)
    #: resolved tickets closed
    closed: int = 0


def run_care(
    config: Config, store: Store, schedules: Mapping[str, Schedule], now: datetime
) -> CareRound:
    """The care job: close, escalate, apologise. A step that fails is logged and the others
    still run, so a broken one never silences the rest."""
    done = CareRound()
    try:
        done.closed = close_resolved(config, store, now)
    except Exception:
        log.exception("closing resolved tickets failed")
    try:
        done.breached = escalate_breaches(config, store, now, schedules)
    except Exception:
        log.exception("escalating tickets past their SLA failed")
    try:
        done.notices = send_waiting_care(config, store, schedules, now)
    except Exception:
        log.exception("sending waiting care failed")
    return done


def send_waiting_care(
    config: Config, store: Store, schedules: Mapping[str, Schedule], now: datetime
) -> list[Outbound]:
    """One apology-and-update to each customer waiting longer than `care.apology_minutes` for a
    human's first reply, in their language, through the outbox. Skipped, and so tried again on
    the next run, while the ticket's queue is closed (no "as soon as possible" at night; it comes
    at opening) or the channel's reply window is shut (it comes if the customer writes again).
    The apology, `care_sent_at` and the `care` event are one transaction."""
    minutes = config.care.apology_minutes
    if minutes <= 0:
        return []
    notices: list[Outbound] = []
    with store.transaction() as tx:
        for ticket, channel, last_at in tickets.awaiting_care(tx, now - timedelta(minutes=minutes)):
            if not _staffed(config, schedules, ticket.queue, now):
                continue
            if not may_write(config.handoff.reply_windows, channel, last_at, now):
                continue
            if tickets.mark_cared(tx, ticket.id, now) is None:
                continue
            conversation = conversations.get(tx, ticket.conversation_id)
            text = pick(config.texts.waiting_care, conversation.language)
            outbox_id = outbox.add(tx, conversation, None, text, now)
            tickets.event(tx, ticket.id, "care", now, waited_minutes=_waited(ticket, now))
            notices.append(
                Outbound(
                    conversation.channel, conversation.chat_id, text, conversation.id, outbox_id
                )
            )
        if notices:
            tickets.announce(tx)  # the consoles show that the customer was told
    if notices:
        log.info("sent waiting care to %d customer(s)", len(notices))
    return notices


def escalate_breaches(
    config: Config,
    store: Store,
    now: datetime,
    schedules: Mapping[str, Schedule] | None = None,
) -> list[Ticket]:
    """Mark each ticket that just missed a deadline, once: `breached_at` and which deadline
    (`breach`), one priority step up when `care.escalate_priority`, the move to
    `care.escalate_queue` when set, and an `escalated` event with what changed, the old and new
    priority and/or queue (`breached`, with the deadline only, when neither changes: a ticket
    already urgent, or in the escalation queue). The console's alert comes from `breached_at`.
    With `schedules`, nothing is escalated while its queue is closed: a ticket that came at
    17:50 is not raised at night, when nobody can take it; it is at opening if still late."""
    escalated: list[tuple[Ticket, dict[str, Any]]] = []
    with store.transaction() as tx:
        for ticket in tickets.overdue(tx, now):
            if schedules is not None and ticket.queue in config.queues:
                schedule = schedules.get(config.queues[ticket.queue].schedule)
                if schedule is not None and not schedule.is_open(now):
                    continue
            breach = ticket.missed(now) or "first_response"
            old_priority = Priority(ticket.priority)
            priority = old_priority.raised() if config.care.escalate_priority else old_priority
            queue = config.care.escalate_queue or ticket.queue
            marked = tickets.mark_breached(tx, ticket.id, breach, queue, priority, now)
            if marked is None:
                continue
            changes: dict[str, Any] = {}
            if priority != old_priority:
                changes.update(priority_from=old_priority.value, priority_to=priority.value)
            if queue != ticket.queue:
                changes.update(queue_from=ticket.queue, queue_to=queue)
            tickets.event(
                tx,
                ticket.id,
                "escalated" if changes else "breached",
                now,
                breach=breach,
                **changes,
            )
            escalated.append((marked, changes))
        if escalated:
            tickets.announce(tx)
    for ticket, changes in escalated:
        outcome = ": escalated to %s in %s" if changes else " (already %s in %s: nothing to raise)"
        log.warning(
            "ticket %s missed its %s deadline" + outcome,
            ticket.id,
            ticket.breach,
            ticket.priority,
            ticket.queue,
        )
    return [ticket for ticket, _ in escalated]


def close_resolved(config: Config, store: Store, now: datetime) -> int:
    """Close the resolved tickets the customer can no longer reopen (`handoff.reopen_minutes`
    after resolving; at once when reopening is off)."""
    before = now - timedelta(minutes=config.handoff.reopen_minutes)
    with store.transaction() as tx:
        closed = tickets.close_resolved(tx, before, now)
        tickets.forget_changes(tx)
    if closed:
        log.info("closed %d resolved ticket(s) past the reopen time", closed)
    return closed


def _staffed(config: Config, schedules: Mapping[str, Schedule], queue: str, now: datetime) -> bool:
    """The queue's humans are at work now (a queue no longer configured counts as staffed: its
    customer still deserves the update)."""
    queue_config = config.queues.get(queue)
    schedule = schedules.get(queue_config.schedule) if queue_config else None
    return schedule is None or schedule.is_open(now)


def _waited(ticket: Ticket, now: datetime) -> float:
    return round((now - ticket.available_at).total_seconds() / 60, 1)
