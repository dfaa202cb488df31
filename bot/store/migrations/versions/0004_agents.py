"""The console's agents: who may log in, with which role, their argon2 password hash, and the
failed-login count and lock that stop password guessing; and on tickets, the agent who claimed
one and when. Additions: nothing else changes."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

Time = sa.DateTime(timezone=True)
Key = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", Key, nullable=False),
        sa.Column("login", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", Time),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("password_changed_at", Time, nullable=False),
        sa.Column("last_login_at", Time),
        sa.CheckConstraint("role IN ('agent', 'supervisor', 'admin')", name=op.f("ck_agents_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("login", name=op.f("uq_agents_login")),
    )
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("agent_id", Key))
        batch.add_column(sa.Column("claimed_at", Time))
        batch.create_foreign_key(op.f("fk_tickets_agent_id_agents"), "agents", ["agent_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_constraint(op.f("fk_tickets_agent_id_agents"), type_="foreignkey")
        batch.drop_column("claimed_at")
        batch.drop_column("agent_id")
    op.drop_table("agents")
