"""Storage through SQLAlchemy Core: SQLite by default, PostgreSQL to scale out.

Only masked text is stored (see bot.privacy). Times are stored as UTC.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from bot.store.migrate import upgrade
from bot.store.schema import conversations, decisions, messages, outbox, tickets


@dataclass
class Conversation:
    id: int
    channel: str
    user_id: str
    chat_id: str
    state: str
    opened_at: datetime
    last_at: datetime
    language: str
    messages_in: int
    fallback_streak: int
    notice_window: str | None
    suggestions: list[str] = field(default_factory=list)
    unreachable_reason: str | None = None
    is_new: bool = False


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
            status="waiting" if self.available_at > now else "queued",
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
    status: str
    created_at: datetime
    available_at: datetime
    first_response_due: datetime
    transfer_due: datetime
    reasons: dict[str, Any]


@dataclass(frozen=True)
class PendingOutbound:
    id: int
    conversation_id: int
    channel: str
    chat_id: str
    text: str


class Store:
    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///") and not url.endswith(":memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = sa.create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)

    def migrate(self) -> str:
        """Bring the schema to this code's Alembic head (see bot.store.migrate); returns it."""
        return upgrade(self.engine)

    # --- inbound -----------------------------------------------------------------------------

    def accept(
        self,
        channel: str,
        external_id: str,
        user_id: str,
        kind: str,
        masked_text: str,
        at: datetime,
        stale_after: timedelta = timedelta(seconds=60),
    ) -> int | None:
        """Record an inbound delivery; None when it is a duplicate that must not be answered again.

        A duplicate whose first delivery was never handled (the worker died mid-way) and is older
        than `stale_after` is handed back for another try, so a crash does not lose the message.
        """
        row = dict(
            channel=channel,
            external_id=external_id,
            user_id=user_id,
            direction="in",
            kind=kind,
            text=masked_text,
            at=at,
        )
        try:
            with self.engine.begin() as conn:
                return _new_id(conn.execute(messages.insert().values(**row)).inserted_primary_key)
        except IntegrityError:
            pass
        with self.engine.begin() as conn:
            taken = conn.execute(
                messages.update()
                .where(
                    messages.c.channel == channel,
                    messages.c.external_id == external_id,
                    messages.c.handled.is_(False),
                    messages.c.at < at - stale_after,
                )
                .values(at=at)
                .returning(messages.c.id)
            ).scalar()
            return int(taken) if taken is not None else None

    def inbound_count(self, channel: str, user_id: str, since: datetime) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(messages)
                    .where(
                        messages.c.channel == channel,
                        messages.c.user_id == user_id,
                        messages.c.direction == "in",
                        messages.c.at >= since,
                    )
                ).scalar_one()
            )

    # --- conversations -----------------------------------------------------------------------

    def conversation_for(
        self, channel: str, user_id: str, chat_id: str, now: datetime, idle: timedelta
    ) -> Conversation:
        """The customer's open conversation, or a new one after `idle` without messages.

        A conversation a human owns (state `handoff`) never times out here: the agent closes it.
        """
        with self.engine.begin() as conn:
            row = (
                conn.execute(
                    sa.select(conversations)
                    .where(
                        conversations.c.channel == channel,
                        conversations.c.user_id == user_id,
                        conversations.c.state != "closed",
                    )
                    .order_by(conversations.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            if row and (row["state"] == "handoff" or now - row["last_at"] < idle):
                return _conversation(row)
            if row:
                conn.execute(
                    conversations.update()
                    .where(conversations.c.id == row["id"])
                    .values(state="closed")
                )
            values = dict(
                channel=channel,
                user_id=user_id,
                chat_id=chat_id,
                state="bot",
                opened_at=now,
                last_at=now,
                language="zh",
                messages_in=0,
                fallback_streak=0,
            )
            new_id = conn.execute(conversations.insert().values(**values)).inserted_primary_key
            return Conversation(id=_new_id(new_id), notice_window=None, is_new=True, **values)  # type: ignore[arg-type]

    def attach(self, message_id: int, conversation: Conversation, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                messages.update()
                .where(messages.c.id == message_id)
                .values(conversation_id=conversation.id)
            )
            conn.execute(
                conversations.update()
                .where(conversations.c.id == conversation.id)
                .values(last_at=now, messages_in=conversations.c.messages_in + 1)
            )
        conversation.messages_in += 1
        conversation.last_at = now

    def conversation(self, conversation_id: int) -> Conversation:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(conversations).where(conversations.c.id == conversation_id))
                .mappings()
                .one()
            )
            return _conversation(row)

    def transcript(self, conversation_id: int) -> list[tuple[str, str]]:
        """(direction, masked text) pairs, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(messages.c.direction, messages.c.text)
                .where(messages.c.conversation_id == conversation_id)
                .order_by(messages.c.id)
            ).all()
            return [(r.direction, r.text) for r in rows]

    # --- decisions and tickets ---------------------------------------------------------------

    def replied_intents(self, conversation_id: int) -> set[str]:
        """Intents already answered with their template in this conversation."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(decisions.c.intent).where(
                    decisions.c.conversation_id == conversation_id,
                    decisions.c.action == "reply",
                    decisions.c.intent.is_not(None),
                )
            ).all()
            return {r.intent for r in rows}

    def decisions_for(self, conversation_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(decisions.c.record)
                .where(decisions.c.conversation_id == conversation_id)
                .order_by(decisions.c.id)
            ).all()
            return [r.record if isinstance(r.record, dict) else json.loads(r.record) for r in rows]

    def tickets(self, queue: str | None = None, status: str = "queued") -> list[Ticket]:
        """Tickets in a queue, in the order agents should take them: priority, then age."""
        query = sa.select(tickets).where(tickets.c.status == status)
        if queue:
            query = query.where(tickets.c.queue == queue)
        query = query.order_by(tickets.c.priority_rank, tickets.c.created_at, tickets.c.id)
        with self.engine.connect() as conn:
            return [_ticket(row) for row in conn.execute(query).mappings()]

    # --- outbox ------------------------------------------------------------------------------

    # --- the end of one message's run ------------------------------------------------------

    def complete(
        self,
        message_id: int,
        conversation: Conversation,
        record: dict[str, Any],
        texts: list[str],
        now: datetime,
        ticket: TicketDraft | None = None,
    ) -> list[int]:
        """Record the decision, the conversation's new state, the ticket and the replies at once.

        One transaction: after a crash either all of it happened (and the outbox resends the
        replies) or none of it did (and the retried delivery is handled afresh). Returns the
        outbox ids of the replies, in order.
        """
        with self.engine.begin() as conn:
            if ticket is not None:
                record["ticket_id"] = _new_id(
                    conn.execute(
                        tickets.insert().values(
                            conversation_id=conversation.id,
                            created_at=now,
                            **ticket.row(now),
                        )
                    ).inserted_primary_key
                )
                conversation.state = "handoff"
            conn.execute(
                decisions.insert().values(
                    message_id=message_id,
                    conversation_id=conversation.id,
                    action=record["action"],
                    intent=record["intent"],
                    faq_id=record["faq_id"],
                    is_open=record["is_open"],
                    record=record,
                    at=now,
                )
            )
            conn.execute(messages.update().where(messages.c.id == message_id).values(handled=True))
            conn.execute(
                conversations.update()
                .where(conversations.c.id == conversation.id)
                .values(
                    # Another worker may have handed this conversation off meanwhile: a human
                    # owning it is never undone here.
                    state=sa.case(
                        (conversations.c.state == "handoff", "handoff"), else_=conversation.state
                    ),
                    language=conversation.language,
                    fallback_streak=conversation.fallback_streak,
                    notice_window=conversation.notice_window,
                    suggestions=conversation.suggestions,
                )
            )
            ids = [_add_reply(conn, conversation, message_id, text, now) for text in texts]
            return ids

    def release_waiting(self, queue: str, now: datetime) -> list[Ticket]:
        """Make a queue's waiting tickets available to agents: urgent first, then oldest.

        Safe with several workers: on PostgreSQL the rows are locked and skipped by the others.
        """
        with self.engine.begin() as conn:
            query = (
                sa.select(tickets.c.id)
                .where(tickets.c.queue == queue, tickets.c.status == "waiting")
                .order_by(tickets.c.priority_rank, tickets.c.created_at, tickets.c.id)
            )
            if self.engine.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            ids = [row.id for row in conn.execute(query)]
            if not ids:
                return []
            conn.execute(tickets.update().where(tickets.c.id.in_(ids)).values(status="queued"))
            rows = {
                row["id"]: row
                for row in conn.execute(sa.select(tickets).where(tickets.c.id.in_(ids))).mappings()
            }
            return [_ticket(rows[i]) for i in ids]

    def escalate(
        self, conversation_id: int, queue: str, priority: str, rank: int, now: datetime
    ) -> list[int]:
        """Move a conversation's open tickets to `queue` at `priority`, available at once."""
        with self.engine.begin() as conn:
            ids = list(
                conn.execute(
                    tickets.update()
                    .where(
                        tickets.c.conversation_id == conversation_id,
                        tickets.c.status.in_(("waiting", "queued")),
                    )
                    .values(
                        queue=queue,
                        priority=priority,
                        priority_rank=rank,
                        status="queued",
                        available_at=now,
                    )
                    .returning(tickets.c.id)
                ).scalars()
            )
            return ids

    def notify(self, conversation: Conversation, text: str, now: datetime) -> int:
        """A message the bot starts itself (not a reply): into the transcript and the outbox."""
        with self.engine.begin() as conn:
            return _add_reply(conn, conversation, None, text, now)

    def mark_sent(self, outbox_id: int, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                outbox.update()
                .where(outbox.c.id == outbox_id)
                .values(status="sent", sent_at=now, attempts=outbox.c.attempts + 1)
            )

    def mark_expired(self, outbox_id: int) -> None:
        """A reply the channel no longer accepts (its reply window has passed)."""
        with self.engine.begin() as conn:
            conn.execute(outbox.update().where(outbox.c.id == outbox_id).values(status="expired"))

    def mark_failed_attempt(self, outbox_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                outbox.update()
                .where(outbox.c.id == outbox_id)
                .values(attempts=outbox.c.attempts + 1)
            )

    def pending_outbound(
        self, created_before: datetime | None = None, max_attempts: int | None = None
    ) -> list[PendingOutbound]:
        """Replies written but not confirmed sent, oldest first."""
        query = sa.select(outbox).where(outbox.c.status == "pending").order_by(outbox.c.id)
        if created_before is not None:
            query = query.where(outbox.c.created_at <= created_before)
        if max_attempts is not None:
            query = query.where(outbox.c.attempts < max_attempts)
        with self.engine.connect() as conn:
            return [
                PendingOutbound(r.id, r.conversation_id, r.channel, r.chat_id, r.text)
                for r in conn.execute(query)
            ]


def _add_reply(
    conn: Connection, conversation: Conversation, reply_to: int | None, text: str, now: datetime
) -> int:
    """One outgoing text: a transcript line and an outbox row; returns the outbox id."""
    conn.execute(
        messages.insert().values(
            conversation_id=conversation.id,
            channel=conversation.channel,
            user_id=conversation.user_id,
            direction="out",
            kind="text",
            text=text,
            at=now,
            handled=True,
        )
    )
    return _new_id(
        conn.execute(
            outbox.insert().values(
                conversation_id=conversation.id,
                reply_to=reply_to,
                channel=conversation.channel,
                chat_id=conversation.chat_id,
                text=text,
                status="pending",
                created_at=now,
                next_attempt_at=now,
            )
        ).inserted_primary_key
    )


def _ticket(row: Any) -> Ticket:
    return Ticket(**{k: v for k, v in dict(row).items() if k != "priority_rank"})


def _new_id(key: Any) -> int:
    """The id of a row just inserted (`result.inserted_primary_key`)."""
    return int(key[0])


def _conversation(row: Any) -> Conversation:
    data = dict(row)
    data["suggestions"] = list(data.get("suggestions") or [])
    return Conversation(**data)


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
