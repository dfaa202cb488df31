"""The per-message context the steps fill in, and the replies they compose."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from bot.content.entries import IntentSpec
from bot.domain.conversation import Conversation
from bot.domain.messages import Decision, Inbound, Outbound
from bot.domain.ticket import TicketDraft
from bot.hours.schedule import Schedule
from bot.pipeline.knowledge import Knowledge
from bot.store.batch import Entry, Reopening, TicketUpdate
from bot.understanding.faq import FaqMatch
from bot.understanding.intents import IntentGuess

if TYPE_CHECKING:
    from bot.pipeline.ahead import Ahead


@dataclass(frozen=True)
class Reply:
    """One text for the customer; `choices` are options a channel may show as buttons."""

    text: str
    choices: tuple[str, ...] = ()
    #: this reply hands the customer to that human queue
    handoff_queue: str | None = None

    def outbound(
        self, conversation: Conversation, outbox_id: int, reply_to: int | None, external: str | None
    ) -> Outbound:
        return Outbound(
            conversation.channel,
            conversation.chat_id,
            self.text,
            conversation.id,
            outbox_id,
            self.choices,
            reply_to,
            external,
            self.handoff_queue,
        )


@dataclass
class Context:
    inbound: Inbound
    now: datetime
    #: the content this message is handled with, start to end, even if a reload swaps it meanwhile
    knowledge: Knowledge
    #: the message's text as the bot reads it: control characters stripped, length capped
    text: str = ""
    #: the message was longer than guard.max_message_chars and was cut
    truncated: bool = False
    masked: str = ""
    message_id: int | None = None
    conversation: Conversation | None = None
    language: str = "zh"
    guess: IntentGuess | None = None
    matches: list[FaqMatch] = field(default_factory=list)
    #: closeness to what no shop answers (see bot.understanding.background)
    outside: float = 0.0
    #: other companies and public offices it names that the shop never mentions
    others: tuple[str, ...] = ()
    #: "previous line + message" guessed and scored before the lock (bot.pipeline.ahead)
    ahead: Ahead | None = None
    #: the message was read with the customer's previous line: what it was (followup.py)
    followup: str | None = None
    #: the follow-up's best entry in context is also among the message's own first few: the
    #: two readings agree, so it is answered without the lead a lone message needs
    followup_agrees: bool = False
    #: alone or read in context, the message reaches the entry the customer's previous line was
    #: answered with ("and how much a day in Vietnam?" after roaming): it continues that question
    continues_entry: str | None = None
    urgent_signal: str | None = None
    #: what marked the message as a complaint (words or cues), when that decided the handoff
    complaint_signal: list[str] = field(default_factory=list)
    #: the FAQ answer was given on thin evidence: the reply names the entry's question
    thin_answer: bool = False
    #: the probability of each customer act (bot.understanding.acts.ACTS), when known
    acts: tuple[float, ...] = ()
    #: what the act model said, or the button the customer pressed, when that decided the handoff
    act_signal: str | None = None
    handoff: IntentSpec | None = None  # the intent to hand off under, if any
    #: the customer says they want no person ("不用转人工了", "no need for an agent")
    declines_person: bool = False
    route_queue: str = ""
    schedule: Schedule | None = None
    decision: Decision | None = None
    ticket: TicketDraft | None = None
    #: the handoff reopens this resolved ticket instead of opening a new one
    reopen: Reopening | None = None
    #: changes to the conversation's existing ticket (the customer answered, complained, rated)
    ticket_updates: list[TicketUpdate] = field(default_factory=list)
    #: for a new handoff to an open queue: customers ahead and the expected wait in minutes
    queue_load: tuple[int, float | None] | None = None
    #: for a handoff to an open queue: some agent of it is online (console.online_minutes)
    staffed: bool = True
    replies: list[Reply] = field(default_factory=list)
    outbound: list[Outbound] = field(default_factory=list)
    #: what the run recorded for the database (filled with ids when the batch is written)
    entry: Entry | None = None
    #: a channel that waits to return the replies inline holds them until then
    inline_until: datetime | None = None
    worker: str = ""
    stop: bool = False
    error: bool = False
    #: a redelivery of a message stored before but not decided yet (still in flight, or its
    #: worker died less than `deliveries.STALE_AFTER` ago): not answered here, and not to be
    #: acknowledged either, or nobody would ever answer it
    first_undecided: bool = False
