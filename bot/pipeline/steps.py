"""The pipeline's steps, in order. Read top to bottom, this is the service standard.

Every step here runs inside one database transaction that holds the conversation's lock (the
customer in the message's chat, see `Pipeline.decide_many`); each receives the settings it uses
and, when it reads or writes the conversation's state, the `DecisionBatch` that holds it
(several conversations' messages are decided together, their reads and writes done in bulk). A
step ends the run early by calling `finish`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.content.config import Config, TextsConfig, pick
from bot.content.entries import IntentSpec, forbidden_in
from bot.domain.conversation import Conversation, ConversationState, CustomerLine
from bot.domain.messages import Action, Category, Decision, Kind, Priority
from bot.domain.reactions import declines_person
from bot.domain.ticket import TicketState
from bot.hours.schedule import Schedule, format_moment
from bot.pipeline import rules
from bot.pipeline.complaint import complaint_signal
from bot.pipeline.context import Context, Reply
from bot.pipeline.knowledge import Reading
from bot.pipeline.needs_person import (
    act_handoff,
    asks_for_person,
    complaint_act,
    person_intent,
    unrelated_act,
)
from bot.pipeline.survey import parse_score
from bot.pipeline.urgent import urgent_signal
from bot.store import conversations
from bot.store.batch import DecisionBatch, Entry, TicketUpdate
from bot.understanding.faq import FaqMatch
from bot.understanding.language import detect
from bot.understanding.suggestions import format_suggestions, parse_pick, question_in

log = logging.getLogger("bot.pipeline")


def conversation(ctx: Context, batch: DecisionBatch, config: Config) -> None:
    """Find or open the conversation of the customer in the message's chat (a human may own
    it: see `with_human`); its replies go to that chat."""
    conv = batch.conversation(ctx.inbound.conversation_key)
    conversations.attach(conv, ctx.now)
    ctx.conversation = conv


def urgent(ctx: Context, config: Config) -> None:
    """Urgent words are spotted first, before anything can silence the message (the flood
    rule) or answer it from the FAQ."""
    inbound, cfg = ctx.inbound, config.guard
    log.info("in %s/%s %s: %s", inbound.channel, inbound.external_id, inbound.user_id, ctx.masked)
    ctx.urgent_signal = urgent_signal(ctx.text, cfg.urgent_keywords, cfg.urgent_exclusions)


def flood(ctx: Context, batch: DecisionBatch, config: Config) -> None:
    """Floods get one polite word, then silence — never an urgent message. The word says so:
    the messages of a flood stay in the transcript but are not answered one by one."""
    inbound, cfg = ctx.inbound, config.guard
    if ctx.urgent_signal:
        return
    recent = batch.inbound_count(
        inbound.channel, inbound.user_id, ctx.now - timedelta(seconds=cfg.flood_seconds)
    )
    if recent > cfg.flood_messages:
        assert ctx.conversation is not None
        language = ctx.conversation.language
        first = recent == cfg.flood_messages + 1
        notice = pick(config.texts.flood, language).replace("{seconds}", str(cfg.flood_seconds))
        texts = [notice] if first else []
        reason = f"flood: {recent} messages in {cfg.flood_seconds}s"
        finish(ctx, Decision(Action.SILENT, language=language, reasons=[reason]), texts)


def apply_reading(ctx: Context, reading: Reading, batch: DecisionBatch, config: Config) -> None:
    """What the message says (read before the lock, in a batch with other customers'), the
    customer's language, and the queue this would go to if handed off."""
    assert ctx.conversation is not None
    text = ctx.text if ctx.inbound.kind == Kind.TEXT else ""
    told = ctx.inbound.raw.get("language")
    language = told if told in config.content.languages else ctx.conversation.language
    ctx.language = detect(text, default=language)
    ctx.conversation.language = ctx.language
    if not text.strip():
        return
    ctx.guess, ctx.matches = reading.guess, reading.matches
    ctx.outside = reading.outside
    ctx.others = reading.others
    ctx.acts = reading.acts
    ctx.route_queue = config.handoff.default_queue
    ctx.declines_person = declines_person(text)
    ctx.handoff = _handoff_intent(ctx, config)
    lines = batch.previous_lines(ctx.conversation.id)
    if ctx.handoff is None and (pressed := _pressed_for_person(text, ctx.conversation, lines)):
        # the "转人工" button: channels send a button as the number it stands at
        ctx.handoff = person_intent(ctx.knowledge)
        ctx.act_signal = f"pressed the button for a person (choice {pressed})"
    if ctx.declines_person and not ctx.urgent_signal:
        # "投诉的事算了，不用转人工了": whatever topic it names, it asks nobody for anything
        ctx.handoff = None
    elif ctx.handoff is None:
        # anger and complaint win over the FAQ: a person, not a paragraph
        cues = complaint_signal(text, config.guard.complaint_words)
        ctx.handoff = _complaint_intent(ctx, config) if cues else None
        if ctx.handoff is not None:
            ctx.complaint_signal = cues
    if ctx.handoff is None:
        # what the message does: an emergency, a problem, a request only staff can meet
        by_act = act_handoff(reading, ctx.knowledge, config)
        if by_act is not None and by_act.emergency:
            # an emergency is one however it was said: it escalates a ticket a human has too
            ctx.handoff, ctx.urgent_signal = by_act.intent, by_act.reason
        elif (
            by_act is not None
            and ctx.conversation.state != ConversationState.HANDOFF
            and not ctx.declines_person
        ):
            ctx.handoff, ctx.act_signal = by_act.intent, by_act.reason
    if ctx.handoff is not None and ctx.handoff.queue:
        ctx.route_queue = ctx.handoff.queue


def with_human(ctx: Context, batch: DecisionBatch, config: Config) -> None:
    """While a human owns the conversation the bot is silent — the agent reads the message in
    the console — except to say what the customer needs to hear: an emergency moves the ticket
    to the urgent line; a customer asking for a person hears who is on it, or their place in
    the queue; one who complains about the wait gets an apology and moves up (or hears who is
    on it). A line that only mentions a handoff topic ("不用退款了，谢谢") is the agent's to
    read: it asks nobody for anything (`asks_for_person`)."""
    conv = ctx.conversation
    assert conv is not None
    if conv.state != ConversationState.HANDOFF:
        return
    ticket = batch.open_ticket(conv.id)
    lang = ctx.language
    if ticket is None:  # closed behind the bot's back (an old row): the bot takes over again
        conv.state = ConversationState.BOT
        return
    decision = Decision(Action.SILENT, language=lang, ticket_id=ticket.id)
    reasons: list[str] = []
    texts: list[str] = []
    #: a line for the ticket's history, and its details
    event: str | None = None
    data: dict[str, Any] = {}
    # the customer wrote: the agent's move now, and the console shows the new line
    values: dict[str, object] = {}
    if ticket.status == TicketState.AWAITING_CUSTOMER:
        values["status"] = TicketState.ASSIGNED
    urgent = ctx.knowledge.intents.get(config.guard.urgent_intent)
    agent = batch.agent_name(ticket.agent_id)
    # what the message is about may hand off (a refund); only asking for a person is answered,
    # and "不用转人工了" asks for nobody
    asks = not ctx.declines_person and asks_for_person(ctx.acts, ctx.handoff, ctx.knowledge, config)
    complains = _complains_about_wait(ctx, ticket.status, config)
    if ctx.urgent_signal and urgent and urgent.queue and ticket.priority != Priority.URGENT:
        line = config.queues[urgent.queue]
        moved = batch.escalate(
            conv.id,
            urgent.queue,
            urgent.priority.value,
            urgent.priority.rank,
            ctx.now,
            timedelta(seconds=line.first_response_seconds),
            timedelta(minutes=line.transfer_minutes),
        )
        if not moved:  # with an agent already: stays theirs, at the top of their list
            values.update(priority=urgent.priority.value, priority_rank=urgent.priority.rank)
        decision.action, decision.intent = Action.HANDOFF, urgent.name
        decision.queue = urgent.queue if moved else ticket.queue
        decision.priority, decision.category = urgent.priority, urgent.category
        reasons.append(f"urgent signal {ctx.urgent_signal!r} while with a human: escalated")
        texts.append(pick(urgent.reply, lang))
        event, data = "escalated", {"reason": "urgent", "priority": urgent.priority.value}
    elif ctx.urgent_signal and urgent:
        decision.intent = urgent.name
        said, reason = _urgent_again(ctx, batch, config, urgent, agent, ticket.status)
        texts.extend(said)
        reasons.append(reason)
    elif ticket.status in TicketState.with_agent():
        if (asks or complains) and agent:
            texts.append(pick(config.texts.agent_on_it, lang).replace("{agent}", agent))
            reasons.append(
                f"{'asked for a person' if asks else 'complained'}: {agent} has the ticket"
            )
        else:
            reasons.append(f"{agent or 'an agent'} owns this conversation")
    elif complains:
        # up one step, but never to urgent: that is for emergencies, not for impatience
        raised = max(Priority(ticket.priority).raised(), Priority.HIGH, key=lambda p: p.rank)
        texts.append(pick(config.texts.waiting_sorry, lang))
        reasons.append(f"complained while waiting: priority {ticket.priority} → {raised.value}")
        values.update(priority=raised.value, priority_rank=raised.rank)
        event, data = "escalated", {"reason": "complaint while waiting", "priority": raised.value}
    elif (
        asks
        and ticket.status == TicketState.QUEUED
        and not _staffed(batch, config, ticket.queue, ctx.now)
    ):
        texts.append(pick(config.texts.handoff_unstaffed, lang))
        reasons.append(f"asked for a person while queued: no agent of {ticket.queue} online")
    elif asks and ticket.status == TicketState.QUEUED:
        ahead = batch.position(ticket)
        _, minutes = batch.queue_load(ticket.queue, Priority(ticket.priority).rank, ctx.now)
        texts.append(_queue_text(config, lang, ahead, minutes))
        reasons.append(f"asked for a person while queued: {ahead} ahead")
    elif asks and ticket.status == TicketState.QUEUE_CLOSED:
        schedule = ctx.knowledge.schedules[config.queues[ticket.queue].schedule]
        texts.append(_closed_handoff_text(schedule, config, lang, ctx.now))
        reasons.append("asked for a person while the queue is closed: told when it opens")
    else:
        reasons.append(
            "waiting for a human"
            if ticket.status != TicketState.QUEUE_CLOSED
            else "waiting for the queue to open"
        )
    decision.reasons.append(f"a human owns this conversation ({'; '.join(reasons)})")
    ctx.ticket_updates.append(TicketUpdate(ticket.id, values, event, data))
    finish(ctx, decision, texts)


def _urgent_again(
    ctx: Context,
    batch: DecisionBatch,
    config: Config,
    urgent: IntentSpec,
    agent: str | None,
    status: str,
) -> tuple[list[str], str]:
    """An emergency on a ticket already urgent: nothing is left to raise, but it is never met
    with silence: who has the ticket, or while it waits what to do meanwhile (the urgent
    reply's hotline) again; once per burst, not on every line of it (the flood guard lets
    urgent lines through)."""
    assert ctx.conversation is not None
    signal = ctx.urgent_signal
    lines = batch.previous_lines(ctx.conversation.id)
    burst = timedelta(seconds=config.guard.flood_seconds)
    if lines and lines[0].intent == urgent.name and ctx.now - lines[0].at < burst:
        return [], f"urgent signal {signal!r} while already urgent: answered moments ago"
    if status in TicketState.with_agent() and agent:
        said = pick(config.texts.agent_on_it, ctx.language).replace("{agent}", agent)
    else:
        said = pick(urgent.reply, ctx.language)
    return [said], f"urgent signal {signal!r} while already urgent: answered"


def survey(ctx: Context, batch: DecisionBatch, config: Config) -> None:
    """The answer to the satisfaction question asked when the ticket was resolved: stored on
    the ticket once, then NPS when configured, then thanks. Anything else is handled as usual."""
    conv = ctx.conversation
    assert conv is not None
    kind, ticket_id = conv.survey_kind, conv.survey_ticket_id
    if kind is None or ticket_id is None:
        return
    conv.survey_kind, conv.survey_ticket_id = None, None
    low, high = (0, 10) if kind == "nps" else (1, 5)
    score = parse_score(ctx.text, low, high) if ctx.inbound.kind == Kind.TEXT else None
    if score is None:
        return
    lang = ctx.language
    ctx.ticket_updates.append(TicketUpdate(ticket_id, {kind: score}, kind, {"score": score}))
    decision = Decision(Action.REPLY, language=lang, ticket_id=ticket_id)
    decision.reasons.append(f"{kind} answer {score} for ticket {ticket_id}")
    finish(ctx, decision, [])
    if kind == "csat" and config.survey.nps:
        conv.survey_kind, conv.survey_ticket_id = "nps", ticket_id
        choices = tuple(str(n) for n in range(11))
        ctx.replies = [Reply(pick(config.texts.nps_question, lang), choices)]
    else:
        ctx.replies = [Reply(pick(config.texts.survey_thanks, lang))]


def hours(ctx: Context, config: Config) -> None:
    """Picks the schedule of the queue this message would go to; it checks nothing itself.
    `decide` asks that schedule whether the queue is open now and `compose` takes its closed
    notice from it (a handoff to another queue swaps in that queue's schedule)."""
    queue = ctx.route_queue or config.handoff.default_queue
    ctx.schedule = ctx.knowledge.schedules[config.queues[queue].schedule]


def decide(ctx: Context, batch: DecisionBatch, config: Config) -> None:
    """Hand off, answer from the FAQ, reply from a template, suggest, or ask to rephrase: the
    first of `rules.RULES` that applies decides, in the order listed there."""
    conv = ctx.conversation
    assert conv is not None
    case = _case(ctx, batch, config)
    rules.apply(case)
    decision = case.decision
    if ctx.inbound.kind != Kind.EVENT:  # a follow or a click leaves the conversation as it was
        # what the customer can pick from next: this reply's suggestions, if it made any
        conv.suggestions = decision.suggestions
        if decision.action in (Action.ANSWER, Action.REPLY, Action.HANDOFF):
            conv.fallback_streak = 0
    ctx.decision = decision
    ctx.ticket = case.ticket


def reopen(ctx: Context, batch: DecisionBatch, config: Config) -> None:
    """A handoff soon after the customer's last ticket was resolved reopens that ticket, back
    to the agent who knows the case, unless this is an emergency or more pressing than before.
    A new ticket for an open queue reads the queue's load: the customer hears their place, or
    that none of its agents is online right now."""
    ticket, decision = ctx.ticket, ctx.decision
    if ticket is None:
        return
    assert decision is not None
    reasons = decision.reasons
    ctx.reopen = batch.reopenable(ctx.inbound.conversation_key, ctx.now)
    if ctx.reopen is not None and (
        ctx.urgent_signal or ticket.priority_rank < Priority(ctx.reopen.ticket.priority).rank
    ):
        # an emergency, or something more pressing than before, is its own case for the
        # queue that handles it, not the old ticket's agent
        reasons.append(f"ticket {ctx.reopen.ticket.id} not reopened: this is more urgent")
        ctx.reopen = None
    if ctx.reopen is not None:
        old = ctx.reopen.ticket
        reasons.append(
            f"ticket {old.id} resolved {old.resolved_at:%Y-%m-%d %H:%M} UTC reopened "
            f"({'to ' + ctx.reopen.agent_name if ctx.reopen.agent_name else 'queued'})"
        )
        decision.queue = old.queue
        decision.priority, decision.category = Priority(old.priority), Category(old.category)
    elif decision.is_open:
        ctx.queue_load = batch.queue_load(ticket.queue, ticket.priority_rank, ctx.now)
    if decision.is_open and not (ctx.reopen and ctx.reopen.agent_name):
        queue = decision.queue or ticket.queue
        ctx.staffed = _staffed(batch, config, queue, ctx.now)
        if not ctx.staffed:
            reasons.append(f"no agent of queue {queue} online: the customer is told so")


def compose(ctx: Context, config: Config) -> None:
    """The words: answer or template, the closed notice once per window, and the 忌语 check."""
    decision, conv, texts_cfg = ctx.decision, ctx.conversation, config.texts
    assert decision is not None and conv is not None and ctx.schedule is not None
    lang = decision.language
    knowledge = ctx.knowledge
    replies: list[Reply] = []
    person = (pick(texts_cfg.person_choice, lang),)
    opening = None if decision.is_open else ctx.schedule.next_open(ctx.now)
    if decision.action == Action.HANDOFF and opening:
        # After hours one honest line: the request is recorded and when people are back, not
        # "connecting you, please hold on" followed at once by "nobody until 9:00".
        text = _closed_handoff_text(ctx.schedule, config, lang, ctx.now)
        replies.append(Reply(text, handoff_queue=decision.queue))
        decision.notice = True
    elif decision.action == Action.ANSWER and decision.faq_id:
        entry = knowledge.faq.by_id[decision.faq_id]
        about = (
            pick(texts_cfg.answer_about, lang).replace("{question}", question_in(entry, lang))
            if ctx.thin_answer
            else ""
        )
        replies.append(Reply(about + ctx.schedule.fill(pick(entry.answer, lang), lang, ctx.now)))
    elif decision.action == Action.REPLY and ctx.declines_person:
        replies.append(Reply(pick(texts_cfg.person_declined, lang)))
    elif decision.action == Action.REPLY and ctx.inbound.kind == Kind.EVENT:
        replies.append(Reply(pick(texts_cfg.welcome, lang)))
    elif decision.action == Action.REPLY and ctx.guess and ctx.guess.intent:
        replies.append(Reply(pick(ctx.guess.intent.reply, lang)))
    elif decision.action == Action.SUGGEST:
        entries = [knowledge.faq.by_id[i] for i in decision.suggestions]
        text = format_suggestions(
            entries, lang, pick(texts_cfg.suggest_intro, lang), pick(texts_cfg.suggest_outro, lang)
        )
        replies.append(Reply(text, (*(question_in(e, lang) for e in entries), *person)))
    elif decision.action == Action.FALLBACK:
        replies.append(Reply(texts_cfg.fallback_in(lang), person))
    elif decision.action == Action.NOT_TEXT:
        replies.append(Reply(pick(texts_cfg.not_text, lang)))
    elif decision.action == Action.HANDOFF and not ctx.staffed:
        # open, but nobody there: not "connecting you…"; the ticket waits for the first agent.
        # An emergency keeps its own words too (its hotline, what to do first).
        spec = knowledge.intents.get(decision.intent or "")
        if decision.priority == Priority.URGENT and spec and spec.reply:
            replies.append(Reply(pick(spec.reply, lang)))
        unstaffed = pick(texts_cfg.handoff_unstaffed, lang)
        replies.append(Reply(unstaffed, handoff_queue=decision.queue))
    elif decision.action == Action.HANDOFF and ctx.reopen and ctx.reopen.agent_name:
        text = pick(texts_cfg.agent_on_it, lang).replace("{agent}", ctx.reopen.agent_name)
        replies.append(Reply(text, handoff_queue=decision.queue))
    elif decision.action == Action.HANDOFF:
        spec = knowledge.intents.get(decision.intent or "")
        acknowledgement = (
            spec.reply if spec and spec.action == "handoff" and spec.reply else texts_cfg.handoff
        )
        replies.append(Reply(pick(acknowledgement, lang), handoff_queue=decision.queue))
        if ctx.queue_load is not None:
            ahead, minutes = ctx.queue_load
            if ahead or minutes is not None:
                replies.append(Reply(_queue_text(config, lang, ahead, minutes)))

    if not decision.is_open:
        window = opening.isoformat() if opening else "never"
        if conv.notice_window != window and not decision.notice:
            replies.append(Reply(ctx.schedule.notice_text(lang, ctx.now)))
            decision.notice = True
        if decision.notice:
            conv.notice_window = window
            decision.reasons.append(f"closed until {window}: notice sent")
    if ctx.truncated and replies:
        replies.insert(0, Reply(pick(texts_cfg.too_long, lang)))
        decision.reasons.append(f"message cut at {config.guard.max_message_chars} characters")
    greeting = _front_schedule(ctx, config).greeting(ctx.now, lang) if conv.is_new else None
    if greeting and replies:
        first = replies[0]
        replies[0] = Reply(f"{greeting}{first.text}", first.choices, first.handoff_queue)
        decision.reasons.append(f"holiday greeting {greeting!r}")
    _check_forbidden(replies, texts_cfg)
    ctx.replies = replies


def record(ctx: Context, batch: DecisionBatch) -> None:
    """The end of the run: the decision, the ticket, the conversation's new state and the
    replies, written with the rest of the batch in the same transaction. After a crash either
    all of it happened (and the dispatcher sends the replies) or none of it did (and the
    retried delivery is handled anew). `delivered` then names the replies' outbox rows."""
    conv, decision = ctx.conversation, ctx.decision
    assert conv is not None and decision is not None and ctx.message_id is not None
    ctx.entry = Entry(
        ctx.message_id,
        conv,
        decision,
        ctx.ticket,
        [(reply.text, reply.choices, reply.handoff_queue) for reply in ctx.replies],
        ctx.now,
        ctx.inline_until,
        ctx.worker if ctx.inline_until else None,
        ticket_updates=list(ctx.ticket_updates),
        reopen=ctx.reopen,
    )
    batch.record(ctx.entry)


def delivered(ctx: Context) -> None:
    """After the batch is written: the outbound messages, with their outbox ids."""
    conv, entry = ctx.conversation, ctx.entry
    assert conv is not None and entry is not None
    ctx.outbound = [
        reply.outbound(conv, outbox_id, ctx.message_id, ctx.inbound.external_id)
        for reply, outbox_id in zip(ctx.replies, entry.outbox_ids, strict=True)
    ]


def finish(ctx: Context, decision: Decision, texts: list[str]) -> None:
    """End the run with this decision and these words (the record step still writes them)."""
    ctx.decision = decision
    ctx.replies = [Reply(text) for text in texts]
    ctx.stop = True


# --- helpers -----------------------------------------------------------------------------------


def _pressed_for_person(text: str, conv: Conversation, lines: Sequence[CustomerLine]) -> int | None:
    """The number of the button for a person, when that is what the customer sent: a reply
    with suggestions offers the person after them, a fallback offers only the person, and a
    channel's buttons (Telegram, the web chat) send the number a choice stands at. Not while a
    satisfaction question waits for its 1–5."""
    if conv.survey_kind or not lines:
        return None
    last = lines[0]  # the customer's previous line, and the reply it got
    if last.action == Action.SUGGEST:
        offered = len(last.suggestions)
    elif last.action == Action.FALLBACK:
        offered = 0
    else:
        return None  # that reply offered no button for a person
    return offered + 1 if parse_pick(text, offered + 1) == offered else None


def _handoff_intent(ctx: Context, config: Config) -> IntentSpec | None:
    """The intent to hand off under: an urgent word wins, then a confident handoff intent."""
    intents = ctx.knowledge.intents
    if ctx.urgent_signal and config.guard.urgent_intent in intents:
        return intents[config.guard.urgent_intent]
    intent = ctx.guess.intent if ctx.guess else None
    return intent if intent and intent.action == "handoff" else None


def _complains_about_wait(ctx: Context, status: TicketState, config: Config) -> bool:
    """A customer whose ticket a human owns complains: in complaint words or the complaint
    intent, or, while it is the agent's move (no answer since the customer last wrote), read
    as a complaint by the act model ("怎么还没人理我？等了好久了"). Right after an agent's
    answer the customer has it in front of them, and the agent reads the line in the console."""
    if ctx.declines_person:
        return False
    if ctx.complaint_signal or (ctx.handoff and ctx.handoff.category == Category.COMPLAINT):
        return True
    return status != TicketState.AWAITING_CUSTOMER and complaint_act(ctx.acts, config)


def _complaint_intent(ctx: Context, config: Config) -> IntentSpec | None:
    """The intent complaints are handed off under: `guard.complaint_intent`, else the first
    handoff intent of category complaint."""
    intents = ctx.knowledge.intents
    named = intents.get(config.guard.complaint_intent)
    if named is not None and named.action == "handoff":
        return named
    return next(
        (i for i in intents.values() if i.action == "handoff" and i.category == Category.COMPLAINT),
        None,
    )


def _front_schedule(ctx: Context, config: Config) -> Schedule:
    """The schedule customers meet first: the default queue's."""
    return ctx.knowledge.schedules[config.front_schedule]


def _case(ctx: Context, batch: DecisionBatch, config: Config) -> rules.Case:
    """What every rule looks at, worked out once, with the reasons that explain it: the
    intent's and the best FAQ match's scores, and what speaks against answering from it."""
    conv = ctx.conversation
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
    if ctx.followup:
        reasons.append(ctx.followup)
    thresholds = ctx.knowledge.faq.thresholds
    if guess:
        reasons.append(
            f"intent {guess.best} {guess.score:.2f} (threshold {config.intents.threshold})"
        )
    background = ctx.knowledge.background
    # a message naming another company or public office the shop never mentions asks about
    # their version of a FAQ topic: it is suggested at most (bot.understanding.third_parties),
    # unless it continues the question the customer's previous line was answered on
    continued = _continues(ctx, top)
    elsewhere = bool(top and ctx.others) and not continued
    outside = bool(
        top
        and background
        and background.vetoes(ctx.outside, top.score, elsewhere=elsewhere)
        and not continued
    )
    if top:
        reasons.append(
            f"faq {top.entry.id} {top.score:.2f} (dense {top.dense:.2f}, "
            f"lexical {top.lexical:.2f}; answer ≥ {thresholds.answer:.2f}, "
            f"suggest ≥ {thresholds.suggest:.2f})"
        )
        if elsewhere:
            # a name read from the customer's words is quoted only as stored (masked): a
            # password ("密码是ekbq1msv") reads as a name the shop never mentions
            named = (name if name in ctx.masked else "******" for name in ctx.others)
            reasons.append(
                f"names {', '.join(named)}, which the shop's content never mentions: "
                "not answered from the FAQ outright"
            )
        if outside and background is not None and background.margin is not None:
            reasons.append(
                f"closer to what no shop answers ({ctx.outside:.2f}) than to the FAQ by more "
                f"than {background.margin:+.2f}: not answered from it"
                if not elsewhere
                else f"also closer to what no shop answers ({ctx.outside:.2f}) than to the "
                "FAQ: not suggested either"
            )
        if continued and not ctx.handoff:
            reasons.append(
                f"continues the previous line's question (faq {top.entry.id}): "
                + (
                    "what it names is a detail of that question, not someone else's"
                    if ctx.others
                    else "read as part of it, not as something no shop answers"
                )
            )
    unrelated = bool(top) and unrelated_act(ctx.acts, config) and not continued
    if unrelated:
        reasons.append("reads as nothing to do with the shop: not answered from the FAQ outright")
    suggestions = conv.suggestions
    picked = parse_pick(ctx.text, len(suggestions)) if suggestions else None
    return rules.Case(
        ctx, batch, config, decision, top, outside, elsewhere or unrelated, suggestions, picked
    )


def _continues(ctx: Context, top: FaqMatch | None) -> bool:
    """The message reaches the entry the customer's previous line was answered with (alone or
    read in context: `ctx.continues_entry`), so what it names or how far it is from the shop's
    topics does not make it someone else's question; a known company's name still does ("and
    China Mobile's?")."""
    if top is None or ctx.continues_entry != top.entry.id:
        return False
    parties = ctx.knowledge.third_parties
    return not (parties is not None and any(parties.listed(name) for name in ctx.others))


def _staffed(batch: DecisionBatch, config: Config, queue: str, now: datetime) -> bool:
    """Some agent who works the queue is online: their console was heard from within
    console.online_minutes (0: not checked, the team answers outside the console)."""
    if config.console.online_minutes == 0:
        return True
    since = now - timedelta(minutes=config.console.online_minutes)
    return batch.agents_online(queue, since) > 0


def _closed_handoff_text(schedule: Schedule, config: Config, lang: str, now: datetime) -> str:
    """When a human will pick this up: the schedule's own words for the occasion (a holiday's
    handoff text), else texts.handoff_closed with the real next opening."""
    opening = schedule.next_open(now)
    said = pick(config.texts.handoff_closed, lang).replace(
        "{next_open}", format_moment(opening, lang) if opening else "–"
    )
    return schedule.handoff_text(lang, now) or schedule.fill(said, lang, now)


def _queue_text(config: Config, lang: str, ahead: int, minutes: float | None) -> str:
    """ "N customers ahead, about M minutes": M from how long the queue's recent tickets waited
    for an agent (at least one minute per customer ahead… never promised as zero)."""
    if minutes is None:
        if ahead == 0:  # next, and no history to estimate from
            return pick(config.texts.handoff, lang)
        return pick(config.texts.queue_ahead, lang).replace("{ahead}", str(ahead))
    shown = max(1, math.ceil(minutes))
    if ahead == 0:
        return pick(config.texts.queue_next, lang).replace("{minutes}", str(shown))
    return (
        pick(config.texts.queue_position, lang)
        .replace("{ahead}", str(ahead))
        .replace("{minutes}", str(shown))
    )


def _check_forbidden(replies: list[Reply], texts: TextsConfig) -> None:
    for reply in replies:  # content is checked at load; this catches texts built here
        for phrase in forbidden_in(reply.text, texts.forbidden_phrases):
            log.error("outgoing text contains the forbidden phrase %r: %s", phrase, reply.text)
