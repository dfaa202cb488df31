"""One word per state: the stored ticket and outbox states take the words agents and operators
use (docs/architecture.md, glossary).

tickets.status: `waiting` → `queue_closed` (handed off while the queue was closed; "waiting" is
only the customer's, waiting for an agent), `claimed` → `assigned` (an agent *claims* a ticket,
the ticket is then *assigned*), `pending` → `awaiting_customer` (the agent answered, the
customer's move); the column widens to 24 characters for the longest word. `tickets.claimed_at`
becomes `assigned_at`. outbox.status: `pending` → `unsent`, and its index `ix_outbox_pending`
becomes `ix_outbox_unsent`. The CHECKs and the open-ticket unique index name the new words.

Unchanged: ticket event kinds (`claimed` records the agent's act, not a state; no event stores a
state word), conversation states, and the decisions' records.

Every stored row is rewritten in place, so an old row reads with the new words. On SQLite, which
cannot ALTER constraints, `tickets` and `outbox` are each copied twice (batch mode): once without
the old CHECK so the values can change, once to add the new CHECK.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

#: (old, new) stored values
TICKET_STATES = [
    ("waiting", "queue_closed"),
    ("claimed", "assigned"),
    ("pending", "awaiting_customer"),
]
DELIVERY_STATES = [("pending", "unsent")]

OLD_TICKET_CHECK = "status IN ('waiting', 'queued', 'claimed', 'pending', 'resolved', 'closed')"
NEW_TICKET_CHECK = (
    "status IN ('queue_closed', 'queued', 'assigned', 'awaiting_customer', 'resolved', 'closed')"
)
OLD_OPEN = "status IN ('waiting', 'queued', 'claimed', 'pending')"
NEW_OPEN = "status IN ('queue_closed', 'queued', 'assigned', 'awaiting_customer')"
OLD_OUTBOX_CHECK = "status IN ('pending', 'sent', 'failed', 'expired')"
NEW_OUTBOX_CHECK = "status IN ('unsent', 'sent', 'failed', 'expired')"

OLD_STATUS, NEW_STATUS = sa.String(16), sa.String(24)


def _rewrite(table: str, pairs: list[tuple[str, str]]) -> None:
    """One UPDATE: each old value to its new one, the other rows untouched."""
    cases = " ".join(f"WHEN '{old}' THEN '{new}'" for old, new in pairs)
    olds = ", ".join(f"'{old}'" for old, _ in pairs)
    op.execute(f"UPDATE {table} SET status = CASE status {cases} END WHERE status IN ({olds})")


def _reverse(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(new, old) for old, new in pairs]


def _open_index(condition: str) -> None:
    op.create_index(
        "uq_tickets_open",
        "tickets",
        ["conversation_id"],
        unique=True,
        sqlite_where=sa.text(condition),
        postgresql_where=sa.text(condition),
    )


def upgrade() -> None:
    op.drop_index("uq_tickets_open", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_constraint(op.f("ck_tickets_status"), type_="check")
        batch.alter_column(
            "status", existing_type=OLD_STATUS, type_=NEW_STATUS, existing_nullable=False
        )
        batch.alter_column(
            "claimed_at", new_column_name="assigned_at", existing_type=sa.DateTime(timezone=True)
        )
    _rewrite("tickets", TICKET_STATES)
    with op.batch_alter_table("tickets") as batch:
        batch.create_check_constraint(op.f("ck_tickets_status"), NEW_TICKET_CHECK)
    _open_index(NEW_OPEN)

    op.drop_index("ix_outbox_pending", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint(op.f("ck_outbox_status"), type_="check")
    _rewrite("outbox", DELIVERY_STATES)
    with op.batch_alter_table("outbox") as batch:
        batch.create_check_constraint(op.f("ck_outbox_status"), NEW_OUTBOX_CHECK)
    op.create_index(op.f("ix_outbox_unsent"), "outbox", ["status", "next_attempt_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_unsent", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint(op.f("ck_outbox_status"), type_="check")
    _rewrite("outbox", _reverse(DELIVERY_STATES))
    with op.batch_alter_table("outbox") as batch:
        batch.create_check_constraint(op.f("ck_outbox_status"), OLD_OUTBOX_CHECK)
    op.create_index(op.f("ix_outbox_pending"), "outbox", ["status", "next_attempt_at", "id"])

    op.drop_index("uq_tickets_open", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_constraint(op.f("ck_tickets_status"), type_="check")
    _rewrite("tickets", _reverse(TICKET_STATES))
    with op.batch_alter_table("tickets") as batch:
        batch.alter_column(
            "status", existing_type=NEW_STATUS, type_=OLD_STATUS, existing_nullable=False
        )
        batch.alter_column(
            "assigned_at", new_column_name="claimed_at", existing_type=sa.DateTime(timezone=True)
        )
        batch.create_check_constraint(op.f("ck_tickets_status"), OLD_TICKET_CHECK)
    _open_index(OLD_OPEN)
