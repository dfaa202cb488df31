"""The typed edges of the pipeline: what comes in, what goes out, and why."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.domain.conversation import ConversationKey


class Kind(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    VOICE = "voice"
    #: something the customer did rather than wrote; the text names it (see WELCOME_EVENT)
    EVENT = "event"
    OTHER = "other"


#: the event of a customer arriving (followed the account, pressed Start, opened the chat): the
#: bot answers with the welcome text (首问语); other events are recorded and not answered.
#: An adapter may put the customer's language ("zh", "en") in `raw["language"]`.
WELCOME_EVENT = "welcome"

#: joins, in a message's `external_id`, what a channel's message ids are unique within (the
#: webhook's user, the web chat's visitor) to the id the platform gave the message: "alice\x1fm1".
#: A control character, never in an id a platform gives (they are printable).
SCOPE_SEPARATOR = "\x1f"


def platform_id(external_id: str) -> str:
    """The id the platform gave a message, without the scope its channel stored it within."""
    return (
        external_id.split(SCOPE_SEPARATOR, 1)[1] if SCOPE_SEPARATOR in external_id else external_id
    )


@dataclass(frozen=True)
class Inbound:
    """One customer message as an adapter delivers it.

    `external_id` is the channel's own id for the delivery (Telegram update id, WeChat MsgId, …);
    together with `channel` it is the key that stops a retried delivery from being answered twice.
    `chat_id` is where it was written and where its replies go (a Telegram group or private
    chat; on WeCom the 微信客服 account with the customer, `adapters.wecom.pull.chat_id`): the
    customer in that chat is one conversation.
    """

    channel: str
    external_id: str
    user_id: str
    chat_id: str
    text: str
    at: datetime
    kind: Kind = Kind.TEXT
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def conversation_key(self) -> ConversationKey:
        """The conversation this message belongs to: its customer in its chat."""
        return (self.channel, self.user_id, self.chat_id)


#: what a customer sends that is not words; with words attached (a caption) it is read as text
MEDIA = frozenset({Kind.IMAGE, Kind.VOICE, Kind.OTHER})


def words_first(inbound: Inbound) -> Inbound:
    """A photo, file or voice note that came with words (Telegram's caption, a web chat's
    description) is the customer writing: it is read, stored and answered as text, like any
    channel's text, so "紧急！插座冒烟了" under a photo reaches the urgent line. What was attached
    stays in `raw["media"]` (the adapter keeps its file id there too) for the agent. Media
    without words is returned as it came and gets the "words only" reply."""
    if inbound.kind not in MEDIA or not inbound.text.strip():
        return inbound
    return replace(inbound, kind=Kind.TEXT, raw={**inbound.raw, "media": inbound.kind.value})


@dataclass(frozen=True)
class Outbound:
    """One reply or notice on its way to a customer.

    `choices` are the options a richer channel can show as buttons (suggestions, CSAT scores);
    the text always lists them too, for channels that cannot. `reply_to` is the id of the stored
    inbound message this answers (None for a notice the bot starts itself), `external_reply_to`
    the channel's own id of it, for channels that quote or thread replies. `handoff_queue`
    marks the reply that hands the customer to a human queue (WeCom moves its session there).
    """

    channel: str
    chat_id: str
    text: str
    conversation_id: int
    outbox_id: int | None = None
    choices: tuple[str, ...] = ()
    reply_to: int | None = None
    external_reply_to: str | None = None
    handoff_queue: str | None = None


class Action(StrEnum):
    ANSWER = "answer"  # answered from the FAQ
    REPLY = "reply"  # a template reply (greeting, thanks, …)
    SUGGEST = "suggest"  # "did you mean one of these?"
    FALLBACK = "fallback"  # not understood; ask to rephrase
    NOT_TEXT = "not_text"  # an image, voice or sticker: ask for words
    HANDOFF = "handoff"  # ticket in a human queue
    SILENT = "silent"  # a human owns the conversation, or the message is a flood
    DUPLICATE = "duplicate"  # a retried delivery already answered


class Priority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """Sort key: urgent first."""
        return list(Priority).index(self)

    def raised(self) -> Priority:
        """One step up: low → normal → high → urgent (urgent stays urgent)."""
        return list(Priority)[max(0, self.rank - 1)]


class Category(StrEnum):
    CONSULT = "consult"
    COMPLAINT = "complaint"
    AFTER_SALES = "after_sales"
    TECH = "tech"


@dataclass
class Decision:
    """What the bot decided for one message, with every reason needed to explain it later."""

    action: Action
    intent: str | None = None
    intent_score: float = 0.0
    faq_id: str | None = None
    faq_score: float = 0.0
    suggestions: list[str] = field(default_factory=list)
    picked: int | None = None  # 1-based number of the suggestion the customer picked
    queue: str | None = None
    priority: Priority | None = None
    category: Category | None = None
    ticket_id: int | None = None
    is_open: bool = True
    notice: bool = False
    language: str = "zh"
    reasons: list[str] = field(default_factory=list)

    def as_record(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "intent": self.intent,
            "intent_score": round(self.intent_score, 4),
            "faq_id": self.faq_id,
            "faq_score": round(self.faq_score, 4),
            "suggestions": self.suggestions,
            "picked": self.picked,
            "queue": self.queue,
            "priority": self.priority.value if self.priority else None,
            "category": self.category.value if self.category else None,
            "ticket_id": self.ticket_id,
            "is_open": self.is_open,
            "notice": self.notice,
            "language": self.language,
            "reasons": self.reasons,
        }
