"""What the bot does with a message, as rules tried in order: the first that applies decides.

The order is the service's priorities, kept as data (`RULES`, after the rules) so that a reader
sees it at a glance and a change of priority is a change of one line, as Rasa orders its
policies. Each rule is small: it looks at the `Case` the `decide` step prepared, and when it
applies it fills in the decision (and for a handoff the ticket) and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.content.config import Config
from bot.content.entries import OUT_OF_SCOPE
from bot.domain.messages import WELCOME_EVENT, Action, Category, Decision, Kind, Priority
from bot.domain.reactions import is_reaction, names_a_person
from bot.domain.ticket import TicketDraft
from bot.pipeline.context import Context
from bot.pipeline.handoff import ticket_for
from bot.pipeline.needs_person import off_topic
from bot.store.batch import DecisionBatch
from bot.understanding.faq import FaqMatch


@dataclass
class Case:
    """One message as the rules see it: its context, the decision they fill in, and what
    `decide` worked out once for all of them."""

    ctx: Context
    batch: DecisionBatch
    config: Config
    decision: Decision
    #: the best FAQ match, if any
    top: FaqMatch | None
    #: the message is nearer to what no shop answers than to the FAQ
    outside: bool
    #: it names another company or office the shop's content never mentions
    elsewhere: bool
    #: the entry ids offered by the previous reply, and which of them the message picks
    suggestions: list[str]
    picked: int | None
    #: the ticket a handoff opens
    ticket: TicketDraft | None = None


#: a rule decides (fills in the case's decision, and returns True) or leaves it to the next
Rule = Callable[[Case], bool]


def event(case: Case) -> bool:
    """A follow or a menu click is not words to understand: the welcome, or nothing."""
    ctx, decision = case.ctx, case.decision
    if ctx.inbound.kind != Kind.EVENT:
        return False
    welcome = ctx.text == WELCOME_EVENT
    decision.action = Action.REPLY if welcome else Action.SILENT
    decision.reasons.append(f"event {ctx.text!r}: " + ("welcome" if welcome else "not answered"))
    return True


def picked_suggestion(case: Case) -> bool:
    """A "2" after "did you mean…?" answers that question, whatever else it might resemble."""
    if case.picked is None:
        return False
    entry = case.ctx.knowledge.faq_entry(case.suggestions[case.picked])
    if entry is None:
        return False
    decision = case.decision
    decision.action, decision.faq_id, decision.picked = Action.ANSWER, entry.id, case.picked + 1
    decision.reasons.append(f"customer picked suggestion {case.picked + 1}")
    return True


def handoff(case: Case) -> bool:
    """An urgent word, a complaint or a request for a person goes to a human even when the FAQ
    has a paragraph on the topic."""
    ctx, decision = case.ctx, case.decision
    intent = ctx.handoff
    if intent is None:
        return False
    decision.action, decision.intent = Action.HANDOFF, intent.name
    if ctx.urgent_signal:
        decision.reasons.append(f"urgent signal {ctx.urgent_signal!r}")
    if ctx.complaint_signal:
        decision.reasons.append(f"complaint signal {', '.join(ctx.complaint_signal)}")
    if ctx.act_signal:
        decision.reasons.append(ctx.act_signal)
    queue = intent.queue or case.config.handoff.default_queue
    case.ticket = _ticket(case, queue, intent.priority, intent.category)
    return True


def declined_person(case: Case) -> bool:
    """ "不用转人工了", "no need for an agent": the customer says they want no person. It
    names one, so the intent model reads it as asking for one; it is answered with a plain
    "all right" and no ticket (an emergency in it was handed off by the rule before)."""
    if not case.ctx.declines_person:
        return False
    case.decision.action = Action.REPLY
    case.decision.reasons.append("the customer says they need no person: no handoff")
    return True


def faq_answer(case: Case) -> bool:
    """The FAQ answers outright only when its best entry is confident, clearly ahead of the
    next, not vetoed as out of scope or about another company, and not small talk."""
    ctx, top = case.ctx, case.top
    thresholds = ctx.knowledge.faq.thresholds
    if not (
        top
        and top.score >= thresholds.answer
        and not case.outside
        and not case.elsewhere
        and not _confident_small_talk(ctx, case.config)
        and (ctx.followup_agrees or thresholds.leads_clearly(ctx.matches))
    ):
        return False
    case.decision.action, case.decision.faq_id = Action.ANSWER, top.entry.id
    if ctx.followup_agrees:
        ctx.thin_answer = True
        case.decision.reasons.append(
            "answered on the previous line's context: the reply names the question"
        )
    elif thresholds.thin(ctx.matches):
        ctx.thin_answer = True
        case.decision.reasons.append("answered on thin evidence: the reply names the question")
    return True


def small_talk(case: Case) -> bool:
    """A greeting, thanks or goodbye gets its template reply, once per conversation."""
    ctx, decision, top = case.ctx, case.decision, case.top
    guess = ctx.guess
    if not (guess and guess.intent and guess.intent.action == "reply"):
        return False
    conv = ctx.conversation
    assert conv is not None
    if top and top.score >= ctx.knowledge.faq.thresholds.answer:
        decision.reasons.append(f"small talk ({guess.intent.name}), not the FAQ's {top.entry.id}")
    if guess.intent.name in case.batch.replied_intents(conv.id):
        # 不客气 once, not on every repeated thanks; the same for greetings and goodbyes.
        decision.action = Action.SILENT
        decision.reasons.append(f"{guess.intent.name} already answered in this conversation")
    else:
        decision.action = Action.REPLY
    return True


def suggest(case: Case) -> bool:
    """Close but not sure: the best entries are offered, and remembered for the customer's
    pick (see `picked_suggestion`)."""
    ctx, decision, top = case.ctx, case.decision, case.top
    thresholds = ctx.knowledge.faq.thresholds
    if not (
        top
        and top.score >= thresholds.suggest
        and not case.outside
        and not _confidently_out_of_scope(ctx, case.config)
    ):
        return False
    doubt = thresholds.doubt(ctx.matches)
    if top.score >= thresholds.answer and doubt:
        # above the answer threshold but not clearly ahead of its neighbours: the customer
        # chooses between them
        decision.reasons.append(doubt)
    decision.action = Action.SUGGEST
    floor, count = thresholds.suggest, case.config.faq.suggestions
    decision.suggestions = [m.entry.id for m in ctx.matches[:count] if m.score >= floor]
    return True


def not_text(case: Case) -> bool:
    """An image or a voice message is asked for words; it does not count as not understood."""
    ctx = case.ctx
    if ctx.inbound.kind == Kind.TEXT and ctx.text.strip():
        return False
    case.decision.action = Action.NOT_TEXT
    case.decision.reasons.append(f"{ctx.inbound.kind.value} message: asked for text")
    return True


def did_not_help(case: Case) -> bool:
    """ "没用", "不对", "useless" after an answer: not a goodbye and not a complaint, but an
    answer that failed. The customer gets the rephrase fallback with the way to a person, and it
    counts towards handing off like any failure (`bot faq gaps` reads the same words)."""
    text = case.ctx.text
    if not is_reaction(text) or names_a_person(text):  # "还是不行，转人工" asks for a person
        return False
    case.decision.reasons.append("the customer says the last answer did not help")
    _count_failure(case)
    return True


def not_understood(case: Case) -> bool:
    """The rephrase fallback; after `handoff.fallbacks_before_handoff` of them in a row a person
    takes over rather than the customer trying a fourth time. Small talk and what has nothing
    to do with the shop ("tell me a joke") get the fallback but do not count: they are no
    failure a person could fix. Always decides."""
    ctx, decision = case.ctx, case.decision
    conv = ctx.conversation
    assert conv is not None
    if _confidently_out_of_scope(ctx, case.config) or off_topic(ctx.acts, case.config):
        decision.reasons.append(
            f"not understood, but small talk or unrelated: not counted towards a handoff "
            f"({conv.fallback_streak} in a row)"
        )
        return True
    _count_failure(case)
    return True


def _count_failure(case: Case) -> None:
    """One more failure in a row; enough of them hand off to a person."""
    decision, cfg, conv = case.decision, case.config.handoff, case.ctx.conversation
    assert conv is not None
    decision.action = Action.FALLBACK
    conv.fallback_streak += 1
    decision.reasons.append(f"not understood ({conv.fallback_streak} in a row)")
    if conv.fallback_streak >= cfg.fallbacks_before_handoff:
        decision.action = Action.HANDOFF
        decision.reasons.append("repeated failure: handing off")
        case.ticket = _ticket(case, cfg.default_queue, Priority.NORMAL, Category.CONSULT)


#: the priorities: first match wins, and the last always matches
RULES: tuple[Rule, ...] = (
    event,
    picked_suggestion,
    did_not_help,
    handoff,
    declined_person,
    faq_answer,
    small_talk,
    suggest,
    not_text,
    not_understood,
)


def apply(case: Case) -> None:
    """Try the rules in order until one decides."""
    next(rule for rule in RULES if rule(case))


# --- helpers -----------------------------------------------------------------------------------


def _confident_small_talk(ctx: Context, config: Config) -> bool:
    """The intent model is confident the message is small talk (a greeting, thanks, goodbye):
    it gets the small-talk reply, not the FAQ paragraph a word in it ("老师", "客服") happens
    to come close to. The intent model learns every FAQ question as well, so a question is not
    read as small talk."""
    guess = ctx.guess
    return bool(
        guess
        and guess.intent
        and guess.intent.action == "reply"
        and guess.score >= config.intents.threshold
    )


def _confidently_out_of_scope(ctx: Context, config: Config) -> bool:
    guess = ctx.guess
    return bool(guess and guess.best == OUT_OF_SCOPE and guess.score >= config.intents.threshold)


def _ticket(case: Case, queue: str, priority: Priority, category: Category) -> TicketDraft:
    """The ticket for a handoff; a VIP's goes to the VIP queue at the VIP priority, and the
    decision is open or closed by the schedule of the queue it lands in."""
    ctx, config, decision = case.ctx, case.config, case.decision
    customer = f"{ctx.inbound.channel}:{ctx.inbound.user_id}"
    if customer in config.handoff.vip_customers:
        queue = config.handoff.vip_queue or queue
        vip = config.handoff.vip_priority
        priority = vip if vip.rank < priority.rank else priority
        decision.reasons.append(f"VIP customer: queue {queue}, priority {priority.value}")
    queue_schedule = ctx.knowledge.schedules[config.queues[queue].schedule]
    decision.queue, decision.priority, decision.category = queue, priority, category
    decision.is_open = queue_schedule.is_open(ctx.now)
    ctx.schedule = queue_schedule
    return ticket_for(
        config,
        queue,
        priority,
        category,
        queue_schedule,
        ctx.now,
        {"reasons": list(decision.reasons), "intent": decision.intent, "text": ctx.masked},
    )
