"""The database side of deciding several customers' messages together, in bulk.

Deciding a message reads the customer's conversation in the message's chat, recent messages,
replied intents and open ticket, and writes a decision, maybe a ticket, the conversation's new
state, transcript lines and outbox rows. Done one message at a time that is a dozen statements
each; for a batch (one message per conversation key, inside the transaction that holds their
locks) it is a dozen statements in all: `load` reads everything the batch needs, the steps
read from it and `record` into it, and `flush` writes what they recorded, in order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.domain.conversation import (
    Conversation,
    ConversationKey,
    ConversationState,
    CustomerLine,
)
from bot.domain.messages import Decision
from bot.domain.ticket import Ticket, TicketDraft, TicketState
from bot.store import agents as agent_queries
from bot.store import outbox
from bot.store import tickets as ticket_queries
from bot.store.conversations import from_row, recent_lines
from bot.store.schema import agents, conversations, decisions, messages, tickets

Customer = tuple[str, str]  # (channel, user id): flood counts are the customer's, in every chat
#: a new conversation's survey columns when no question awaits an answer
NO_SURVEY: dict[str, Any] = {"survey_ticket_id": None, "survey_kind": None}


@dataclass(frozen=True)
class Arrival:
    """One message to decide: its stored id, its customer and chat, and when it is being
    decided."""

    message_id: int
    channel: str
    user_id: str
    chat_id: str
    now: datetime

    @property
    def customer(self) -> Customer:
        return (self.channel, self.user_id)

    @property
    def key(self) -> ConversationKey:
        """The conversation it belongs to: the customer in this chat."""
        return (self.channel, self.user_id, self.chat_id)


@dataclass(frozen=True)
class TicketUpdate:
    """A change to an existing ticket that one message's run decided (the customer answered
    the agent, complained about the wait, answered the survey): columns, and a history line."""

    ticket_id: int
    values: dict[str, Any]
    event: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reopening:
    """A resolved ticket the customer needs a human for again: back to its agent (when still
    active) or to its queue, in the customer's current conversation."""

    ticket: Ticket
    agent_name: str | None

    @property
    def to_agent(self) -> bool:
        return self.agent_name is not None


#: the statements `DecisionBatch.load` runs for every round, built once (building them cost as
#: much as running them for a lone message); their lists are expanding parameters
_HANDLED = sa.select(messages.c.id, messages.c.handled).where(
    messages.c.id.in_(sa.bindparam("ids", expanding=True))
)
_OPEN_CONVERSATIONS = (
    sa.select(conversations)
    .where(
        sa.tuple_(conversations.c.channel, conversations.c.user_id, conversations.c.chat_id).in_(
            sa.bindparam("keys", expanding=True)
        ),
        conversations.c.state != ConversationState.CLOSED,
    )
    .order_by(conversations.c.id)
)
_RECENT_ARRIVALS = sa.select(messages.c.channel, messages.c.user_id, messages.c.at).where(
    sa.tuple_(messages.c.channel, messages.c.user_id).in_(
        sa.bindparam("customers", expanding=True)
    ),
    messages.c.direction == "in",
    messages.c.at >= sa.bindparam("since", type_=messages.c.at.type),
)
_REPLIED_INTENTS = (
    sa.select(decisions.c.conversation_id, decisions.c.intent)
    .where(
        decisions.c.conversation_id.in_(sa.bindparam("ids", expanding=True)),
        decisions.c.action == "reply",
        decisions.c.intent.is_not(None),
    )
    .distinct()
)
_OPEN_TICKETS = (
    sa.select(tickets, agents.c.name.label("agent_name"))
    .outerjoin(agents, agents.c.id == tickets.c.agent_id)
    .where(
        tickets.c.conversation_id.in_(sa.bindparam("ids", expanding=True)),
        tickets.c.status.in_(TicketState.open()),
    )
)


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
    ticket_updates: Sequence[TicketUpdate] = ()
    reopen: Reopening | None = None


