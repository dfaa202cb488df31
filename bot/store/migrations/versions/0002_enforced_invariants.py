"""From the baseline to the schema with database-enforced invariants (bot/store/schema.py).

What changes for a running shop: the database itself now refuses a second open conversation per
customer, a second open ticket per conversation, a second decision per message and unknown states;
the outbox gains what retries and leases need; `leases` is new. On PostgreSQL keys become bigint,
times timestamptz (the stored values were naive UTC) and JSON jsonb, and the keys PostgreSQL had
named itself get the names of the naming convention, so later revisions can refer to them.

The old code could race into the duplicates the new unique keys forbid, so they are repaired
first: the newest open conversation per customer and the newest open ticket per conversation stay
open, the others are closed or resolved; only the first decision per message is kept.

On SQLite, which cannot ALTER constraints, each table is copied once (batch mode); the caller
turns foreign keys off for the copy and checks them afterwards.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Time = sa.DateTime(timezone=True)

OPEN_CONVERSATION = "state != 'closed'"
OPEN_TICKET = "status IN ('waiting', 'queued', 'claimed')"

CHECKS: dict[str, dict[str, str]] = {
    "conversations": {"ck_conversations_state": "state IN ('bot', 'handoff', 'closed')"},
    "messages": {"ck_messages_direction": "direction IN ('in', 'out')"},
    "decisions": {
        "ck_decisions_action": "action IN ('answer', 'reply', 'suggest', 'fallback', "
        "'not_text', 'handoff', 'silent', 'duplicate')"
    },
    "tickets": {
        "ck_tickets_status": "status IN ('waiting', 'queued', 'claimed', 'resolved')",
        "ck_tickets_priority": "priority IN ('urgent', 'high', 'normal', 'low')",
        "ck_tickets_category": "category IN ('consult', 'complaint', 'after_sales', 'tech')",
    },
    "outbox": {
        "ck_outbox_status": "status IN ('pending', 'sent', 'failed', 'expired')",
        "ck_outbox_via": "via IN ('api', 'inline')",
    },
}

#: PostgreSQL: the columns whose types change
KEYS = {
    "conversations": ["id"],
    "messages": ["id", "conversation_id"],
    "decisions": ["id", "message_id", "conversation_id"],
    "tickets": ["id", "conversation_id"],
    "outbox": ["id", "conversation_id", "reply_to"],
}
TIMES = {
    "conversations": ["opened_at", "last_at"],
    "messages": ["at"],
    "decisions": ["at"],
    "tickets": ["created_at", "available_at", "first_response_due", "transfer_due"],
    "outbox": ["created_at", "sent_at"],
}
JSONS = {"conversations": ["suggestions"], "decisions": ["record"], "tickets": ["reasons"]}

#: PostgreSQL: (table, name PostgreSQL gave it, name under the naming convention)
RENAMES = [
    ("conversations", "conversations_pkey", "pk_conversations"),
    ("messages", "messages_pkey", "pk_messages"),
    ("decisions", "decisions_pkey", "pk_decisions"),
    ("tickets", "tickets_pkey", "pk_tickets"),
    ("outbox", "outbox_pkey", "pk_outbox"),
    ("messages", "messages_conversation_id_fkey", "fk_messages_conversation_id_conversations"),
    ("decisions", "decisions_message_id_fkey", "fk_decisions_message_id_messages"),
    (
        "decisions",
        "decisions_conversation_id_fkey",
        "fk_decisions_conversation_id_conversations",
    ),
    ("tickets", "tickets_conversation_id_fkey", "fk_tickets_conversation_id_conversations"),
    ("outbox", "outbox_conversation_id_fkey", "fk_outbox_conversation_id_conversations"),
    ("outbox", "outbox_reply_to_fkey", "fk_outbox_reply_to_messages"),
]

#: Keep the newest open conversation per customer, the newest open ticket per conversation and
#: the first decision per message (plain correlated subqueries: SQLite and PostgreSQL alike).
REPAIRS = [
    f"""UPDATE conversations SET state = 'closed'
    WHERE {OPEN_CONVERSATION} AND id < (
        SELECT MAX(newer.id) FROM conversations AS newer
        WHERE newer.channel = conversations.channel AND newer.user_id = conversations.user_id
        AND newer.{OPEN_CONVERSATION})""",
    f"""UPDATE tickets SET status = 'resolved'
    WHERE {OPEN_TICKET} AND id < (
        SELECT MAX(newer.id) FROM tickets AS newer
        WHERE newer.conversation_id = tickets.conversation_id AND newer.{OPEN_TICKET})""",
    """DELETE FROM decisions WHERE id > (
        SELECT MIN(earlier.id) FROM decisions AS earlier
        WHERE earlier.message_id = decisions.message_id)""",
]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in REPAIRS:
        op.execute(sa.text(statement))
    if postgres:
        _retype(key="bigint", time="timestamptz", json="jsonb")
        for table, old, new in RENAMES:
            op.execute(f'ALTER TABLE {table} RENAME CONSTRAINT "{old}" TO "{new}"')

    op.add_column("conversations", sa.Column("unreachable_reason", sa.Text))
    op.add_column("outbox", sa.Column("choices", Json))
    op.add_column("outbox", sa.Column("next_attempt_at", Time))
    op.add_column("outbox", sa.Column("lease_until", Time))
    op.add_column("outbox", sa.Column("leased_by", sa.String(64)))
    op.add_column("outbox", sa.Column("via", sa.String(8)))
    op.add_column("outbox", sa.Column("last_error", sa.Text))
    op.execute("UPDATE outbox SET next_attempt_at = created_at")
    op.execute("UPDATE outbox SET via = 'api' WHERE status = 'sent'")

    for table, checks in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for name, condition in checks.items():
                batch.create_check_constraint(op.f(name), condition)
            if table == "decisions":
                batch.create_unique_constraint(op.f("uq_decisions_message"), ["message_id"])
            if table == "outbox":
                batch.alter_column("next_attempt_at", existing_type=Time, nullable=False)
                batch.drop_index("ix_outbox_pending")

    op.create_index(op.f("ix_outbox_pending"), "outbox", ["status", "next_attempt_at", "id"])
    op.create_index(op.f("ix_outbox_conversation"), "outbox", ["conversation_id", "id"])
    op.create_index(op.f("ix_decisions_conversation"), "decisions", ["conversation_id", "id"])
    op.create_index(op.f("ix_tickets_conversation"), "tickets", ["conversation_id"])
    op.create_index(
        op.f("uq_conversations_open"),
        "conversations",
        ["channel", "user_id"],
        unique=True,
        sqlite_where=sa.text(OPEN_CONVERSATION),
        postgresql_where=sa.text(OPEN_CONVERSATION),
    )
    op.create_index(
        op.f("uq_tickets_open"),
        "tickets",
        ["conversation_id"],
        unique=True,
        sqlite_where=sa.text(OPEN_TICKET),
        postgresql_where=sa.text(OPEN_TICKET),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )


def downgrade() -> None:
    """Back to the baseline's tables; the repaired duplicates stay repaired. Fails on PostgreSQL
    if an id no longer fits in an integer."""
    postgres = op.get_bind().dialect.name == "postgresql"
    op.drop_table("leases")
    op.drop_index("uq_tickets_open", table_name="tickets")
    op.drop_index("uq_conversations_open", table_name="conversations")
    op.drop_index("ix_tickets_conversation", table_name="tickets")
    op.drop_index("ix_decisions_conversation", table_name="decisions")
    op.drop_index("ix_outbox_conversation", table_name="outbox")
    op.drop_index("ix_outbox_pending", table_name="outbox")

    for table, checks in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for name in checks:
                batch.drop_constraint(op.f(name), type_="check")
            if table == "decisions":
                batch.drop_constraint(op.f("uq_decisions_message"), type_="unique")
            if table == "conversations":
                batch.drop_column("unreachable_reason")
            if table == "outbox":
                for column in (
                    "choices",
                    "next_attempt_at",
                    "lease_until",
                    "leased_by",
                    "via",
                    "last_error",
                ):
                    batch.drop_column(column)
    op.create_index("ix_outbox_pending", "outbox", ["status", "id"])

    if postgres:
        for table, old, new in RENAMES:
            op.execute(f'ALTER TABLE {table} RENAME CONSTRAINT "{new}" TO "{old}"')
        _retype(key="integer", time="timestamp", json="json")


def _retype(key: str, time: str, json: str) -> None:
    """PostgreSQL: one ALTER TABLE per table (one rewrite), then the id sequences to match.

    Stored times are UTC: `AT TIME ZONE 'UTC'` reads a naive one as UTC and writes an aware one
    back as naive UTC, whatever the session's time zone."""
    for table in KEYS:
        changes = [f'ALTER COLUMN "{c}" TYPE {key}' for c in KEYS[table]]
        changes += [
            f"""ALTER COLUMN "{c}" TYPE {time} USING "{c}" AT TIME ZONE 'UTC'"""
            for c in TIMES[table]
        ]
        changes += [
            f'ALTER COLUMN "{c}" TYPE {json} USING "{c}"::{json}' for c in JSONS.get(table, [])
        ]
        op.execute(f"ALTER TABLE {table} " + ", ".join(changes))
        op.execute(f"ALTER SEQUENCE {table}_id_seq AS {key}")
