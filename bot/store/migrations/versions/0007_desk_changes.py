"""`desk_changes`: one row per transaction that changed the desk (`tickets.announce`), for the
consoles' live-update check on SQLite (and on PostgreSQL while LISTEN is down).

The check used to be the tickets' count and newest `updated_at`; one ticket stamped in the
future (`bot chat --at`, a clock ahead) kept that newest time still, and every console stopped
refreshing. Rows are only inserted (no lock another worker waits for) and the old ones pruned.
An addition: the previous release ignores the table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

Key = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "desk_changes",
        sa.Column("id", Key, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desk_changes")),
    )


def downgrade() -> None:
    op.drop_table("desk_changes")
