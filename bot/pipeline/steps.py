"""The pipeline's steps, in order. Read top to bottom, this is the service standard."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.content.config import pick
from bot.content.entries import OUT_OF_SCOPE, IntentSpec, forbidden_in
from bot.domain.messages import Action, Category, Decision, Kind, Outbound, Priority
from bot.hours.schedule import format_moment
from bot.pipeline.handoff import ticket_for
from bot.pipeline.privacy import mask
from bot.store.database import TicketDraft
from bot.understanding.language import detect
from bot.understanding.suggestions import format_suggestions, parse_pick

if TYPE_CHECKING:
    from bot.hours.schedule import Schedule
    from bot.pipeline.runner import Context, Pipeline

log = logging.getLogger("bot.pipeline")


def accept(p: Pipeline, ctx: Context) -> None:
    """Persist the message (masked); a retried delivery of an answered message stops here."""
    inbound = ctx.inbound
    ctx.masked = mask(inbound.text)
    ctx.message_id = p.store.accept(
        inbound.channel,
        inbound.external_id,
        inbound.user_id,
        inbound.kind.value,
        ctx.masked,
        ctx.now,
    )
    if ctx.message_id is None:
        log.info("duplicate delivery %s/%s dropped", inbound.channel, inbound.external_id)
        ctx.decision = Decision(Action.DUPLICATE, reasons=["duplicate delivery"])
        ctx.stop = True


def conversation(p: Pipeline, ctx: Context) -> None:
    """Find or open the conversation; when a human owns it, the bot stays quiet."""
    inbound = ctx.inbound
    assert ctx.message_id is not None
    conv = p.store.conversation_for(
        inbound.channel,
        inbound.user_id,
        inbound.chat_id,
        ctx.now,
        timedelta(minutes=p.config.conversation.idle_minutes),
    )
    p.store.attach(ctx.message_id, conv, ctx.now)
    ctx.conversation = conv
    if conv.state == "handoff":
        cfg = p.config.guard
        signal = urgent_signal(inbound.text, cfg.urgent_keywords, cfg.urgent_exclusions)
        urgent = ctx.knowledge.intents.get(cfg.urgent_intent)
        if signal and urgent and urgent.queue:
            # Waiting for a human must not hide an emergency: move the ticket to the urgent line.
            moved = p.store.escalate(
                conv.id, urgent.queue, urgent.priority.value, urgent.priority.rank, ctx.now
            )
            decision = Decision(
                Action.HANDOFF,
                intent=urgent.name,
                queue=urgent.queue,
                priority=urgent.priority,
                category=urgent.category,
                language=conv.language,
                ticket_id=moved[0] if moved else None,
                reasons=[f"urgent signal {signal!r} while waiting: ticket escalated"],
            )
            finish(p, ctx, decision, [pick(urgent.reply, conv.language)])
            return
        finish(p, ctx, Decision(Action.SILENT, reasons=["a human owns this conversation"]), [])


def guard(p: Pipeline, ctx: Context) -> None:
    """Urgent words are spotted first; floods get one polite word, then silence — never an
    urgent message."""
    inbound, cfg = ctx.inbound, p.config.guard
    log.info("in %s/%s %s: %s", inbound.channel, inbound.external_id, inbound.user_id, ctx.masked)
    ctx.urgent_signal = urgent_signal(inbound.text, cfg.urgent_keywords, cfg.urgent_exclusions)
    if ctx.urgent_signal:
        return
    recent = p.store.inbound_count(
        inbound.channel, inbound.user_id, ctx.now - timedelta(seconds=cfg.flood_seconds)
    )
    if recent > cfg.flood_messages:
        assert ctx.conversation is not None
        language = ctx.conversation.language
        first = recent == cfg.flood_messages + 1
        texts = [pick(p.config.texts.flood, language)] if first else []
        reason = f"flood: {recent} messages in {cfg.flood_seconds}s"
        finish(p, ctx, Decision(Action.SILENT, language=language, reasons=[reason]), texts)


def urgent_signal(text: str, keywords: list[str], exclusions: list[str]) -> str | None:
    """The first urgent keyword in `text`, ignoring phrases that merely contain one (报警器,
    紧急联系人); English keywords match whole words only."""
    lowered = text.lower()
    for phrase in exclusions:
        lowered = lowered.replace(phrase.lower(), " ")
    for keyword in keywords:
        word = keyword.lower()
        if word.isascii():
            if re.search(rf"\b{re.escape(word)}\b", lowered):
                return keyword
        elif word in lowered:
            return keyword
    return None


def understand(p: Pipeline, ctx: Context) -> None:
    """Language, intent and FAQ candidates, and the queue this would go to if handed off."""
    assert ctx.conversation is not None
    text = ctx.inbound.text if ctx.inbound.kind == Kind.TEXT else ""
    ctx.language = detect(text, default=ctx.conversation.language)
    ctx.conversation.language = ctx.language
    if not text.strip():
        return
    knowledge = ctx.knowledge
    vector = knowledge.faq.embed([text])  # once, for both the intent and the FAQ search
    ctx.guess = knowledge.classifier.predict_many([text], vector)[0]
    ctx.matches = knowledge.faq.search(text, k=max(p.config.faq.suggestions, 3), vector=vector)
    ctx.route_queue = p.config.handoff.default_queue
    ctx.handoff = _handoff_intent(p, ctx)
    if ctx.handoff is not None and ctx.handoff.queue:
        ctx.route_queue = ctx.handoff.queue


def hours(p: Pipeline, ctx: Context) -> None:
    """Is the queue this message belongs to staffed right now?"""
    queue = ctx.route_queue or p.config.handoff.default_queue
    ctx.schedule = ctx.knowledge.schedules[p.config.queues[queue].schedule]


def decide(p: Pipeline, ctx: Context) -> None:
    """Hand off, answer from the FAQ, reply from a template, suggest, or ask to rephrase."""
    conv, cfg = ctx.conversation, p.config
    assert conv is not None and ctx.schedule is not None
    guess = ctx.guess
    top = ctx.matches[0] if ctx.matches else None
    decision = Decision(
        Action.FALLBACK,
        intent=guess.intent.name if guess and guess.intent else None,
        intent_score=guess.score if guess else 0.0,
        faq_score=top.score if top else 0.0,
        is_open=ctx.schedule.is_open(ctx.now),
        language=ctx.language,
    )
    reasons = decision.reasons
    thresholds = ctx.knowledge.faq.thresholds
    if guess:
        reasons.append(f"intent {guess.best} {guess.score:.2f} (threshold {cfg.intents.threshold})")
    if top:
        reasons.append(
            f"faq {top.entry.id} {top.score:.2f} (dense {top.dense:.2f}, "
            f"lexical {top.lexical:.2f}; answer ≥ {thresholds.answer:.2f}, "
            f"suggest ≥ {thresholds.suggest:.2f})"
        )
    suggestions = conv.suggestions
    conv.suggestions = []
    picked = parse_pick(ctx.inbound.text, len(suggestions)) if suggestions else None
    handoff = ctx.handoff
    ticket: TicketDraft | None = None

    if picked is not None and (entry := ctx.knowledge.faq_entry(suggestions[picked])):
        decision.action, decision.faq_id, decision.picked = Action.ANSWER, entry.id, picked + 1
        reasons.append(f"customer picked suggestion {picked + 1}")
    elif handoff is not None:
        decision.action, decision.intent = Action.HANDOFF, handoff.name
        if ctx.urgent_signal:
            reasons.append(f"urgent signal {ctx.urgent_signal!r}")
        ticket = _ticket(
            p,
            ctx,
            decision,
            handoff.queue or cfg.handoff.default_queue,
            handoff.priority,
            handoff.category,
        )
    elif top and top.score >= thresholds.answer:
        decision.action, decision.faq_id = Action.ANSWER, top.entry.id
    elif guess and guess.intent and guess.intent.action == "reply":
        if guess.intent.name in p.store.replied_intents(conv.id):
            # 不客气 once, not on every repeated thanks; the same for greetings and goodbyes.
            decision.action = Action.SILENT
            reasons.append(f"{guess.intent.name} already answered in this conversation")
        else:
            decision.action = Action.REPLY
    elif top and top.score >= thresholds.suggest and not _confidently_out_of_scope(p, ctx):
        decision.action = Action.SUGGEST
        decision.suggestions = [
            m.entry.id for m in ctx.matches[: cfg.faq.suggestions] if m.score >= thresholds.suggest
        ]
        conv.suggestions = decision.suggestions
    elif ctx.inbound.kind != Kind.TEXT or not ctx.inbound.text.strip():
        decision.action = Action.NOT_TEXT
        reasons.append(f"{ctx.inbound.kind.value} message: asked for text")
    else:
        conv.fallback_streak += 1
        reasons.append(f"not understood ({conv.fallback_streak} in a row)")
        if conv.fallback_streak >= cfg.handoff.fallbacks_before_handoff:
            decision.action = Action.HANDOFF
            reasons.append("repeated failure: handing off")
            ticket = _ticket(
                p, ctx, decision, cfg.handoff.default_queue, Priority.NORMAL, Category.CONSULT
            )
    if decision.action in (Action.ANSWER, Action.REPLY, Action.HANDOFF):
        conv.fallback_streak = 0
    ctx.decision = decision
    ctx.ticket = ticket


def compose(p: Pipeline, ctx: Context) -> None:
    """The words: answer or template, the closed notice once per window, and the 忌语 check."""
    decision, conv, texts_cfg = ctx.decision, ctx.conversation, p.config.texts
    assert decision is not None and conv is not None and ctx.schedule is not None
    lang = decision.language
    knowledge = ctx.knowledge
    texts: list[str] = []
    if decision.action == Action.ANSWER and decision.faq_id:
        texts.append(pick(knowledge.faq.by_id[decision.faq_id].answer, lang))
    elif decision.action == Action.REPLY and ctx.guess and ctx.guess.intent:
        texts.append(pick(ctx.guess.intent.reply, lang))
    elif decision.action == Action.SUGGEST:
        entries = [knowledge.faq.by_id[i] for i in decision.suggestions]
        texts.append(
            format_suggestions(
                entries,
                lang,
                pick(texts_cfg.suggest_intro, lang),
                pick(texts_cfg.suggest_outro, lang),
            )
        )
    elif decision.action == Action.FALLBACK:
        texts.append(pick(texts_cfg.fallback, lang))
    elif decision.action == Action.NOT_TEXT:
        texts.append(pick(texts_cfg.not_text, lang))
    elif decision.action == Action.HANDOFF:
        spec = knowledge.intents.get(decision.intent or "")
        acknowledgement = (
            spec.reply if spec and spec.action == "handoff" and spec.reply else texts_cfg.handoff
        )
        texts.append(pick(acknowledgement, lang))

    if not decision.is_open:
        opening = ctx.schedule.next_open(ctx.now)
        window = opening.isoformat() if opening else "never"
        if decision.action == Action.HANDOFF and opening:
            # The customer must hear when a human will pick this up, whatever was said before.
            texts.append(
                ctx.schedule.handoff_text(lang, ctx.now)
                or pick(texts_cfg.handoff_closed, lang).replace(
                    "{next_open}", format_moment(opening, lang)
                )
            )
            decision.notice = True
        elif conv.notice_window != window:
            texts.append(ctx.schedule.notice_text(lang, ctx.now))
            decision.notice = True
        if decision.notice:
            conv.notice_window = window
            decision.reasons.append(f"closed until {window}: notice sent")
    greeting = _front_schedule(p, ctx).greeting(ctx.now, lang) if conv.is_new else None
    if greeting and texts:
        texts[0] = f"{greeting}{texts[0]}"
        decision.reasons.append(f"holiday greeting {greeting!r}")
    for text in texts:  # content is checked at load; this catches texts built here
        for phrase in forbidden_in(text, texts_cfg.forbidden_phrases):
            log.error("outgoing text contains the forbidden phrase %r: %s", phrase, text)
    ctx.texts = texts


def deliver(p: Pipeline, ctx: Context) -> None:
    """Write to the outbox with the decision in one transaction, then send."""
    assert ctx.decision is not None
    finish(p, ctx, ctx.decision, ctx.texts, ctx.ticket)


# --- helpers -----------------------------------------------------------------------------------


def _handoff_intent(p: Pipeline, ctx: Context) -> IntentSpec | None:
    """The intent to hand off under: an urgent word wins, then a confident handoff intent."""
    intents = ctx.knowledge.intents
    if ctx.urgent_signal and p.config.guard.urgent_intent in intents:
        return intents[p.config.guard.urgent_intent]
    intent = ctx.guess.intent if ctx.guess else None
    return intent if intent and intent.action == "handoff" else None


def _front_schedule(p: Pipeline, ctx: Context) -> Schedule:
    """The schedule customers meet first: the default queue's."""
    return ctx.knowledge.schedules[p.config.queues[p.config.handoff.default_queue].schedule]


