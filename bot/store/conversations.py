"""Conversations: reading one back, marking one unreachable.

Opening, renewing and saving them happens in bulk in `bot.store.batch`, inside the transaction
that holds the customers' locks, so two workers never open two conversations for one customer
nor overwrite each other's suggestions or "not understood" streak; the partial unique index
`uq_conversations_open` is the database's own backstop."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.domain.conversation import Conversation, ConversationState
from bot.store.schema import conversations


def attach(conversation: Conversation, now: datetime) -> None:
    """A message arrived in the conversation now (written when the batch is flushed)."""
    conversation.messages_in += 1
    conversation.last_at = now


def get(conn: Connection, conversation_id: int) -> Conversation:
    row = (
        conn.execute(sa.select(conversations).where(conversations.c.id == conversation_id))
        .mappings()
        .one()
    )
    return from_row(row)


def mark_unreachable(conn: Connection, conversation_id: int, reason: str) -> None:
    conn.execute(
        conversations.update()
        .where(conversations.c.id == conversation_id)
        .values(unreachable_reason=reason[:500])
    )


def hand_back(
    conn: Connection, conversation_id: int, survey_ticket: int | None, survey_kind: str | None
) -> None:
    """A human is done: the bot answers again; the customer's next message may answer the
    survey question about that ticket."""
    handed_off = conversations.c.state == ConversationState.HANDOFF
    conn.execute(
        conversations.update()
        .where(conversations.c.id == conversation_id)
        .values(
            # a conversation closed meanwhile stays closed
            state=sa.case((handed_off, ConversationState.BOT.value), else_=conversations.c.state),
            survey_ticket_id=survey_ticket,
            survey_kind=survey_kind,
        )
    )


def from_row(row: Any) -> Conversation:
    data = dict(row)
    data["state"] = ConversationState(data["state"])
    data["suggestions"] = list(data.get("suggestions") or [])
    return Conversation(**data)
