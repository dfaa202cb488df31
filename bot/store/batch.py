"""The database side of deciding several customers' messages together, in bulk.

Deciding a message reads the customer's conversation, recent messages, replied intents and open
ticket, and writes a decision, maybe a ticket, the conversation's new state, transcript lines and
outbox rows. Done one message at a time that is a dozen statements each; for a batch (one
message per customer, inside the transaction that holds their locks) it is a dozen statements
in all: `load` reads everything the batch needs, the steps read from it and `record` into it,
and `flush` writes what they recorded, in order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.domain.conversation import Conversation, ConversationState
from bot.domain.messages import Decision
from bot.domain.ticket import TicketDraft, TicketStatus
from bot.store import outbox
from bot.store import tickets as ticket_queries
from bot.store.conversations import from_row
from bot.store.schema import conversations, decisions, messages, tickets

Customer = tuple[str, str]  # (channel, user id)


@dataclass(frozen=True)
class Arrival:
    """One message to decide: its stored id, its customer, and when it is being decided."""

    message_id: int
    channel: str
    user_id: str
    chat_id: str
    now: datetime

    @property
    def customer(self) -> Customer:
        return (self.channel, self.user_id)


@dataclass
class Entry:
    """What one message's run recorded; `flush` fills in the ids."""

    message_id: int
    conversation: Conversation
    decision: Decision
    ticket: TicketDraft | None
    #: (text, choices, the human queue it hands the customer to)
    replies: Sequence[tuple[str, Sequence[str], str | None]]
    now: datetime
    lease_until: datetime | None
    leased_by: str | None
    outbox_ids: list[int] = field(default_factory=list)