def _confidently_out_of_scope(p: Pipeline, ctx: Context) -> bool:
    guess = ctx.guess
    return bool(guess and guess.best == OUT_OF_SCOPE and guess.score >= p.config.intents.threshold)


def _ticket(
    p: Pipeline,
    ctx: Context,
    decision: Decision,
    queue: str,
    priority: Priority,
    category: Category,
) -> TicketDraft:
    queue_schedule = ctx.knowledge.schedules[p.config.queues[queue].schedule]
    decision.queue, decision.priority, decision.category = queue, priority, category
    decision.is_open = queue_schedule.is_open(ctx.now)
    ctx.schedule = queue_schedule
    return ticket_for(
        p.config,
        queue,
        priority,
        category,
        queue_schedule,
        ctx.now,
        {"reasons": list(decision.reasons), "intent": decision.intent, "text": ctx.masked},
    )


def finish(
    p: Pipeline,
    ctx: Context,
    decision: Decision,
    texts: list[str],
    ticket: TicketDraft | None = None,
) -> None:
    conv = ctx.conversation
    assert conv is not None and ctx.message_id is not None
    record = decision.as_record()
    ids = p.store.complete(ctx.message_id, conv, record, texts, ctx.now, ticket)
    decision.ticket_id = record.get("ticket_id")
    ctx.decision = decision
    ctx.outbound = [
        Outbound(conv.channel, conv.chat_id, text, conv.id, outbox_id)
        for text, outbox_id in zip(texts, ids, strict=True)
    ]
    for message in ctx.outbound:
        p.send(message)
    ctx.stop = True
