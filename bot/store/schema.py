"""The tables, as SQLAlchemy Core metadata. A change here needs an Alembic revision in
bot/store/migrations/versions/ (tests compare the two and fail when they disagree).

Types fit both engines: `bigint` keys, `timestamptz` and `jsonb` on PostgreSQL; INTEGER keys
(SQLite's rowid), UTC datetimes and JSON text on SQLite. States are constrained by CHECKs, and
the invariants that concurrency could break are unique keys the database enforces: one open
conversation per customer, one open ticket per conversation, one decision per message, one row
per delivery.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from bot.domain.agent import Role
from bot.domain.conversation import ConversationState
from bot.domain.delivery import DeliveredVia, DeliveryState
from bot.domain.messages import Action, Category, Priority
from bot.domain.ticket import TicketState

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out: `timestamptz` on PostgreSQL, naive UTC on
    SQLite (which has no time zones)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Key = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def _one_of(column: str, kind: type[StrEnum], name: str) -> sa.CheckConstraint:
    values = ", ".join(f"'{member.value}'" for member in kind)
    return sa.CheckConstraint(f"{column} IN ({values})", name=name)


_OPEN_TICKET = "status IN ('queue_closed', 'queued', 'assigned', 'awaiting_customer')"
assert {s.value for s in TicketState.open()} == {
    "queue_closed",
    "queued",
    "assigned",
    "awaiting_customer",
}


def _created_at(context: Any) -> Any:
    return context.get_current_parameters()["created_at"]


conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("id", Key, primary_key=True),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("user_id", sa.String(128), nullable=False),
    sa.Column("chat_id", sa.String(128), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("opened_at", UtcDateTime, nullable=False),
    sa.Column("last_at", UtcDateTime, nullable=False),
    sa.Column("language", sa.String(8), nullable=False, server_default="zh"),
    sa.Column("messages_in", sa.Integer, nullable=False, server_default="0"),
    sa.Column("fallback_streak", sa.Integer, nullable=False, server_default="0"),
    sa.Column("notice_window", sa.String(40)),
    sa.Column("suggestions", Json),
    sa.Column("unreachable_reason", sa.Text),
    # the satisfaction question (csat, then nps) this conversation waits an answer to, and for
    # which ticket
    sa.Column("survey_ticket_id", Key),
    sa.Column("survey_kind", sa.String(8)),
    _one_of("state", ConversationState, "state"),
    sa.Index("ix_conversations_user", "channel", "user_id", "state"),
    # one open conversation per customer in each chat, whatever several workers do at once
    sa.Index(
        "uq_conversations_open",
        "channel",
        "user_id",
        "chat_id",
        unique=True,
        sqlite_where=sa.text("state != 'closed'"),
        postgresql_where=sa.text("state != 'closed'"),
    ),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", Key, primary_key=True),
    sa.Column("conversation_id", Key, sa.ForeignKey("conversations.id")),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("external_id", sa.String(128)),
    sa.Column("user_id", sa.String(128), nullable=False),
    sa.Column("direction", sa.String(3), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=False),  # masked
    # what the channel told besides the words (an image's media id, an edit, a location's
    # label), masked too: what an agent needs to fetch or see it
    sa.Column("details", Json),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("handled", sa.Boolean, nullable=False, server_default=sa.false()),
    # who wrote an outgoing line: an agent, or (NULL) the bot
    sa.Column("agent_id", Key, sa.ForeignKey("agents.id")),
    sa.CheckConstraint("direction IN ('in', 'out')", name="direction"),
    sa.UniqueConstraint("channel", "external_id", name="uq_messages_delivery"),
    sa.Index("ix_messages_conversation", "conversation_id", "id"),
    sa.Index("ix_messages_user_at", "channel", "user_id", "at"),
)

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", Key, primary_key=True),
    sa.Column("message_id", Key, sa.ForeignKey("messages.id"), nullable=False),
    sa.Column("conversation_id", Key, sa.ForeignKey("conversations.id"), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("intent", sa.String(64)),
    sa.Column("faq_id", sa.String(128)),
    sa.Column("is_open", sa.Boolean, nullable=False),
    sa.Column("record", Json, nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    _one_of("action", Action, "action"),
    sa.UniqueConstraint("message_id", name="uq_decisions_message"),  # one decision per message
    sa.Index("ix_decisions_conversation", "conversation_id", "id"),
)

tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("id", Key, primary_key=True),
    sa.Column("conversation_id", Key, sa.ForeignKey("conversations.id"), nullable=False),
    sa.Column("queue", sa.String(64), nullable=False),
    sa.Column("priority", sa.String(8), nullable=False),
    sa.Column("priority_rank", sa.Integer, nullable=False),  # 0 = urgent, for ordering
    sa.Column("category", sa.String(16), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("available_at", UtcDateTime, nullable=False),  # when the queue's humans are at work
    sa.Column("first_response_due", UtcDateTime, nullable=False),
    sa.Column("transfer_due", UtcDateTime, nullable=False),
    sa.Column("reasons", Json, nullable=False),
    sa.Column("agent_id", Key, sa.ForeignKey("agents.id")),  # the agent it is assigned to
    sa.Column("assigned_at", UtcDateTime),  # first assigned (claimed, or transferred to an agent)
    # any change: the consoles' live view (written with the ticket: its creation time)
    sa.Column("updated_at", UtcDateTime, nullable=False, default=_created_at),
    sa.Column("first_response_at", UtcDateTime),  # a human's first reply (never the bot's)
    sa.Column("resolved_at", UtcDateTime),
    sa.Column("resolved_by", Key, sa.ForeignKey("agents.id")),
    sa.Column("reopened", sa.Integer, nullable=False, server_default="0"),
    sa.Column("care_sent_at", UtcDateTime),  # the apology-and-update to a waiting customer
    sa.Column("breached_at", UtcDateTime),  # an SLA deadline passed and the ticket was escalated
    sa.Column("breach", sa.String(16)),  # which: first_response | transfer
    sa.Column("csat_asked_at", UtcDateTime),
    sa.Column("csat", sa.Integer),  # 1–5
    sa.Column("nps", sa.Integer),  # 0–10
    _one_of("status", TicketState, "status"),
    _one_of("priority", Priority, "priority"),
    _one_of("category", Category, "category"),
    sa.Index("ix_tickets_queue", "queue", "status", "priority_rank", "created_at"),
    sa.Index("ix_tickets_conversation", "conversation_id"),
    sa.Index("ix_tickets_updated_at", "updated_at"),
    # one open ticket per conversation
    sa.Index(
        "uq_tickets_open",
        "conversation_id",
        unique=True,
        sqlite_where=sa.text(_OPEN_TICKET),
        postgresql_where=sa.text(_OPEN_TICKET),
    ),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", Key, primary_key=True),
    sa.Column("conversation_id", Key, sa.ForeignKey("conversations.id"), nullable=False),
    sa.Column("reply_to", Key, sa.ForeignKey("messages.id")),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("chat_id", sa.String(128), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("choices", Json),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime, nullable=False),
    # a worker sending this row (or a channel about to return it inline) holds it until then
    sa.Column("lease_until", UtcDateTime),
    sa.Column("leased_by", sa.String(64)),
    sa.Column("sent_at", UtcDateTime),
    sa.Column("via", sa.String(8)),
    sa.Column("last_error", sa.Text),
    # this reply hands the conversation to this human queue: a channel with its own handoff
    # (WeCom 微信客服's session state) moves the customer there once the reply is sent
    sa.Column("handoff_queue", sa.String(64)),
    _one_of("status", DeliveryState, "status"),
    _one_of("via", DeliveredVia, "via"),
    sa.Index("ix_outbox_unsent", "status", "next_attempt_at", "id"),
    sa.Index("ix_outbox_conversation", "conversation_id", "id"),
)

#: what a channel keeps between messages and shares across workers: WeCom's sync cursor per
#: customer-service account, a platform's access token until it expires
channel_state = sa.Table(
    "channel_state",
    metadata,
    sa.Column("channel", sa.String(32), primary_key=True),
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("expires_at", UtcDateTime),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

#: an admin's verdict on a candidate phrasing (`bot faq learn`): accepted ones were written to
#: the FAQ file, rejected ones are not offered again
phrasing_reviews = sa.Table(
    "phrasing_reviews",
    metadata,
    sa.Column("faq_id", sa.String(128), primary_key=True),
    sa.Column("question", sa.String(200), primary_key=True),
    sa.Column("verdict", sa.String(8), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.CheckConstraint("verdict IN ('accepted', 'rejected')", name="verdict"),
)

#: the people who log in to the console (bot agents add/passwd/disable)
agents = sa.Table(
    "agents",
    metadata,
    sa.Column("id", Key, primary_key=True),
    sa.Column("login", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),  # argon2id
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", UtcDateTime),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("password_changed_at", UtcDateTime, nullable=False),
    sa.Column("last_login_at", UtcDateTime),
    sa.Column("queues", Json),  # the queues this agent works; NULL: all
    sa.Column("seen_at", UtcDateTime),  # the console last heard from them
    _one_of("role", Role, "role"),
)

#: each ticket's history: created, claimed, replied, transferred (with a note), escalated,
#: breached, care, resolved, reopened, csat, nps — what the console lists and reports count
ticket_events = sa.Table(
    "ticket_events",
    metadata,
    sa.Column("id", Key, primary_key=True),
    sa.Column("ticket_id", Key, sa.ForeignKey("tickets.id"), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("agent_id", Key, sa.ForeignKey("agents.id")),
    sa.Column("data", Json),
    sa.Index("ix_ticket_events_ticket_id_id", "ticket_id", "id"),
    sa.Index("ix_ticket_events_kind_at", "kind", "at"),
)

#: one row per transaction that changed the desk (`tickets.announce`): what the consoles' live
#: updates compare when they poll, since the tickets' own times may lie in the future
desk_changes = sa.Table("desk_changes", metadata, sa.Column("id", Key, primary_key=True))

#: cluster-wide leases by name (the scheduler's leader on SQLite; who leads, for /readyz)
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
)


#: a customer's data erased on request (`bot customers forget`, PIPL/GDPR): when, which channel,
#: a SHA-256 of the customer's key (to answer "was X erased?" without keeping X) and how many
#: rows went
erasures = sa.Table(
    "erasures",
    metadata,
    sa.Column("id", Key, primary_key=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("customer_hash", sa.String(64), nullable=False),
    sa.Column("counts", Json, nullable=False),
    sa.Column("note", sa.Text),
    sa.Index("ix_erasures_customer_hash", "customer_hash"),
)


#: requests counted per key (a client address, a channel's customer) and minute, shared by every
#: worker so a limit holds however the load balancer spreads a client's requests; rows older
#: than a couple of minutes are deleted as the counting goes on
rate_limits = sa.Table(
    "rate_limits",
    metadata,
    sa.Column("key", sa.String(96), primary_key=True),
    sa.Column("window_start", sa.BigInteger, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)
