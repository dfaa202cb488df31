"""Decisions: what the bot decided for each message, with its reasons. One per message."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.store.schema import decisions


def for_conversation(conn: Connection, conversation_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(decisions.c.record)
        .where(decisions.c.conversation_id == conversation_id)
        .order_by(decisions.c.id)
    ).all()
    return [r.record if isinstance(r.record, dict) else json.loads(r.record) for r in rows]
