"""At opening time, the tickets queued while a queue was closed go to its agents."""

from __future__ import annotations

import logging
from datetime import datetime

from bot.content.config import Config, pick
from bot.domain.delivery import may_write
from bot.domain.messages import Outbound, Priority
from bot.domain.ticket import Ticket
from bot.hours.schedule import Schedule
from bot.store import conversations, outbox, tickets
from bot.store.database import Store

log = logging.getLogger("bot.jobs")


def release_queue_closed(
    config: Config, store: Store, schedules: dict[str, Schedule], now: datetime
) -> tuple[list[Ticket], list[Outbound]]:
    """Hand the open queues' queue_closed tickets to agents, urgent first then oldest, and tell each
    customer an agent is on it — where the channel still lets the bot write. The status change
    and the notice are one transaction, so running it twice (or on two workers) releases and
    tells once. Returns the tickets and the notices now in the outbox."""
    released: list[Ticket] = []
    notices: list[Outbound] = []
    with store.transaction() as tx:
        for queue, queue_config in config.queues.items():
            if schedules[queue_config.schedule].is_open(now):
                released.extend(tickets.release_queue_closed(tx, queue, now))
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
            text = pick(config.texts.released, conversation.language)
            outbox_id = outbox.add(tx, conversation, None, text, now)
            notices.append(
                Outbound(
                    conversation.channel, conversation.chat_id, text, conversation.id, outbox_id
                )
            )
    if released:
        log.info("released %d queue_closed ticket(s)", len(released))
    return released, notices