class DecisionBatch:
    def __init__(self, tx: Connection, idle: timedelta, flood_window: timedelta) -> None:
        self.tx = tx
        self.idle = idle
        self.flood_window = flood_window
        self._handled: set[int] = set()
        self._conversations: dict[Customer, Conversation] = {}
        self._recent: dict[Customer, list[datetime]] = defaultdict(list)
        self._replied: dict[int, set[str]] = defaultdict(set)
        self._open_ticket: dict[int, int] = {}
        self._entries: list[Entry] = []

    # --- reads ---------------------------------------------------------------------------

    def load(self, arrivals: Sequence[Arrival]) -> None:
        """Read what deciding these messages needs; open or renew their conversations. At most
        one message per customer (a customer's next message goes in the next batch)."""
        assert len({a.customer for a in arrivals}) == len(arrivals), "one message per customer"
        if not arrivals:
            return
        tx = self.tx
        ids = [a.message_id for a in arrivals]
        self._handled = set(
            tx.execute(
                sa.select(messages.c.id).where(messages.c.id.in_(ids), messages.c.handled)
            ).scalars()
        )
        keys = [a.customer for a in arrivals]
        pair = sa.tuple_(conversations.c.channel, conversations.c.user_id)
        current: dict[Customer, Any] = {}
        for row in tx.execute(
            sa.select(conversations)
            .where(pair.in_(keys), conversations.c.state != ConversationState.CLOSED)
            .order_by(conversations.c.id)
        ).mappings():
            current[(row["channel"], row["user_id"])] = row  # the newest wins
        stale, fresh = [], []
        for arrival in arrivals:
            found = current.get(arrival.customer)
            if found and (
                found["state"] == ConversationState.HANDOFF
                or arrival.now - found["last_at"] < self.idle
            ):
                self._conversations[arrival.customer] = from_row(found)
                continue
            if found:
                stale.append(found["id"])
            fresh.append(arrival)
        if stale:
            tx.execute(
                conversations.update()
                .where(conversations.c.id.in_(stale))
                .values(state=ConversationState.CLOSED)
            )
        if fresh:
            values: list[dict[str, Any]] = [
                dict(
                    channel=a.channel,
                    user_id=a.user_id,
                    chat_id=a.chat_id,
                    state=ConversationState.BOT,
                    opened_at=a.now,
                    last_at=a.now,
                    language="zh",
                    messages_in=0,
                    fallback_streak=0,
                )
                for a in fresh
            ]
            new_ids = tx.execute(
                conversations.insert().returning(conversations.c.id, sort_by_parameter_order=True),
                values,
            ).scalars()
            for arrival, new_id, value in zip(fresh, new_ids, values, strict=True):
                self._conversations[arrival.customer] = Conversation(
                    id=int(new_id), notice_window=None, is_new=True, **value
                )
        since = min(a.now for a in arrivals) - self.flood_window
        for channel, user_id, at in tx.execute(
            sa.select(messages.c.channel, messages.c.user_id, messages.c.at).where(
                sa.tuple_(messages.c.channel, messages.c.user_id).in_(keys),
                messages.c.direction == "in",
                messages.c.at >= since,
            )
        ):
            self._recent[(channel, user_id)].append(at)
        known = [c.id for c in self._conversations.values() if not c.is_new]
        if known:
            for conversation_id, intent in tx.execute(
                sa.select(decisions.c.conversation_id, decisions.c.intent).where(
                    decisions.c.conversation_id.in_(known),
                    decisions.c.action == "reply",
                    decisions.c.intent.is_not(None),
                )
            ):
                self._replied[conversation_id].add(intent)
            for conversation_id, ticket_id in tx.execute(
                sa.select(tickets.c.conversation_id, tickets.c.id).where(
                    tickets.c.conversation_id.in_(known),
                    tickets.c.status.in_(TicketStatus.open()),
                )
            ):
                self._open_ticket[conversation_id] = ticket_id

    def is_handled(self, message_id: int) -> bool:
        return message_id in self._handled

    def conversation(self, channel: str, user_id: str) -> Conversation:
        return self._conversations[(channel, user_id)]

    def inbound_count(self, channel: str, user_id: str, since: datetime) -> int:
        return sum(at >= since for at in self._recent[(channel, user_id)])

    def replied_intents(self, conversation_id: int) -> set[str]:
        return self._replied[conversation_id]

    # --- writes --------------------------------------------------------------------------

    def escalate(
        self, conversation_id: int, queue: str, priority: str, rank: int, now: datetime
    ) -> list[int]:
        """Rare (an emergency while waiting for a human): written at once."""
        return ticket_queries.escalate(self.tx, conversation_id, queue, priority, rank, now)

    def record(self, entry: Entry) -> None:
        self._entries.append(entry)

    def flush(self) -> list[Entry]:
        """Write everything recorded, in bulk: tickets first (decisions carry their ids), then
        decisions, messages handled, conversations, transcript lines and outbox rows."""
        entries, self._entries = self._entries, []
        if not entries:
            return []
        tx = self.tx
        wanting = [
            e
            for e in entries
            if e.ticket is not None and e.conversation.id not in self._open_ticket
        ]
        if wanting:
            new_ids = tx.execute(
                tickets.insert().returning(tickets.c.id, sort_by_parameter_order=True),
                [
                    dict(conversation_id=e.conversation.id, created_at=e.now, **e.ticket.row(e.now))
                    for e in wanting
                    if e.ticket is not None
                ],
            ).scalars()
            for entry, ticket_id in zip(wanting, new_ids, strict=True):
                self._open_ticket[entry.conversation.id] = int(ticket_id)
        for entry in entries:
            if entry.ticket is not None:
                entry.decision.ticket_id = self._open_ticket[entry.conversation.id]
                entry.conversation.state = ConversationState.HANDOFF
        records = [e.decision.as_record() for e in entries]
        tx.execute(
            decisions.insert(),
            [
                dict(
                    message_id=e.message_id,
                    conversation_id=e.conversation.id,
                    action=r["action"],
                    intent=r["intent"],
                    faq_id=r["faq_id"],
                    is_open=r["is_open"],
                    record=r,
                    at=e.now,
                )
                for e, r in zip(entries, records, strict=True)
            ],
        )
        tx.execute(
            messages.update()
            .where(messages.c.id == sa.bindparam("message"))
            .values(handled=True, conversation_id=sa.bindparam("conversation")),
            [{"message": e.message_id, "conversation": e.conversation.id} for e in entries],
        )
        tx.execute(
            conversations.update()
            .where(conversations.c.id == sa.bindparam("conversation"))
            .values(
                state=sa.bindparam("new_state"),
                last_at=sa.bindparam("new_last_at"),
                messages_in=sa.bindparam("new_messages_in"),
                language=sa.bindparam("new_language"),
                fallback_streak=sa.bindparam("new_streak"),
                notice_window=sa.bindparam("new_notice_window"),
                suggestions=sa.bindparam("new_suggestions", type_=conversations.c.suggestions.type),
                # a customer who writes can be written to again (unblocked the bot, reopened
                # WeChat's window)
                unreachable_reason=None,
            ),
            [
                {
                    "conversation": c.id,
                    "new_state": c.state,
                    "new_last_at": c.last_at,
                    "new_messages_in": c.messages_in,
                    "new_language": c.language,
                    "new_streak": c.fallback_streak,
                    "new_notice_window": c.notice_window,
                    "new_suggestions": c.suggestions,
                }
                for c in {id(e.conversation): e.conversation for e in entries}.values()
            ],
        )
        lines = [
            (
                entry,
                outbox.Outgoing(
                    entry.conversation,
                    entry.message_id,
                    text,
                    entry.now,
                    choices,
                    entry.lease_until,
                    entry.leased_by,
                    handoff_queue,
                ),
            )
            for entry in entries
            for text, choices, handoff_queue in entry.replies
        ]
        ids = outbox.add_many(tx, [line for _, line in lines])
        for (entry, _), outbox_id in zip(lines, ids, strict=True):
            entry.outbox_ids.append(outbox_id)
        return entries
