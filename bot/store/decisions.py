"""Decisions: what the bot decided for each message, with its reasons. One per message."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.store.schema import decisions


def record(
    conn: Connection, message_id: int, conversation_id: int, record: dict[str, Any], now: datetime
) -> None:
    conn.execute(
        decisions.insert().values(
            message_id=message_id,
            conversation_id=conversation_id,
            action=record["action"],
            intent=record["intent"],
            faq_id=record["faq_id"],
            is_open=record["is_open"],
            record=record,
            at=now,
        )
    )


def replied_intents(conn: Connection, conversation_id: int) -> set[str]:
    """Intents already answered with their template in this conversation."""
    rows = conn.execute(
        sa.select(decisions.c.intent).where(
            decisions.c.conversation_id == conversation_id,
            decisions.c.action == "reply",
            decisions.c.intent.is_not(None),
        )
    ).all()
    return {r.intent for r in rows}


def for_conversation(conn: Connection, conversation_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(decisions.c.record)
        .where(decisions.c.conversation_id == conversation_id)
        .order_by(decisions.c.id)
    ).all()
    return [r.record if isinstance(r.record, dict) else json.loads(r.record) for r in rows]
