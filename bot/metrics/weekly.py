"""The weekly service report's numbers: a week's figures, each day's, per channel, queue and
agent, the week before and the change, the hours customers write in, the FAQ entries answered
most and the questions the bot had no answer for. One plain dict, written as JSON beside the
HTML page (bot/metrics/page.py) so that other tools read the same numbers people see.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from bot.content.config import Config
from bot.domain.privacy import for_admins
from bot.hours.schedule import Schedule
from bot.metrics.arithmetic import change, within
from bot.metrics.definitions import DEFINITIONS
from bot.metrics.figures import (
    Cluster,
    Facts,
    Figures,
    Settings,
    bot_first_responses,
    figures,
    group_identical,
    human_first_responses,
    top_faq,
    unanswered,
    volume_by_hour,
)
from bot.metrics.periods import Period
from bot.store import metric_reads

#: the figures compared with the week before: (key, how the change is told)
HEADLINE: tuple[tuple[str, str], ...] = (
    ("customer_messages", "relative"),
    ("conversations", "relative"),
    ("tickets", "relative"),
    ("frt_bot_median", "relative"),
    ("frt_human_median", "relative"),
    ("aht_mean", "relative"),
    ("fcr", "points"),
    ("csat", "points"),
    ("csat_mean", "relative"),
    ("nps", "points"),
    ("containment", "points"),
    ("sla", "points"),
    ("transfer", "points"),
    ("complaint_rate", "points"),
    ("repeat_rate", "points"),
    ("after_hours_messages", "relative"),
)
#: when lower is better, a fall is good news (the page colours it so)
LOWER_IS_BETTER = {
    "frt_bot_median",
    "frt_human_median",
    "aht_mean",
    "complaint_rate",
    "repeat_rate",
}

BOT_BUCKETS = ((1, "<1s"), (2, "1–2s"), (5, "2–5s"), (10, "5–10s"), (30, "10–30s"), (None, "≥30s"))
HUMAN_BUCKETS = (
    (60, "<1m"),
    (120, "1–2m"),
    (300, "2–5m"),
    (900, "5–15m"),
    (3600, "15–60m"),
    (None, "≥1h"),
)


def settings_for(config: Config, schedules: Mapping[str, Schedule], now: datetime) -> Settings:
    front = schedules[config.front_schedule]
    return Settings(
        hours_by_queue={q: schedules[c.schedule] for q, c in config.queues.items()},
        front=front,
        queues=set(config.queues),
        first_response_seconds={q: c.first_response_seconds for q, c in config.queues.items()},
        reopen_window=timedelta(minutes=config.handoff.reopen_minutes),
        business_hours=config.reports.business_hours,
        now=now,
    )


def load(conn: Connection, period: Period, reopen_window: timedelta) -> Facts:
    """The rows a period's figures need. Tickets are read with the reopen window on both sides
    (a claim before the period, a reopening or a new ticket after a resolution); each figure
    then keeps what falls inside the period."""
    tickets = metric_reads.tickets_around(
        conn, period.start - reopen_window, period.end + reopen_window
    )
    customers = {(t.channel, t.user_id) for t in tickets}
    return Facts(
        messages=metric_reads.customer_messages(conn, period.start, period.end),
        conversations=metric_reads.conversations_opened(conn, period.start, period.end),
        tickets=tickets,
        tickets_by_customer=metric_reads.customers_tickets_created(
            conn, customers, period.start - reopen_window, period.end + 2 * reopen_window
        ),
    )


def week_report(
    conn: Connection,
    config: Config,
    schedules: Mapping[str, Schedule],
    week: Period,
    now: datetime,
    *,
    faq_titles: Mapping[str, str] | None = None,
    clusters: Sequence[Cluster] | None = None,
) -> dict[str, Any]:
    """The week's report as plain numbers. `clusters` replaces the unanswered questions'
    grouping with one made elsewhere (`bot faq gaps`: the encoder's near-duplicates); without
    it, identical texts are grouped together. The questions' texts are masked as admins may
    keep them (bot.domain.privacy.for_admins), whoever grouped them."""
    settings = settings_for(config, schedules, now)
    facts = load(conn, week, settings.reopen_window)
    before = week.before()
    earlier = figures(load(conn, before, settings.reopen_window), before, settings)
    names = metric_reads.agent_names(conn)
    total = figures(facts, week, settings)
    channels = sorted({m.channel for m in facts.messages} | {t.channel for t in facts.tickets})
    agents = sorted({t.agent_id for t in facts.tickets if t.agent_id is not None})
    if clusters is None:
        clusters = group_identical([for_admins(m.text) for m in unanswered(facts.messages, week)])
    wall, business = human_first_responses(facts.tickets, week, settings)
    titles = faq_titles or {}
    return {
        "week": {
            "start": week.start.date().isoformat(),
            "end": (week.end.date() - timedelta(days=1)).isoformat(),
            "zone": str(week.start.tzinfo),
        },
        "generated_at": now.astimezone(week.start.tzinfo).isoformat(timespec="seconds"),
        "definitions": {d.key: d.means for d in DEFINITIONS},
        "summary": total.as_json(),
        "previous_week": earlier.as_json(),
        "change": compare(total, earlier),
        "days": [
            {"date": day.start.date().isoformat(), **figures(facts, day, settings).as_json()}
            for day in week.days()
        ],
        "by_channel": {
            channel: figures(facts.only(channel=channel), week, settings).as_json()
            for channel in channels
        },
        "by_queue": {
            queue: figures(facts.only(queue=queue), week, settings).as_json(tickets_only=True)
            for queue in config.queues
        },
        "by_agent": [
            {
                "agent": names.get(agent_id, f"#{agent_id}"),
                "agent_id": agent_id,
                **figures(facts.only(agent_id=agent_id), week, settings).as_json(tickets_only=True),
            }
            for agent_id in agents
        ],
        "volume_by_hour": volume_by_hour(facts.messages, week),
        "frt_histogram": {
            "bot": histogram(bot_first_responses(facts.messages, week), BOT_BUCKETS),
            # the human first responses behind the headline FRT (business hours or wall clock)
            "human": histogram(business if settings.business_hours else wall, HUMAN_BUCKETS),
        },
        "top_faq": [
            {"faq_id": faq_id, "question": titles.get(faq_id, ""), "answers": n}
            for faq_id, n in top_faq(facts.messages, week)
        ],
        "unanswered": [
            {
                "label": for_admins(label),
                "count": count,
                "examples": [for_admins(example) for example in examples],
            }
            for label, count, examples in clusters
        ],
        "breaches": [
            {
                "ticket": t.id,
                "queue": t.queue,
                "priority": t.priority,
                "breach": t.breach,
                "at": (
                    t.breached_at.astimezone(week.start.tzinfo).isoformat(timespec="seconds")
                    if t.breached_at
                    else None
                ),
                "agent": names.get(t.agent_id) if t.agent_id is not None else None,
            }
            for t in facts.tickets
            if within(t.breached_at, week.start, week.end)
        ],
    }


def histogram(values: list[float], buckets: Sequence[tuple[int | None, str]]) -> list[list[Any]]:
    """[[label, count]] for buckets with upper bounds (exclusive); the last has none."""
    counts = [0] * len(buckets)
    for value in values:
        for i, (upper, _) in enumerate(buckets):
            if upper is None or value < upper:
                counts[i] += 1
                break
    return [[label, n] for (_, label), n in zip(buckets, counts, strict=True)]


def headline(figures: Figures) -> dict[str, float | None]:
    """The figures compared week on week, by key."""
    return {
        "customer_messages": figures.customer_messages,
        "conversations": figures.conversations,
        "tickets": figures.tickets,
        "frt_bot_median": figures.frt_bot.median,
        "frt_human_median": figures.frt_agents.median,
        "aht_mean": figures.aht.mean,
        "fcr": figures.fcr,
        "csat": figures.csat,
        "csat_mean": figures.csat_mean,
        "nps": figures.nps,
        "containment": figures.containment,
        "sla": figures.sla,
        "transfer": figures.transfer,
        "complaint_rate": figures.complaint_rate,
        "repeat_rate": figures.repeat_rate,
        "after_hours_messages": figures.after_hours_messages,
    }


def compare(now: Figures, before: Figures) -> dict[str, dict[str, Any]]:
    """Each headline figure this week and the week before, and the change: relative (0.1 =
    10% more) for counts and times, in points for shares (0.05 = 5 percentage points) and NPS
    (points on its −100…100 scale)."""
    current, previous = headline(now), headline(before)
    out = {}
    for key, kind in HEADLINE:
        a, b = current[key], previous[key]
        if kind == "relative":
            delta = change(a, b)
        elif a is None or b is None:
            delta = None
        else:
            delta = a - b
        out[key] = {
            "now": None if a is None else round(a, 4),
            "before": None if b is None else round(b, 4),
            "change": None if delta is None else round(delta, 4),
            "kind": kind,
            "lower_is_better": key in LOWER_IS_BETTER,
        }
    return out


def file_stem(week: Period) -> str:
    """`week-YYYY-MM-DD`, the week's Monday."""
    return f"week-{week.start.date().isoformat()}"


def write(out_dir: Path, week: Period, report: dict[str, Any], html: str) -> tuple[Path, Path]:
    """The page and its JSON, each written whole under a temporary name and then renamed, so
    a reader (or the scheduler's "already written?") never sees half a file. The JSON goes
    first: the page's existence means the report is complete."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = file_stem(week)
    paths = (out_dir / f"{stem}.json", out_dir / f"{stem}.html")
    texts = (json.dumps(report, ensure_ascii=False, indent=1) + "\n", html)
    for path, text in zip(paths, texts, strict=True):
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    return paths[1], paths[0]
