"""Conversations: reading one back, marking one unreachable.

Opening, renewing and saving them happens in bulk in `bot.store.batch`, inside the transaction
that holds the customers' locks, so two workers never open two conversations for one customer
nor overwrite each other's suggestions or "not understood" streak; the partial unique index
`uq_conversations_open` is the database's own backstop."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.domain.conversation import Conversation, ConversationState, CustomerLine
from bot.store.schema import conversations, decisions, messages

#: earlier lines kept per conversation for reading a follow-up: the previous one, and the one
#: before it when the previous was itself a follow-up
LINES_KEPT = 2


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


def _recent_lines_query() -> sa.Select[Any]:
    """The last LINES_KEPT decided text lines of each conversation in `:ids` since `:since`,
    newest first. Built once: building the window and subquery cost more than running it."""
    # only the last LINES_KEPT of each conversation leave the database: a long conversation
    # costs no more than a short one (window functions: SQLite 3.25+, PostgreSQL)
    newest = (
        sa.func.row_number()
        .over(partition_by=messages.c.conversation_id, order_by=messages.c.id.desc())
        .label("newest")
    )
    recent = (
        sa.select(
            messages.c.id,
            messages.c.conversation_id,
            messages.c.text,
            messages.c.at,
            decisions.c.faq_id,
            decisions.c.intent,
            decisions.c.action,
            # only what was offered, not the whole record (its reasons) to parse on every line
            decisions.c.record["suggestions"].label("offered"),
            newest,
        )
        .join(decisions, decisions.c.message_id == messages.c.id)
        .where(
            messages.c.conversation_id.in_(sa.bindparam("ids", expanding=True)),
            messages.c.direction == "in",
            messages.c.kind == "text",
            messages.c.at >= sa.bindparam("since", type_=messages.c.at.type),
        )
        .subquery()
    )
    return (
        sa.select(
            recent.c.conversation_id,
            recent.c.text,
            recent.c.at,
            recent.c.faq_id,
            recent.c.intent,
            recent.c.offered,
            recent.c.action,
        )
        .where(recent.c.newest <= LINES_KEPT)
        .order_by(recent.c.id.desc())
    )


_RECENT_LINES = _recent_lines_query()


def recent_lines(
    conn: Connection, conversation_ids: Sequence[int], since: datetime
) -> dict[int, list[CustomerLine]]:
    """The customers' last decided text lines since `since` in these conversations, newest
    first, with the FAQ entry, intent and suggestions their decisions recorded: one query for
    a batch."""
    out: dict[int, list[CustomerLine]] = defaultdict(list)
    if not conversation_ids:
        return out
    rows = conn.execute(_RECENT_LINES, {"ids": list(conversation_ids), "since": since})
    for conversation_id, text, at, faq_id, intent, offered, action in rows:
        out[conversation_id].append(
            CustomerLine(text, at, faq_id, intent, tuple(offered or ()), action)
        )
    return out


def from_row(row: Any) -> Conversation:
    data = dict(row)
    data["state"] = ConversationState(data["state"])
    data["suggestions"] = list(data.get("suggestions") or [])
    return Conversation(**data)
