"""The figures of one period (a day or a week), for everything or one channel, queue or agent:
`Facts` are the rows read from the store, `figures()` is the arithmetic (see
bot/metrics/definitions.py for what each figure means). Each figure picks its rows by its own
moment (a reply, a resolution, a rating, a creation) falling inside the period, so a day's and a
week's figures are computed the same way from the same rows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from bot.metrics.arithmetic import (
    Distribution,
    Hours,
    csat,
    distribution,
    handling_spells,
    nps,
    open_seconds,
    rate,
    seconds,
    within,
)
from bot.metrics.periods import Period
from bot.store.gap_reads import REPEATED_FAILURE
from bot.store.metric_reads import ConversationFact, CustomerMessage, TicketFact


@dataclass(frozen=True)
class Settings:
    """What the arithmetic needs besides the rows: the schedule of each queue (closed time is
    not held against agents), the default queue's schedule (after-hours messages), the queue
    names (to read a reopen event), the reopen window (FCR) and the report's `now` (what is
    past due)."""

    hours_by_queue: Mapping[str, Hours]
    front: Hours
    queues: Collection[str]
    first_response_seconds: Mapping[str, int]
    reopen_window: timedelta
    business_hours: bool
    now: datetime


@dataclass(frozen=True)
class Facts:
    messages: list[CustomerMessage]
    conversations: list[ConversationFact]
    tickets: list[TicketFact]
    #: when each customer of these tickets opened tickets (a new one soon after a resolution
    #: is not a first-contact resolution)
    tickets_by_customer: Mapping[tuple[str, str], list[datetime]] = field(default_factory=dict)

    def only(
        self, *, channel: str | None = None, queue: str | None = None, agent_id: int | None = None
    ) -> Facts:
        """The rows of one channel, queue or agent. Messages and conversations have no queue or
        agent: for those slices only the tickets' figures mean something."""
        tickets = self.tickets
        messages, conversations = self.messages, self.conversations
        if channel is not None:
            tickets = [t for t in tickets if t.channel == channel]
            messages = [m for m in messages if m.channel == channel]
            conversations = [c for c in conversations if c.channel == channel]
        if queue is not None:
            tickets = [t for t in tickets if t.queue == queue]
            messages, conversations = [], []
        if agent_id is not None:
            tickets = [t for t in tickets if t.agent_id == agent_id]
            messages, conversations = [], []
        return replace(self, messages=messages, conversations=conversations, tickets=tickets)


@dataclass(frozen=True)
class Figures:
    customer_messages: int
    after_hours_messages: int
    frt_bot: Distribution
    conversations: int
    engaged_conversations: int
    contained_conversations: int
    customers: int
    repeat_customers: int
    tickets: int
    reopened_tickets: int
    reopenings: int
    complaint_tickets: int
    frt_human: Distribution  # wall-clock
    frt_human_business: Distribution  # the queue's open time only
    business_hours: bool
    resolved_tickets: int
    aht: Distribution
    fcr_counted: int
    fcr_resolved: int
    csat_scores: tuple[int, ...]
    nps_scores: tuple[int, ...]
    sla_counted: int
    sla_met: int
    transfer_counted: int
    transfer_met: int
    breaches: int

    @property
    def after_hours_share(self) -> float | None:
        return rate(self.after_hours_messages, self.customer_messages)

    @property
    def containment(self) -> float | None:
        return rate(self.contained_conversations, self.engaged_conversations)

    @property
    def repeat_rate(self) -> float | None:
        return rate(self.repeat_customers, self.customers)

    @property
    def complaint_rate(self) -> float | None:
        return rate(self.complaint_tickets, self.conversations)

    @property
    def fcr(self) -> float | None:
        return rate(self.fcr_resolved, self.fcr_counted)

    @property
    def csat(self) -> float | None:
        return csat(self.csat_scores)[0]

    @property
    def csat_mean(self) -> float | None:
        return csat(self.csat_scores)[1]

    @property
    def nps(self) -> float | None:
        return nps(self.nps_scores)

    @property
    def sla(self) -> float | None:
        return rate(self.sla_met, self.sla_counted)

    @property
    def transfer(self) -> float | None:
        return rate(self.transfer_met, self.transfer_counted)

    @property
    def frt_agents(self) -> Distribution:
        """The human first response agents are held to: business hours only when configured."""
        return self.frt_human_business if self.business_hours else self.frt_human

    def as_json(self, *, tickets_only: bool = False) -> dict[str, Any]:
        """Plain numbers (shares 0–1, seconds, counts) for the report's JSON."""
        tickets: dict[str, Any] = {
            "tickets": self.tickets,
            "reopened_tickets": self.reopened_tickets,
            "reopenings": self.reopenings,
            "complaint_tickets": self.complaint_tickets,
            "frt_human": self.frt_human.as_json(),
            "frt_human_business_hours": self.frt_human_business.as_json(),
            "frt_human_counts_business_hours_only": self.business_hours,
            "resolved_tickets": self.resolved_tickets,
            "aht": self.aht.as_json(),
            "fcr": {"rate": _r(self.fcr), "resolved_first_time": self.fcr_resolved},
            "fcr_counted": self.fcr_counted,
            "csat": {
                "rate": _r(self.csat),
                "mean": _r(self.csat_mean),
                "answers": len(self.csat_scores),
            },
            "nps": {"score": _r(self.nps), "answers": len(self.nps_scores)},
            "sla": {"rate": _r(self.sla), "met": self.sla_met, "counted": self.sla_counted},
            "transfer": {
                "rate": _r(self.transfer),
                "met": self.transfer_met,
                "counted": self.transfer_counted,
            },
            "breaches": self.breaches,
        }
        if tickets_only:
            return tickets
        return {
            "customer_messages": self.customer_messages,
            "after_hours": {
                "messages": self.after_hours_messages,
                "share": _r(self.after_hours_share),
            },
            "frt_bot": self.frt_bot.as_json(),
            "conversations": self.conversations,
            "containment": {
                "rate": _r(self.containment),
                "contained": self.contained_conversations,
                "with_customer_text": self.engaged_conversations,
            },
            "repeat": {
                "rate": _r(self.repeat_rate),
                "customers": self.customers,
                "repeat_customers": self.repeat_customers,
            },
            "complaint_rate": _r(self.complaint_rate),
            **tickets,
        }


