"""`erasures`: the record that a customer's data was erased on request (`bot customers
forget`): when, the channel, a SHA-256 of the customer's key and how many rows went.

An addition: a running shop loses nothing and the previous release ignores it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

Time = sa.DateTime(timezone=True)
Json = sa.JSON().with_variant(JSONB(), "postgresql")
Key = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("id", Key, nullable=False),
        sa.Column("at", Time, nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("customer_hash", sa.String(64), nullable=False),
        sa.Column("counts", Json, nullable=False),
        sa.Column("note", sa.Text),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasures")),
    )
    op.create_index("ix_erasures_customer_hash", "erasures", ["customer_hash"])


def downgrade() -> None:
    op.drop_index("ix_erasures_customer_hash", table_name="erasures")
    op.drop_table("erasures")
