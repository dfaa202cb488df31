"""A conversation per chat: `uq_conversations_open` becomes one open conversation per
(channel, user_id, chat_id) instead of per (channel, user_id), so a customer who writes in a
Telegram group and in a private chat, or to two WeCom 微信客服 accounts, has one conversation in
each and is answered where they wrote.

Every open conversation a running shop has stays valid: at most one per (channel, user_id) is
at most one per (channel, user_id, chat_id). Downgrading closes all but the newest open
conversation of each customer first (the previous release allows only one).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

OPEN_CONVERSATION = "state != 'closed'"


def _open_index(columns: list[str]) -> None:
    op.create_index(
        op.f("uq_conversations_open"),
        "conversations",
        columns,
        unique=True,
        sqlite_where=sa.text(OPEN_CONVERSATION),
        postgresql_where=sa.text(OPEN_CONVERSATION),
    )


def upgrade() -> None:
    op.drop_index("uq_conversations_open", table_name="conversations")
    _open_index(["channel", "user_id", "chat_id"])


def downgrade() -> None:
    op.execute(
        "UPDATE conversations SET state = 'closed' "
        f"WHERE {OPEN_CONVERSATION} AND id < ("
        "SELECT max(newer.id) FROM conversations AS newer "
        "WHERE newer.channel = conversations.channel "
        "AND newer.user_id = conversations.user_id "
        f"AND newer.{OPEN_CONVERSATION})"
    )
    op.drop_index("uq_conversations_open", table_name="conversations")
    _open_index(["channel", "user_id"])
