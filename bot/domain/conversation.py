"""A conversation: one customer in one chat of a channel, from the first message until it goes
idle or a human closes it.

The chat is where the customer wrote: a Telegram private chat or group, a WeCom 微信客服 account
(with the customer), the webhook's chat. A customer who writes in two chats has two
conversations, each with its own state, ticket and suggestions, and every reply goes to the chat
of the message it answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

#: what a conversation is keyed by: (channel, the customer's user id, the chat id)
ConversationKey = tuple[str, str, str]


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

    @property
    def key(self) -> ConversationKey:
        return (self.channel, self.user_id, self.chat_id)


@dataclass(frozen=True)
class CustomerLine:
    """One of the customer's earlier lines in the conversation (masked) and what the bot made
    of it: a short follow-up is read together with it (bot.pipeline.followup)."""

    text: str
    at: datetime
    faq_id: str | None = None
    intent: str | None = None
    suggestions: tuple[str, ...] = ()
    #: what the bot did with it (bot.domain.messages.Action's value): which buttons came with it
    action: str = ""