def figures(facts: Facts, period: Period, settings: Settings) -> Figures:
    """Every figure of one period (definitions: bot/metrics/definitions.py)."""
    start, end = period.start, period.end
    messages = [m for m in facts.messages if within(m.at, start, end)]
    conversations = [c for c in facts.conversations if within(c.opened_at, start, end)]
    engaged = [c for c in conversations if c.customer_texts > 0]
    per_customer = Counter((c.channel, c.user_id) for c in conversations)
    created = [t for t in facts.tickets if within(t.created_at, start, end)]

    frt_wall, frt_open = human_first_responses(facts.tickets, period, settings)
    handled: list[float] = []
    resolved = 0
    fcr_counted = fcr_resolved = 0
    reopenings = 0
    reopened_tickets = 0
    csat_scores: list[int] = []
    nps_scores: list[int] = []
    breaches = 0
    for ticket in facts.tickets:
        spells = [
            s for s in handling_spells(ticket.events, settings.queues) if within(s.end, start, end)
        ]
        if spells:
            handled.append(sum(s.seconds for s in spells))
        resolutions = [e for e in ticket.events if e.kind == "resolved"]
        reopens = [e for e in ticket.events if e.kind == "reopened"]
        if any(within(e.at, start, end) for e in resolutions):
            resolved += 1
        if resolutions and within(resolutions[0].at, start, end):
            fcr_counted += 1
            first = resolutions[0].at
            came_back = any(
                first < created_at <= first + settings.reopen_window
                for created_at in facts.tickets_by_customer.get(
                    (ticket.channel, ticket.user_id), []
                )
            )
            if len(resolutions) == 1 and not reopens and ticket.reopened == 0 and not came_back:
                fcr_resolved += 1
        in_period = [e for e in reopens if within(e.at, start, end)]
        reopenings += len(in_period)
        reopened_tickets += 1 if in_period else 0
        for event in ticket.events:
            if event.kind in ("csat", "nps") and within(event.at, start, end):
                score = int(event.data.get("score", -1))
                (csat_scores if event.kind == "csat" else nps_scores).append(score)
        if within(ticket.breached_at, start, end):
            breaches += 1

    now = settings.now
    sla = [t for t in created if t.first_response_at is not None or t.first_response_due < now]
    transfer = [t for t in created if t.assigned_at is not None or t.transfer_due < now]
    return Figures(
        customer_messages=len(messages),
        after_hours_messages=sum(1 for m in messages if not settings.front.is_open(m.at)),
        frt_bot=distribution(bot_first_responses(messages, period)),
        conversations=len(conversations),
        engaged_conversations=len(engaged),
        contained_conversations=sum(1 for c in engaged if not c.handed_off),
        customers=len(per_customer),
        repeat_customers=sum(1 for n in per_customer.values() if n >= 2),
        tickets=len(created),
        reopened_tickets=reopened_tickets,
        reopenings=reopenings,
        complaint_tickets=sum(1 for t in created if t.category == "complaint"),
        frt_human=distribution(frt_wall),
        frt_human_business=distribution(frt_open),
        business_hours=settings.business_hours,
        resolved_tickets=resolved,
        aht=distribution(handled),
        fcr_counted=fcr_counted,
        fcr_resolved=fcr_resolved,
        csat_scores=tuple(csat_scores),
        nps_scores=tuple(nps_scores),
        sla_counted=len(sla),
        sla_met=sum(
            1
            for t in sla
            if t.first_response_at is not None and t.first_response_at <= t.first_response_due
        ),
        transfer_counted=len(transfer),
        transfer_met=sum(
            1 for t in transfer if t.assigned_at is not None and t.assigned_at <= t.transfer_due
        ),
        breaches=breaches,
    )


