"""What the agent console shows, as plain values: built by `Desk` in the store's thread pool,
rendered by the console's templates. Nothing here touches the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.domain.ticket import Ticket


@dataclass(frozen=True)
class QueueSummary:
    """One queue at a glance: how many wait, for how long, and how many are late."""

    queue: str
    #: queued while the queue was closed; agents get them at opening time
    queue_closed: int
    #: ready for agents ("claim next" takes the first)
    queued: int
    #: with an agent (assigned, or awaiting the customer)
    assigned: int
    #: seconds the oldest queued ticket has waited since it became available; None: none queued
    oldest_wait_seconds: float | None
    #: open tickets past their first-response or transfer deadline
    breached: int
    #: the earliest first-response deadline among queued tickets
    next_due: datetime | None
    #: is the queue's schedule open now
    is_open: bool


@dataclass(frozen=True)
class TicketLine:
    """A ticket in a list: enough to pick it."""

    id: int
    queue: str
    priority: str
    category: str
    status: str
    channel: str
    #: the customer as the console names them (channel user id, shortened)
    customer: str
    created_at: datetime
    available_at: datetime
    first_response_due: datetime
    transfer_due: datetime
    #: past a deadline that was not met
    breached: bool
    agent_name: str | None
    #: a human's first reply (the first-response clock stopped then)
    first_response_at: datetime | None
    #: the customer's last words (masked), shortened
    last_text: str
    #: their satisfaction score (1–5), once given
    csat: int | None = None


@dataclass(frozen=True)
class TranscriptLine:
    at: datetime
    #: "customer", "bot", or "agent"
    author: str
    #: the agent's name for agent lines
    agent_name: str | None
    text: str
    #: for the customer's lines the bot decided on: what it did (an Action's value) ...
    action: str | None = None
    #: ... and why, in the pipeline's own words (English, as the logs and `bot chat` say it)
    decision: str | None = None
    #: for a number (or "第一个") that picked a suggestion: the question it picked, as the
    #: suggestion read (the web chat's button shows it; the stored text is the number)
    picked: str | None = None


@dataclass(frozen=True)
class TicketEvent:
    """A step in a ticket's history: created, claimed, replied, transferred (with a note),
    escalated, breached, resolved, reopened, csat, nps."""

    at: datetime
    kind: str
    agent_name: str | None
    data: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Suggestion:
    """Agent assist: a FAQ entry that may answer the customer's last question."""

    faq_id: str
    question: str
    #: the answer in the customer's language, ready to insert
    answer: str
    score: float


@dataclass(frozen=True)
class ReplyWarning:
    """Why a reply should be looked at again before it goes out: a forbidden phrase (忌语), or
    asking the customer for a password."""

    kind: str  # "forbidden" | "password"
    phrase: str


@dataclass(frozen=True)
class ConversationLine:
    """One of a customer's conversations with the bot (a ticket page lists them all, in every
    chat the customer wrote in)."""

    opened_at: datetime
    last_at: datetime
    #: the customer's messages in it
    messages_in: int
    #: tickets it opened
    tickets: int
    #: the chat it happened in (a Telegram group or private chat, a WeCom account): its replies
    #: went there
    chat: str = ""
    #: the conversation of the ticket shown
    current: bool = False


@dataclass(frozen=True)
class TicketView:
    ticket: Ticket
    channel: str
    customer: str
    language: str
    #: the channel refused for good to deliver to this customer (blocked the bot, window spent)
    unreachable_reason: str | None
    transcript: list[TranscriptLine]
    events: list[TicketEvent]
    agent_name: str | None
    #: this agent owns the ticket and may reply and resolve
    mine: bool
    #: queues and agents (login, name) it may be transferred to
    queues: list[str]
    agents: list[tuple[str, str]]
    csat: int | None
    nps: int | None
    breached: bool
    #: the same customer's other tickets the agent may see, the latest first ...
    earlier_tickets: list[TicketLine] = field(default_factory=list)
    #: ... and their conversations (same channel and customer id)
    conversations: list[ConversationLine] = field(default_factory=list)


@dataclass(frozen=True)
class AgentLoad:
    login: str
    name: str
    role: str
    #: seen by the console within the last few minutes
    online: bool
    open_tickets: int
    resolved_today: int


@dataclass(frozen=True)
class SupervisorView:
    queues: list[QueueSummary]
    breaches: list[TicketLine]
    agents: list[AgentLoad]
    #: today (in the default queue's time zone): tickets created, resolved, customer messages in,
    #: CSAT answers and their mean
    created_today: int
    resolved_today: int
    messages_today: int
    csat_answers_today: int
    csat_mean_today: float | None
