"""A conversation: one customer on one channel, from the first message until it goes idle or a
human closes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class ConversationState(StrEnum):
    BOT = "bot"  # the bot answers
    HANDOFF = "handoff"  # a ticket is open: a human owns the conversation, the bot is silent
    CLOSED = "closed"  # idle or closed; the customer's next message opens a new one


@dataclass
class Conversation:
    id: int
    channel: str
    user_id: str
    chat_id: str
    state: ConversationState
    opened_at: datetime
    last_at: datetime
    language: str
    messages_in: int
    fallback_streak: int
    notice_window: str | None
    suggestions: list[str] = field(default_factory=list)
    #: set when the channel refused for good to deliver to this customer (blocked the bot, reply
    #: window or quota spent); the console shows it, the dispatcher stops trying
    unreachable_reason: str | None = None
    #: the satisfaction question ("csat", then "nps") the customer was asked after ticket
    #: `survey_ticket_id` was resolved; their next message may be the answer
    survey_ticket_id: int | None = None
    survey_kind: str | None = None
    is_new: bool = False


@dataclass(frozen=True)
class CustomerLine:
    """One of the customer's earlier lines in the conversation (masked) and what the bot made
    of it: a short follow-up is read together with it (bot.pipeline.followup)."""

    text: str
    at: datetime
    faq_id: str | None = None
    intent: str | None = None
    suggestions: tuple[str, ...] = ()
