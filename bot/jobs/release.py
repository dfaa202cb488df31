"""At opening time, the tickets queued while a queue was closed go to its agents."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from bot.content.config import Config, pick
from bot.domain.delivery import may_write
from bot.domain.messages import Outbound, Priority
from bot.domain.ticket import Ticket
from bot.hours.schedule import Schedule
from bot.store import agents, conversations, outbox, tickets
from bot.store.database import Store

log = logging.getLogger("bot.jobs")


def release_queue_closed(
    config: Config, store: Store, schedules: dict[str, Schedule], now: datetime
) -> tuple[list[Ticket], list[Outbound]]:
    """Hand the open queues' queue_closed tickets to agents, urgent first then oldest, and tell each
    customer an agent is on it — where the channel still lets the bot write. The status change
    and the notice are one transaction, so running it twice (or on two workers) releases and
    tells once. A customer whose queue has no agent online yet (the team logs in a few
    minutes after opening) is told so (texts.released_unstaffed), not that an agent is on it.

    A released ticket's SLA clocks start now, whenever the opening was planned; a closed
    queue's tickets follow its next opening when the schedule changed since they were made
    (this runs every 30 s, so within that of a reload). Returns the tickets and the notices
    now in the outbox."""
    released: list[Ticket] = []
    notices: list[Outbound] = []
    staffed: dict[str, bool] = {}
    with store.transaction() as tx:
        for queue, queue_config in config.queues.items():
            schedule = schedules[queue_config.schedule]
            if schedule.is_open(now):
                released.extend(tickets.release_queue_closed(tx, queue, now))
            elif (opening := schedule.next_open(now)) is not None:
                tickets.follow_opening(tx, queue, opening, now)
        released.sort(key=lambda t: (Priority(t.priority).rank, t.created_at, t.id))
        for ticket in released:
            conversation = conversations.get(tx, ticket.conversation_id)
            windows = config.handoff.reply_windows
            if not may_write(windows, conversation.channel, conversation.last_at, now):
                log.info(
                    "ticket %s released; %s no longer lets the bot write to its customer",
                    ticket.id,
                    conversation.channel,
                )
                continue
            if ticket.queue not in staffed:
                staffed[ticket.queue] = _staffed(tx, config, ticket.queue, now)
            said = (
                config.texts.released if staffed[ticket.queue] else config.texts.released_unstaffed
            )
            text = pick(said, conversation.language)
            outbox_id = outbox.add(tx, conversation, None, text, now)
            notices.append(
                Outbound(
                    conversation.channel, conversation.chat_id, text, conversation.id, outbox_id
                )
            )
    if released:
        log.info("released %d queue_closed ticket(s)", len(released))
    return released, notices


def _staffed(tx: Connection, config: Config, queue: str, now: datetime) -> bool:
    """Some agent who works the queue is online (console.online_minutes; 0: not checked, the
    team answers outside the console)."""
    minutes = config.console.online_minutes
    return minutes == 0 or agents.online(tx, queue, now - timedelta(minutes=minutes)) > 0
