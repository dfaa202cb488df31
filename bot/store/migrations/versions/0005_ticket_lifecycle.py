"""The human side's whole ticket lifecycle (issue 11): tickets can wait on the customer
(`pending`) and end `closed` after the reopen window; they record the first human response,
resolution, reopenings, waiting care, SLA breaches and the customer's CSAT/NPS answers, and
change `updated_at` on every change (the console's live view). `ticket_events` is each ticket's
history (claimed, replied, transferred with a note, escalated, resolved, reopened, surveyed),
from which reports are computed. Agents gain the queues they work and when the console last saw
them; messages the agent who wrote them (so a bot reply never counts as a human's); a
conversation remembers the survey question it is waiting an answer to.

Additions, and on tickets a wider status CHECK and open-ticket index: a running shop keeps its
rows (SQLite copies `tickets` once, in batch mode).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

Time = sa.DateTime(timezone=True)
Key = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")

OLD_STATUS = "status IN ('waiting', 'queued', 'claimed', 'resolved')"
NEW_STATUS = "status IN ('waiting', 'queued', 'claimed', 'pending', 'resolved', 'closed')"
OLD_OPEN = "status IN ('waiting', 'queued', 'claimed')"
NEW_OPEN = "status IN ('waiting', 'queued', 'claimed', 'pending')"


def upgrade() -> None:
    op.drop_index("uq_tickets_open", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_constraint(op.f("ck_tickets_status"), type_="check")
        batch.create_check_constraint(op.f("ck_tickets_status"), NEW_STATUS)
        batch.add_column(sa.Column("updated_at", Time))
        batch.add_column(sa.Column("first_response_at", Time))
        batch.add_column(sa.Column("resolved_at", Time))
        batch.add_column(sa.Column("resolved_by", Key))
        batch.add_column(sa.Column("reopened", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("care_sent_at", Time))
        batch.add_column(sa.Column("breached_at", Time))
        batch.add_column(sa.Column("breach", sa.String(16)))
        batch.add_column(sa.Column("csat_asked_at", Time))
        batch.add_column(sa.Column("csat", sa.Integer))
        batch.add_column(sa.Column("nps", sa.Integer))
        batch.create_foreign_key(
            op.f("fk_tickets_resolved_by_agents"), "agents", ["resolved_by"], ["id"]
        )
    op.execute("UPDATE tickets SET updated_at = created_at")
    with op.batch_alter_table("tickets") as batch:
        batch.alter_column("updated_at", existing_type=Time, nullable=False)
        batch.create_index(op.f("ix_tickets_updated_at"), ["updated_at"])
    op.create_index(
        "uq_tickets_open",
        "tickets",
        ["conversation_id"],
        unique=True,
        sqlite_where=sa.text(NEW_OPEN),
        postgresql_where=sa.text(NEW_OPEN),
    )
    op.create_table(
        "ticket_events",
        sa.Column("id", Key, nullable=False),
        sa.Column("ticket_id", Key, nullable=False),
        sa.Column("at", Time, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("agent_id", Key),
        sa.Column("data", Json),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_events_ticket_id_tickets")
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_ticket_events_agent_id_agents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_events")),
    )
    op.create_index(op.f("ix_ticket_events_ticket_id_id"), "ticket_events", ["ticket_id", "id"])
    op.create_index(op.f("ix_ticket_events_kind_at"), "ticket_events", ["kind", "at"])
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("queues", Json))
        batch.add_column(sa.Column("seen_at", Time))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("agent_id", Key))
        batch.create_foreign_key(
            op.f("fk_messages_agent_id_agents"), "agents", ["agent_id"], ["id"]
        )
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("survey_ticket_id", Key))
        batch.add_column(sa.Column("survey_kind", sa.String(8)))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("survey_kind")
        batch.drop_column("survey_ticket_id")
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint(op.f("fk_messages_agent_id_agents"), type_="foreignkey")
        batch.drop_column("agent_id")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("seen_at")
        batch.drop_column("queues")
    op.drop_index(op.f("ix_ticket_events_kind_at"), table_name="ticket_events")
    op.drop_index(op.f("ix_ticket_events_ticket_id_id"), table_name="ticket_events")
    op.drop_table("ticket_events")
    op.drop_index("uq_tickets_open", table_name="tickets")
    # the old schema knows neither state: waiting on the customer is still with the agent,
    # closed is resolved
    op.execute("UPDATE tickets SET status = 'claimed' WHERE status = 'pending'")
    op.execute("UPDATE tickets SET status = 'resolved' WHERE status = 'closed'")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_index(op.f("ix_tickets_updated_at"))
        batch.drop_constraint(op.f("fk_tickets_resolved_by_agents"), type_="foreignkey")
        for column in (
            "nps",
            "csat",
            "csat_asked_at",
            "breach",
            "breached_at",
            "care_sent_at",
            "reopened",
            "resolved_by",
            "resolved_at",
            "first_response_at",
            "updated_at",
        ):
            batch.drop_column(column)
        batch.drop_constraint(op.f("ck_tickets_status"), type_="check")
        batch.create_check_constraint(op.f("ck_tickets_status"), OLD_STATUS)
    op.create_index(
        "uq_tickets_open",
        "tickets",
        ["conversation_id"],
        unique=True,
        sqlite_where=sa.text(OLD_OPEN),
        postgresql_where=sa.text(OLD_OPEN),
    )
