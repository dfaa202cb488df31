"""The pipeline: one context per message, passed through the steps of the service standard.

    accept → conversation → guard → understand → hours → decide → compose → deliver

Each step is a plain function in bot.steps; a step ends the run by setting `ctx.stop`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from bot.content.config import Config, pick
from bot.content.entries import FaqEntry, IntentSpec
from bot.domain.clock import Clock
from bot.domain.messages import Action, Decision, Inbound, Outbound
from bot.hours.schedule import Schedule
from bot.pipeline import steps
from bot.store.database import Conversation, Store, TicketDraft
from bot.understanding.faq import FaqIndex, FaqMatch
from bot.understanding.intents import IntentClassifier, IntentGuess

log = logging.getLogger("bot.pipeline")


class Sender(Protocol):
    """Delivers one reply on its channel; raising leaves the reply in the outbox for a resend."""

    def send(self, message: Outbound) -> None: ...


@dataclass(frozen=True)
class Knowledge:
    """Everything learnt from the content files, swapped as a whole when they change."""

    faq: FaqIndex
    classifier: IntentClassifier
    intents: dict[str, IntentSpec]
    schedules: dict[str, Schedule]

    def faq_entry(self, entry_id: str) -> FaqEntry | None:
        return self.faq.by_id.get(entry_id)


@dataclass
class Context:
    inbound: Inbound
    now: datetime
    #: the content this message is handled with, start to end, even if a reload swaps it meanwhile
    knowledge: Knowledge
    masked: str = ""
    message_id: int | None = None
    conversation: Conversation | None = None
    language: str = "zh"
    guess: IntentGuess | None = None
    matches: list[FaqMatch] = field(default_factory=list)
    urgent_signal: str | None = None
    handoff: IntentSpec | None = None  # the intent to hand off under, if any
    route_queue: str = ""
    schedule: Schedule | None = None
    decision: Decision | None = None
    ticket: TicketDraft | None = None
    texts: list[str] = field(default_factory=list)
    outbound: list[Outbound] = field(default_factory=list)
    stop: bool = False
    error: bool = False


Step = Callable[["Pipeline", Context], None]


class Pipeline:
    def __init__(
        self, config: Config, store: Store, knowledge: Knowledge, clock: Clock, sender: Sender
    ) -> None:
        self.config = config
        self.store = store
        self.knowledge = knowledge
        self.clock = clock
        self.sender = sender
        self.steps: list[Step] = [
            steps.accept,
            steps.conversation,
            steps.guard,
            steps.understand,
            steps.hours,
            steps.decide,
            steps.compose,
            steps.deliver,
        ]

    def handle(self, inbound: Inbound) -> Context:
        """Run one message through every step; never raises for a bad message."""
        ctx = Context(inbound=inbound, now=self.clock.now(), knowledge=self.knowledge)
        try:
            for step in self.steps:
                step(self, ctx)
                if ctx.stop:
                    break
        except Exception:
            # One bad message must not take the worker down, nor leave the customer unanswered
            # (a channel may not redeliver): answer with the fallback and record why.
            log.exception(
                "message %s/%s failed in the pipeline", inbound.channel, inbound.external_id
            )
            ctx.error = True
            self._answer_after_error(ctx)
        return ctx

    def _answer_after_error(self, ctx: Context) -> None:
        if ctx.message_id is None or ctx.conversation is None or ctx.stop:
            return
        language = ctx.conversation.language
        decision = Decision(Action.FALLBACK, language=language, reasons=["error in the pipeline"])
        try:
            steps.finish(self, ctx, decision, [pick(self.config.texts.fallback, language)])
        except Exception:
            log.exception("could not answer message %s after the error", ctx.message_id)

    def send(self, message: Outbound) -> bool:
        """Send one outbox message; on failure it stays pending for `resend_pending`."""
        assert message.outbox_id is not None, "only messages already in the outbox are sent"
        try:
            self.sender.send(message)
        except Exception:
            log.exception("sending outbox %s failed; it stays pending", message.outbox_id)
            self.store.mark_failed_attempt(message.outbox_id)
            return False
        self.store.mark_sent(message.outbox_id, self.clock.now())
        return True

    def may_write(self, conversation: Conversation, now: datetime) -> bool:
        """Whether the channel still lets the bot write to this customer (WeChat: 48 h after the
        customer's last message)."""
        window = self.config.handoff.reply_windows.get(conversation.channel)
        return window is None or now - conversation.last_at <= timedelta(hours=window)

    def resend_pending(self, min_age: timedelta = timedelta(0), max_attempts: int = 5) -> int:
        """Send replies a crash or a channel failure left in the outbox; replies the channel no
        longer accepts expire. `min_age` leaves alone sends that may still be under way."""
        now = self.clock.now()
        sent = 0
        for pending in self.store.pending_outbound(now - min_age, max_attempts):
            if not self.may_write(self.store.conversation(pending.conversation_id), now):
                self.store.mark_expired(pending.id)
                continue
            sent += self.send(
                Outbound(
                    pending.channel,
                    pending.chat_id,
                    pending.text,
                    pending.conversation_id,
                    pending.id,
                )
            )
        return sent
