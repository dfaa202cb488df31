"""The pipeline: one context per message, through the steps of the service standard.

    accept → read → [conversation's lock: conversation → urgent → flood → apply_reading →
    with_human → survey → hours → decide → reopen → compose → record] → deliver

`accept` stores the delivery once (a retried delivery stops here). `read` is CPU work and
takes no lock, so the service can batch it across customers. Everything that reads and changes
the conversation's state runs in one transaction holding the lock of its key (the customer in
the message's chat), and ends by writing
the decision, the ticket and the replies together; sending is the dispatcher's job (or the
channel's, when it waits to answer inline).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.engine import Connection

from bot.content.config import Config
from bot.domain.clock import Clock
from bot.domain.conversation import ConversationKey, CustomerLine
from bot.domain.delivery import DeliveredVia
from bot.domain.messages import Action, Decision, Inbound, Kind, Outbound, words_first
from bot.domain.privacy import mask
from bot.pipeline import ahead, followup, steps
from bot.pipeline.context import Context
from bot.pipeline.intake import clean, details
from bot.pipeline.knowledge import Knowledge, Reading
from bot.store import conversations, deliveries, outbox
from bot.store.batch import Arrival, DecisionBatch
from bot.store.database import Store
from bot.understanding.language import detect

log = logging.getLogger("bot.pipeline")

#: a message ready for the locked phase: its context, what it says, and until when a channel
#: waits to return its replies inline (None: the dispatcher sends them)
Decidable = tuple[Context, Reading, datetime | None]


class SyncSender(Protocol):
    """Delivers one reply at once (the terminal, `bot eval`); raising leaves it in the outbox."""

    def send(self, message: Outbound) -> None: ...


def worker_name() -> str:
    """Who this process is, in leases and logs: host, pid and a random part."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Pipeline:
    def __init__(
        self,
        config: Config,
        store: Store,
        knowledge: Knowledge,
        clock: Clock,
        sender: SyncSender | None = None,
        worker: str | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.knowledge = knowledge
        self.clock = clock
        self.sender = sender
        self.worker = worker or worker_name()
        #: each conversation's last lines as this worker decided them (bot.pipeline.ahead)
        self.last_lines = ahead.LastLines()

    # --- the three phases -----------------------------------------------------------------

    def accept(self, inbound: Inbound) -> Context:
        """Store the delivery (masked); a retried delivery of a handled message stops here."""
        return self.accept_many([inbound])[0]

    def accept_many(self, inbounds: Sequence[Inbound]) -> list[Context]:
        """`accept` for several deliveries in one transaction (the service groups concurrent
        messages: one commit instead of one each)."""
        contexts = []
        for delivered in inbounds:
            inbound = words_first(delivered)
            ctx = Context(inbound=inbound, now=self.clock.now(), knowledge=self.knowledge)
            ctx.worker = self.worker
            # control characters and terminal escapes out, the length capped: for reading,
            # storage and logs alike
            cleaned = clean(inbound.text, self.config.guard.max_message_chars)
            ctx.text, ctx.truncated = cleaned.text, cleaned.truncated
            ctx.masked = mask(ctx.text)
            contexts.append(ctx)
        received = [
            deliveries.Delivery(
                ctx.inbound.channel,
                ctx.inbound.external_id,
                ctx.inbound.user_id,
                ctx.inbound.kind.value,
                ctx.masked,
                ctx.now,
                details(ctx.inbound.raw, mask),
            )
            for ctx in contexts
        ]
        with self.store.transaction() as tx:
            ids = deliveries.accept_many(tx, received)
            again = [
                (d.channel, d.external_id) for d, i in zip(received, ids, strict=True) if i is None
            ]
            undecided = deliveries.undecided(tx, again)
        for ctx, message_id in zip(contexts, ids, strict=True):
            ctx.message_id = message_id
        for ctx in contexts:
            if ctx.message_id is None:
                key = (ctx.inbound.channel, ctx.inbound.external_id)
                ctx.first_undecided = key in undecided
                self._duplicate(ctx)
        return contexts

    def read(self, texts: Sequence[str]) -> list[Reading]:
        """CPU work, no lock: several customers' texts are read in one batch."""
        return self.knowledge.read(texts, k=self.shown)

    def read_accepted(self, contexts: Sequence[Context]) -> list[Reading]:
        """`read` for accepted messages; each one that may be a follow-up is also scored in
        context as far as this worker can guess it without the lock, in the same encoder call
        (bot.pipeline.ahead). The guesses get no intent or acts: those are read under the
        lock, only where the reading in context is taken."""
        knowledge = self.knowledge
        texts = [ctx.text for ctx in contexts]
        idle = timedelta(minutes=self.config.conversation.idle_minutes)
        guessed = ahead.guesses(contexts, knowledge, self.last_lines, idle)
        scored = knowledge.score(texts + [text for _, text in guessed], k=self.shown)
        for (n, text), reading in zip(guessed, scored[len(texts) :], strict=True):
            contexts[n].ahead = ahead.Ahead(text, reading)
        return knowledge.finish(texts, scored[: len(texts)])

    @property
    def shown(self) -> int:
        """How many FAQ entries a reading keeps: the suggestion list's, and at least three."""
        return max(self.config.faq.suggestions, 3)

    def decide(
        self, ctx: Context, reading: Reading, inline_until: datetime | None = None
    ) -> Context:
        """Everything that reads and changes the customer's state, in one transaction holding
        the customer's lock; `inline_until`: the channel waits for the replies until then."""
        return self.decide_many([(ctx, reading, inline_until)])[0]

    def decide_many(self, items: Sequence[Decidable]) -> list[Context]:
        """`decide` for several messages in one transaction that holds all their conversations'
        locks (taken in one order, so two workers never deadlock). Messages go in rounds of
        one per conversation key, each round's reads and writes in bulk (`DecisionBatch`); a message
        whose run fails is answered on its own afterwards, and a round whose writes fail is
        redone message by message."""
        live = [item for item in items if not item[0].stop]
        failed: list[Context] = []
        if live:
            keys = [ctx.inbound.conversation_key for ctx, _, _ in live]
            try:
                with self.store.conversations_locked(keys) as tx:
                    for round_ in _rounds(live):
                        failed.extend(self._decide_round(tx, round_))
            except Exception:
                log.exception("a batch of %d message(s) could not be decided", len(live))
                failed = [ctx for ctx, _, _ in live]
        for ctx in failed:
            self.answer_after_error(ctx)
        return [item[0] for item in items]

    def _decide_round(self, tx: Connection, round_: list[Decidable]) -> list[Context]:
        """One message per conversation key; returns the messages that failed."""
        config = self.config
        batch = self._batch(tx)
        for ctx, _, inline_until in round_:
            ctx.now = self.clock.now()
            ctx.inline_until = inline_until
        batch.load([self._arrival(ctx) for ctx, _, _ in round_])
        failed: list[Context] = []
        recorded: list[Context] = []
        started: list[tuple[Context, Reading]] = []
        for ctx, reading, _ in round_:
            assert ctx.message_id is not None
            if batch.is_handled(ctx.message_id):  # another worker took the redelivery
                self._duplicate(ctx)
                continue
            try:
                steps.conversation(ctx, batch, config)
                if not ctx.stop:
                    steps.urgent(ctx, config)
                    steps.flood(ctx, batch, config)
            except Exception:
                self._log_failure(ctx)
                failed.append(ctx)
                continue
            started.append((ctx, reading))
        for ctx, reading in self._in_context(started, batch, failed):
            try:
                if not ctx.stop:
                    steps.apply_reading(ctx, reading, batch, config)
                    steps.with_human(ctx, batch, config)
                if not ctx.stop:
                    steps.survey(ctx, batch, config)
                if not ctx.stop:
                    steps.hours(ctx, config)
                    steps.decide(ctx, batch, config)
                    steps.reopen(ctx, batch, config)
                    steps.compose(ctx, config)
                steps.record(ctx, batch)
                recorded.append(ctx)
            except Exception:
                self._log_failure(ctx)
                failed.append(ctx)
        try:
            with tx.begin_nested():
                batch.flush()
        except Exception:
            log.exception("writing %d decision(s) failed; answering them one by one", len(recorded))
            return failed + recorded
        for ctx in recorded:
            steps.delivered(ctx)
            if ctx.inbound.kind == Kind.TEXT:
                line = CustomerLine(ctx.masked, ctx.now)
                self.last_lines.remember(ctx.inbound.conversation_key, line)
        return failed

    def _in_context(
        self, started: list[tuple[Context, Reading]], batch: DecisionBatch, failed: list[Context]
    ) -> list[tuple[Context, Reading]]:
        """Each message with the reading to decide it by: follow-ups read again with the
        customer's previous line (`followup`), all of the round's in one encoder call per
        knowledge; a message whose question fails goes to `failed`."""
        asked: list[tuple[Context, Reading, followup.Question | None]] = []
        for ctx, reading in started:
            try:
                question = None if ctx.stop else followup.question(ctx, reading, batch, self.config)
            except Exception:
                self._log_failure(ctx)
                failed.append(ctx)
                continue
            asked.append((ctx, reading, question))
        # one read per knowledge: a reload between two messages' arrivals gives each its own
        by_knowledge: dict[int, list[tuple[Context, Reading, followup.Question]]] = {}
        for ctx, reading, question in asked:
            if question is not None:
                by_knowledge.setdefault(id(ctx.knowledge), []).append((ctx, reading, question))
        settled: dict[int, Reading] = {}
        for group in by_knowledge.values():
            settled.update(self._settle(group, failed))
        decided: list[tuple[Context, Reading]] = []
        for ctx, reading, question in asked:
            if question is None:
                decided.append((ctx, reading))
            elif id(ctx) in settled:
                decided.append((ctx, settled[id(ctx)]))
        return decided

    def _settle(
        self, group: list[tuple[Context, Reading, followup.Question]], failed: list[Context]
    ) -> dict[int, Reading]:
        """`followup.settle` for the follow-ups of one knowledge, by id(ctx): "previous line +
        message" scored against the FAQ (`_in_context_scores`; the message alone was read
        already, with every entry's scores kept: `Knowledge.own_scores`), and its intent and
        acts read only where the reading in context is taken. When the reading in context
        cannot be had, the messages keep their own readings; a message whose settling raises
        goes to `failed`."""
        knowledge = group[0][0].knowledge
        texts = [question.joined(ctx.text) for ctx, _, question in group]
        out = {id(ctx): reading for ctx, reading, _ in group}
        try:
            together = self._in_context_scores(knowledge, [ctx for ctx, _, _ in group], texts)
        except Exception:
            log.exception("%d follow-up(s) could not be read in context", len(group))
            return out  # each is decided on its own reading
        taken: list[int] = []
        # what the message alone continued, before a reading in context may say otherwise
        continued = {id(ctx): ctx.continues_entry for ctx, _, _ in group}
        for n, (ctx, reading, question) in enumerate(group):
            try:
                own = knowledge.own_scores(ctx.text, reading, self.shown)
                chosen = followup.settle(ctx, own, question, together[n], self.config)
            except Exception:
                self._log_failure(ctx)
                failed.append(ctx)
                del out[id(ctx)]
                continue
            if chosen is not own:
                out[id(ctx)] = chosen
                taken.append(n)
        if not taken:
            return out
        try:
            whole = knowledge.finish([texts[n] for n in taken], [together[n] for n in taken])
        except Exception:
            log.exception("%d follow-up(s) could not be read in context", len(taken))
            for n in taken:  # decided on their own readings, as if never read in context
                ctx = group[n][0]
                out[id(ctx)] = group[n][1]
                ctx.followup, ctx.followup_agrees = None, False
                ctx.continues_entry = continued[id(ctx)]
            return out
        for n, read in zip(taken, whole, strict=True):
            key = id(group[n][0])
            out[key] = replace(read, matches=out[key].matches, others=out[key].others)
        return out

    def _in_context_scores(
        self, knowledge: Knowledge, contexts: list[Context], texts: list[str]
    ) -> list[Reading]:
        """`Knowledge.score` of each "previous line + message": the one scored before the lock
        where it was guessed right (bot.pipeline.ahead), the others in one encoder call."""
        out: list[Reading | None] = [
            ctx.ahead.reading if ctx.ahead is not None and ctx.ahead.fits(text, knowledge) else None
            for ctx, text in zip(contexts, texts, strict=True)
        ]
        missing = [n for n, reading in enumerate(out) if reading is None]
        if missing:
            depth = knowledge.context_depth(self.shown)
            scored = knowledge.score([texts[n] for n in missing], k=self.shown, depth=depth)
            for n, reading in zip(missing, scored, strict=True):
                out[n] = reading
        return [reading for reading in out if reading is not None]

    @staticmethod
    def _log_failure(ctx: Context) -> None:
        # One bad message must not take the worker down, nor leave the customer unanswered
        # (a channel may not redeliver): it is answered on its own afterwards.
        log.exception(
            "message %s/%s failed in the pipeline", ctx.inbound.channel, ctx.inbound.external_id
        )

    def _batch(self, tx: Connection) -> DecisionBatch:
        return DecisionBatch(
            tx,
            timedelta(minutes=self.config.conversation.idle_minutes),
            timedelta(seconds=self.config.guard.flood_seconds),
            timedelta(minutes=self.config.handoff.reopen_minutes),
        )

    @staticmethod
    def _arrival(ctx: Context) -> Arrival:
        assert ctx.message_id is not None
        inbound = ctx.inbound
        return Arrival(ctx.message_id, inbound.channel, inbound.user_id, inbound.chat_id, ctx.now)

    def handle(self, inbound: Inbound) -> Context:
        """All of it for one message, at once (the terminal, `bot eval`, tests); replies go out
        through `sender` when there is one. Never raises for a bad message."""
        ctx = self.accept(inbound)
        if ctx.stop:
            return ctx
        try:
            [reading] = self.read_accepted([ctx])
        except Exception:
            log.exception("message %s/%s could not be read", inbound.channel, inbound.external_id)
            self.answer_after_error(ctx)
        else:
            self.decide(ctx, reading)
        if self.sender is not None:
            self.deliver_now(ctx.outbound)
        return ctx

    def deliver_now(self, messages: Sequence[Outbound]) -> int:
        """Send through the synchronous sender; a failed reply stays unsent for the dispatcher."""
        assert self.sender is not None
        sent = 0
        for message in messages:
            assert message.outbox_id is not None
            try:
                self.sender.send(message)
            except Exception as exc:
                log.exception("sending outbox %s failed; it stays unsent", message.outbox_id)
                with self.store.transaction() as tx:
                    outbox.retry_later(tx, message.outbox_id, self.clock.now(), repr(exc))
                continue
            with self.store.transaction() as tx:
                sent += outbox.mark_sent(tx, [message.outbox_id], self.clock.now())
        return sent

    def confirm_inline(self, replies: Sequence[Outbound]) -> int:
        """The channel wrote these replies in its own response: they count as sent."""
        with self.store.transaction() as tx:
            return outbox.mark_sent(
                tx,
                [m.outbox_id for m in replies if m.outbox_id],
                self.clock.now(),
                DeliveredVia.INLINE,
            )

    def give_back(self, replies: Sequence[Outbound]) -> None:
        """The channel could not write these replies (its client went away): they are free
        at once for the dispatcher, or for a retry of the same message (`take_for_retry`)."""
        with self.store.transaction() as tx:
            outbox.release(tx, [m.outbox_id for m in replies if m.outbox_id])

    def take_for_retry(self, inbound: Inbound, until: datetime) -> tuple[list[Outbound], bool]:
        """A retried delivery whose client waits: the first delivery's replies that are still
        unsent and free, held for it until `until`; and whether more may still come."""
        with self.store.transaction() as tx:
            rows, more = outbox.take_for_retry(
                tx, inbound.channel, inbound.external_id, self.clock.now(), until, self.worker
            )
        return [row.outbound() for row in rows], more

    # --- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _duplicate(ctx: Context) -> None:
        inbound = ctx.inbound
        log.info("duplicate delivery %s/%s dropped", inbound.channel, inbound.external_id)
        ctx.decision = Decision(Action.DUPLICATE, reasons=["duplicate delivery"])
        ctx.stop = True

    def answer_after_error(self, ctx: Context) -> None:
        """The fallback, in the customer's language, for a message whose run failed."""
        if ctx.message_id is None:
            return
        ctx.error = True
        # what the failed run decided was not written (its transaction rolled back): None
        # unless the fallback below is, so the channel does not acknowledge an unanswered message
        ctx.decision = None
        ctx.outbound, ctx.ticket, ctx.stop, ctx.entry = [], None, False, None
        ctx.reopen, ctx.ticket_updates = None, []
        inbound = ctx.inbound
        try:
            with self.store.conversation_lock(inbound.conversation_key) as tx:
                batch = self._batch(tx)
                batch.load([self._arrival(ctx)])
                if batch.is_handled(ctx.message_id):
                    return
                conv = batch.conversation(inbound.conversation_key)
                conversations.attach(conv, ctx.now)
                ctx.conversation = conv
                language = detect(ctx.text, default=conv.language)
                decision = Decision(
                    Action.FALLBACK, language=language, reasons=["error in the pipeline"]
                )
                steps.finish(ctx, decision, [self.config.texts.fallback_in(language)])
                steps.record(ctx, batch)
                batch.flush()
            steps.delivered(ctx)
        except Exception:
            log.exception("could not answer message %s after the error", ctx.message_id)
            # its commit may be what failed, after the fallback was chosen: nothing was written
            ctx.decision, ctx.outbound, ctx.stop = None, [], False


def _rounds(items: Sequence[Decidable]) -> list[list[Decidable]]:
    """Split into rounds with at most one message per conversation key, each conversation's
    messages in the order they came."""
    rounds: list[list[Decidable]] = []
    seen: dict[ConversationKey, int] = {}
    for item in items:
        key = item[0].inbound.conversation_key
        index = seen.get(key, -1) + 1
        seen[key] = index
        if index == len(rounds):
            rounds.append([])
        rounds[index].append(item)
    return rounds