class DecisionBatch:
    def __init__(
        self,
        tx: Connection,
        idle: timedelta,
        flood_window: timedelta,
        reopen_window: timedelta = timedelta(0),
    ) -> None:
        self.tx = tx
        self.idle = idle
        self.flood_window = flood_window
        self.reopen_window = reopen_window
        self._handled: set[int] = set()
        self._conversations: dict[ConversationKey, Conversation] = {}
        self._recent: dict[Customer, list[datetime]] = defaultdict(list)
        self._replied: dict[int, set[str]] = defaultdict(set)
        self._lines: dict[int, list[CustomerLine]] = {}
        self._open_ticket: dict[int, int] = {}
        self._tickets: dict[int, Ticket] = {}
        self._agent_names: dict[int, str] = {}
        self._queue_load: dict[tuple[str, int], tuple[int, float | None]] = {}
        self._online: dict[str, int] = {}
        self._entries: list[Entry] = []

    # --- reads ---------------------------------------------------------------------------

    def load(self, arrivals: Sequence[Arrival]) -> None:
        """Read what deciding these messages needs; open or renew their conversations, one per
        (channel, user, chat). At most one message per conversation key (the next one goes in
        the next batch)."""
        assert len({a.key for a in arrivals}) == len(arrivals), "one message per conversation"
        if not arrivals:
            return
        tx = self.tx
        ids = [a.message_id for a in arrivals]
        rows = tx.execute(_HANDLED, {"ids": ids}).all()
        # handled by another worker (a redelivery), or erased since it arrived (`bot customers
        # forget` took the customer's lock first): either way nothing is left to decide
        self._handled = {r.id for r in rows if r.handled} | (set(ids) - {r.id for r in rows})
        current: dict[ConversationKey, Any] = {}
        keys = [a.key for a in arrivals]
        for row in tx.execute(_OPEN_CONVERSATIONS, {"keys": keys}).mappings():
            current[(row["channel"], row["user_id"], row["chat_id"])] = row  # the newest wins
        stale, fresh = [], []
        surveys: dict[ConversationKey, dict[str, Any]] = {}
        for arrival in arrivals:
            found = current.get(arrival.key)
            if found and (
                found["state"] == ConversationState.HANDOFF
                or arrival.now - found["last_at"] < self.idle
            ):
                self._conversations[arrival.key] = from_row(found)
                continue
            if found:
                stale.append(found["id"])
                if found["survey_kind"]:
                    # the satisfaction question outlives the conversation: a customer who rates
                    # the next morning (in the same chat) is still answering it
                    surveys[arrival.key] = {key: found[key] for key in NO_SURVEY}
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
                    **surveys.get(a.key, NO_SURVEY),
                )
                for a in fresh
            ]
            new_ids = tx.execute(
                conversations.insert().returning(conversations.c.id, sort_by_parameter_order=True),
                values,
            ).scalars()
            for arrival, new_id, value in zip(fresh, new_ids, values, strict=True):
                self._conversations[arrival.key] = Conversation(
                    id=int(new_id), notice_window=None, is_new=True, **value
                )
        since = min(a.now for a in arrivals) - self.flood_window
        customers = list({a.customer for a in arrivals})
        for channel, user_id, at in tx.execute(
            _RECENT_ARRIVALS, {"customers": customers, "since": since}
        ):
            self._recent[(channel, user_id)].append(at)
        known = [c.id for c in self._conversations.values() if not c.is_new]
        if known:
            self._lines = recent_lines(tx, known, min(a.now for a in arrivals) - self.idle)
            for conversation_id, intent in tx.execute(_REPLIED_INTENTS, {"ids": known}):
                self._replied[conversation_id].add(intent)
            for row in tx.execute(_OPEN_TICKETS, {"ids": known}).mappings():
                fields = {k: v for k, v in row.items() if k != "agent_name"}
                ticket = ticket_queries.from_row(fields)
                self._open_ticket[ticket.conversation_id] = ticket.id
                self._tickets[ticket.conversation_id] = ticket
                if ticket.agent_id is not None and row["agent_name"]:
                    self._agent_names[ticket.agent_id] = row["agent_name"]

    def is_handled(self, message_id: int) -> bool:
        return message_id in self._handled

    def open_ticket(self, conversation_id: int) -> Ticket | None:
        """The ticket that owns this conversation, as it was when the batch was loaded."""
        return self._tickets.get(conversation_id)

    def agent_name(self, agent_id: int | None) -> str | None:
        return self._agent_names.get(agent_id) if agent_id is not None else None

    def reopenable(self, key: ConversationKey, now: datetime) -> Reopening | None:
        """The customer's ticket in this chat resolved within the reopen window (rare: read on
        demand). A ticket of another chat stays there: it is another conversation's case."""
        if self.reopen_window <= timedelta(0):
            return None
        found = ticket_queries.reopenable(self.tx, key, now - self.reopen_window)
        if found is None:
            return None
        return Reopening(found, ticket_queries.agent_name(self.tx, found.agent_id, active=True))

    def queue_load(self, queue: str, rank: int, now: datetime) -> tuple[int, float | None]:
        """Customers ahead in the queue and the expected wait in minutes (read once per batch)."""
        key = (queue, rank)
        if key not in self._queue_load:
            self._queue_load[key] = ticket_queries.queue_load(self.tx, queue, rank, now)
        return self._queue_load[key]

    def agents_online(self, queue: str, since: datetime) -> int:
        """Agents of the queue whose console was heard from since `since` (read once per batch,
        from the database: their console may talk to another worker)."""
        if queue not in self._online:
            self._online[queue] = agent_queries.online(self.tx, queue, since)
        return self._online[queue]

    def position(self, ticket: Ticket) -> int:
        """How many queued tickets an agent takes before this one."""
        return ticket_queries.ahead_of(self.tx, ticket)

    def conversation(self, key: ConversationKey) -> Conversation:
        """The conversation of the customer in this chat, opened or renewed by `load`."""
        return self._conversations[key]

    def inbound_count(self, channel: str, user_id: str, since: datetime) -> int:
        """The customer's messages since `since`, in all their chats (a flood is the
        customer's)."""
        return sum(at >= since for at in self._recent[(channel, user_id)])

    def replied_intents(self, conversation_id: int) -> set[str]:
        return self._replied[conversation_id]

    def previous_lines(self, conversation_id: int) -> list[CustomerLine]:
        """The customer's last text lines in this conversation within the idle window, newest
        first, and what the bot made of each (for reading a follow-up in context)."""
        return self._lines.get(conversation_id, [])

    # --- writes --------------------------------------------------------------------------

    def escalate(
        self,
        conversation_id: int,
        queue: str,
        priority: str,
        rank: int,
        now: datetime,
        first_response: timedelta,
        transfer: timedelta,
    ) -> list[int]:
        """Rare (an emergency while waiting for a human): written at once."""
        return ticket_queries.escalate(
            self.tx, conversation_id, queue, priority, rank, now, first_response, transfer
        )

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
        for entry in wanting:
            if entry.reopen is not None:
                self._reopen(entry, entry.reopen)
        wanting = [e for e in wanting if e.reopen is None]
        if wanting:
            new_ids = tx.execute(
                tickets.insert().returning(tickets.c.id, sort_by_parameter_order=True),
                [
                    dict(conversation_id=e.conversation.id, created_at=e.now, **e.ticket.row(e.now))
                    for e in wanting
                    if e.ticket is not None
                ],
            ).scalars()
            created = []
            for entry, ticket_id in zip(wanting, new_ids, strict=True):
                self._open_ticket[entry.conversation.id] = int(ticket_id)
                assert entry.ticket is not None
                created.append(
                    dict(
                        ticket_id=int(ticket_id),
                        kind="created",
                        at=entry.now,
                        agent_id=None,
                        data={"queue": entry.ticket.queue, "priority": entry.ticket.priority},
                    )
                )
            ticket_queries.events_many(tx, created)
            ticket_queries.announce(tx)
        for entry in entries:
            for update in entry.ticket_updates:
                ticket_queries.change(tx, update.ticket_id, entry.now, **update.values)
                if update.event:
                    ticket_queries.event(
                        tx, update.ticket_id, update.event, entry.now, None, **update.data
                    )
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
                survey_ticket_id=sa.bindparam("new_survey_ticket"),
                survey_kind=sa.bindparam("new_survey_kind"),
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
                    "new_survey_ticket": c.survey_ticket_id,
                    "new_survey_kind": c.survey_kind,
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

    def _reopen(self, entry: Entry, reopening: Reopening) -> None:
        """The resolved ticket takes the customer again: to its agent (assigned) when still
        active, otherwise queued in its queue; it follows the customer's current conversation."""
        ticket = reopening.ticket
        status = TicketState.ASSIGNED if reopening.to_agent else TicketState.QUEUED
        ticket_queries.change(
            self.tx,
            ticket.id,
            entry.now,
            status=status,
            conversation_id=entry.conversation.id,
            reopened=ticket.reopened + 1,
            resolved_at=None,
            resolved_by=None,
            agent_id=ticket.agent_id if reopening.to_agent else None,
            available_at=entry.now if not reopening.to_agent else ticket.available_at,
        )
        ticket_queries.event(
            self.tx,
            ticket.id,
            "reopened",
            entry.now,
            None,
            to=reopening.agent_name or ticket.queue,
            message_id=entry.message_id,
        )
        self._open_ticket[entry.conversation.id] = ticket.id
