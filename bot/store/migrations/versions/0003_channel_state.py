"""What the real channels need: `channel_state` (WeCom's sync cursor per account, access tokens
shared by every worker) and the outbox's `handoff_queue` (a reply that hands the customer to a
human queue, for channels that move the session on their side too); the messages' `details`
(what a channel says about a message besides its words: an image's media id); and
`phrasing_reviews`, the admin's verdicts on phrasings learnt from customers (`bot faq learn`).

All are additions: a running shop loses nothing and the previous release ignores them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

Time = sa.DateTime(timezone=True)
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "channel_state",
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("expires_at", Time),
        sa.Column("updated_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("channel", "key", name=op.f("pk_channel_state")),
    )
    op.add_column("outbox", sa.Column("handoff_queue", sa.String(64)))
    op.add_column("messages", sa.Column("details", Json))
    op.create_table(
        "phrasing_reviews",
        sa.Column("faq_id", sa.String(128), nullable=False),
        sa.Column("question", sa.String(200), nullable=False),
        sa.Column("verdict", sa.String(8), nullable=False),
        sa.Column("at", Time, nullable=False),
        sa.CheckConstraint(
            "verdict IN ('accepted', 'rejected')", name=op.f("ck_phrasing_reviews_verdict")
        ),
        sa.PrimaryKeyConstraint("faq_id", "question", name=op.f("pk_phrasing_reviews")),
    )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("handoff_queue")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("details")
    op.drop_table("phrasing_reviews")
    op.drop_table("channel_state")
