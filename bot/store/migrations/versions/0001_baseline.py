"""The schema as released before Alembic (the old `schema_version` 1), exactly as its
`metadata.create_all` made it: a database in the field is stamped here, a new one starts here.

The tables are a frozen copy, not bot.store.schema: no naming convention (PostgreSQL named the
keys itself, e.g. `conversations_pkey`), Integer keys, naive UTC DateTime, JSON, free-text states.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

metadata = sa.MetaData()

conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("user_id", sa.String(128), nullable=False),
    sa.Column("chat_id", sa.String(128), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("opened_at", sa.DateTime, nullable=False),
    sa.Column("last_at", sa.DateTime, nullable=False),
    sa.Column("language", sa.String(8), nullable=False, server_default="zh"),
    sa.Column("messages_in", sa.Integer, nullable=False, server_default="0"),
    sa.Column("fallback_streak", sa.Integer, nullable=False, server_default="0"),
    sa.Column("notice_window", sa.String(40)),
    sa.Column("suggestions", sa.JSON),
    sa.Index("ix_conversations_user", "channel", "user_id", "state"),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id")),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("external_id", sa.String(128)),
    sa.Column("user_id", sa.String(128), nullable=False),
    sa.Column("direction", sa.String(3), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("handled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("channel", "external_id", name="uq_messages_delivery"),
    sa.Index("ix_messages_conversation", "conversation_id", "id"),
    sa.Index("ix_messages_user_at", "channel", "user_id", "at"),
)

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("message_id", sa.Integer, sa.ForeignKey("messages.id"), nullable=False),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("intent", sa.String(64)),
    sa.Column("faq_id", sa.String(128)),
    sa.Column("is_open", sa.Boolean, nullable=False),
    sa.Column("record", sa.JSON, nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
)

tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), nullable=False),
    sa.Column("queue", sa.String(64), nullable=False),
    sa.Column("priority", sa.String(8), nullable=False),
    sa.Column("priority_rank", sa.Integer, nullable=False),
    sa.Column("category", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("available_at", sa.DateTime, nullable=False),
    sa.Column("first_response_due", sa.DateTime, nullable=False),
    sa.Column("transfer_due", sa.DateTime, nullable=False),
    sa.Column("reasons", sa.JSON, nullable=False),
    sa.Index("ix_tickets_queue", "queue", "status", "priority_rank", "created_at"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"), nullable=False),
    sa.Column("reply_to", sa.Integer, sa.ForeignKey("messages.id")),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("chat_id", sa.String(128), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("sent_at", sa.DateTime),
    sa.Index("ix_outbox_pending", "status", "id"),
)


def upgrade() -> None:
    metadata.create_all(op.get_bind(), checkfirst=False)


def downgrade() -> None:
    metadata.drop_all(op.get_bind(), checkfirst=False)
