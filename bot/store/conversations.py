"""Conversations. Every read-modify-write here runs inside the customer's lock
(`Store.customer_lock`), so two workers never open two conversations for one customer nor
overwrite each other's suggestions or "not understood" streak; the partial unique index
`uq_conversations_open` is the database's own backstop."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.domain.conversation import Conversation, ConversationState
from bot.store.schema import conversations


def current(
    conn: Connection, channel: str, user_id: str, chat_id: str, now: datetime, idle: timedelta
) -> Conversation:
    """The customer's open conversation, or a new one after `idle` without messages.

    A conversation a human owns (state `handoff`) never times out here: the agent closes it.
    """
    row = (
        conn.execute(
            sa.select(conversations)
            .where(
                conversations.c.channel == channel,
                conversations.c.user_id == user_id,
                conversations.c.state != ConversationState.CLOSED,
            )
            .order_by(conversations.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    if row and (row["state"] == ConversationState.HANDOFF or now - row["last_at"] < idle):
        return _conversation(row)
    if row:
        conn.execute(
            conversations.update()
            .where(conversations.c.id == row["id"])
            .values(state=ConversationState.CLOSED)
        )
    values: dict[str, Any] = dict(
        channel=channel,
        user_id=user_id,
        chat_id=chat_id,
        state=ConversationState.BOT,
        opened_at=now,
        last_at=now,
        language="zh",
        messages_in=0,
        fallback_streak=0,
    )
    new_id = conn.execute(
        conversations.insert().values(**values).returning(conversations.c.id)
    ).scalar_one()
    return Conversation(id=int(new_id), notice_window=None, is_new=True, **values)


def attach(conversation: Conversation, now: datetime) -> None:
    """A message arrived in the conversation now (written by `save` at the end of the run)."""
    conversation.messages_in += 1
    conversation.last_at = now


def save(conn: Connection, conversation: Conversation) -> None:
    """Write back what handling a message changed (under the customer's lock)."""
    conn.execute(
        conversations.update()
        .where(conversations.c.id == conversation.id)
        .values(
            state=conversation.state,
            last_at=conversation.last_at,
            messages_in=conversation.messages_in,
            language=conversation.language,
            fallback_streak=conversation.fallback_streak,
            notice_window=conversation.notice_window,
            suggestions=conversation.suggestions,
        )
    )


def get(conn: Connection, conversation_id: int) -> Conversation:
    row = (
        conn.execute(sa.select(conversations).where(conversations.c.id == conversation_id))
        .mappings()
        .one()
    )
    return _conversation(row)


def mark_unreachable(conn: Connection, conversation_id: int, reason: str) -> None:
    conn.execute(
        conversations.update()
        .where(conversations.c.id == conversation_id)
        .values(unreachable_reason=reason[:500])
    )


def _conversation(row: Any) -> Conversation:
    data = dict(row)
    data["state"] = ConversationState(data["state"])
    data["suggestions"] = list(data.get("suggestions") or [])
    return Conversation(**data)