def bot_first_responses(messages: list[CustomerMessage], period: Period) -> list[float]:
    """Seconds from each customer message of the period to the bot's first reply to it."""
    return [
        seconds(m.at, m.bot_reply_at)
        for m in messages
        if m.bot_reply_at is not None and within(m.at, period.start, period.end)
    ]


def human_first_responses(
    tickets: list[TicketFact], period: Period, settings: Settings
) -> tuple[list[float], list[float]]:
    """The human first responses given in the period, from when each ticket reached agents:
    (wall-clock seconds, seconds its queue's schedule was open). The figures and the report's
    histogram both read them from here."""
    wall: list[float] = []
    open_: list[float] = []
    for ticket in tickets:
        answered = ticket.first_response_at
        if answered is None or not within(answered, period.start, period.end):
            continue
        began = reached_agents(ticket, settings.first_response_seconds)
        wall.append(seconds(began, answered))
        hours = settings.hours_by_queue.get(ticket.queue, settings.front)
        open_.append(open_seconds(hours, began, answered))
    return wall, open_


def reached_agents(ticket: TicketFact, first_response_seconds: Mapping[str, int]) -> datetime:
    """When the ticket reached agents, where its human first-response clock starts:
    `available_at` (a ticket written while the queue was closed reaches agents at opening), or
    `created_at` if later. A ticket moved back to a queue after its first reply (a transfer or
    a reopen) has a later `available_at`; for it the moment its first-response deadline was
    counted from is used (`first_response_due` minus the SLA of the queue it was created in)."""
    start = max(ticket.available_at, ticket.created_at)
    if ticket.first_response_at is not None and start > ticket.first_response_at:
        created = next((e for e in ticket.events if e.kind == "created"), None)
        queue = str(created.data.get("queue", ticket.queue)) if created else ticket.queue
        sla = timedelta(seconds=first_response_seconds.get(queue, 0))
        start = min(max(ticket.created_at, ticket.first_response_due - sla), start)
        start = min(start, ticket.first_response_at)
    return start


def top_faq(messages: list[CustomerMessage], period: Period, limit: int = 10) -> list[Any]:
    """The FAQ entries answered most in the period: [(entry id, answers)]."""
    counts = Counter(
        m.faq_id
        for m in messages
        if m.action == "answer" and m.faq_id and within(m.at, period.start, period.end)
    )
    return [[faq_id, n] for faq_id, n in counts.most_common(limit)]


def unanswered(messages: list[CustomerMessage], period: Period) -> list[CustomerMessage]:
    """Customers' questions the bot had no answer for: it fell back (not understood), or handed
    off because it kept not understanding ("repeated failure")."""
    return [
        m
        for m in messages
        if within(m.at, period.start, period.end)
        and m.text.strip()
        and (
            (
                m.action == "fallback"
                and not any(r.startswith("error in the pipeline") for r in m.reasons)
            )
            or (m.action == "handoff" and any(r.startswith(REPEATED_FAILURE) for r in m.reasons))
        )
    ]


Cluster = tuple[str, int, list[str]]


def group_identical(texts: list[str], limit: int = 15) -> list[Cluster]:
    """The simple grouping of unanswered questions: identical (masked, whitespace- and
    case-folded) texts together, most asked first. Each cluster is (label, count, examples).
    A smarter grouping (the encoder's near-duplicates, `bot faq gaps`) returns the same
    shape and is passed to the report instead."""
    groups: dict[str, list[str]] = defaultdict(list)
    for text in texts:
        groups[" ".join(text.split()).casefold()].append(text)
    ranked = sorted(groups.values(), key=lambda g: (-len(g), g[0]))
    return [(g[0], len(g), sorted(set(g))[:3]) for g in ranked[:limit]]


def volume_by_hour(messages: list[CustomerMessage], period: Period) -> list[list[int]]:
    """Customer messages by local weekday (0 = Monday) and hour, in the period's zone."""
    grid = [[0] * 24 for _ in range(7)]
    zone = period.start.tzinfo
    for m in messages:
        if within(m.at, period.start, period.end):
            local = m.at.astimezone(zone)
            grid[local.weekday()][local.hour] += 1
    return grid


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
