"""Writing a week's report: what `bot report --week` and the scheduler's Monday job share.
Reads the store in one connection, renders, writes the page and its JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from bot.content.config import Config
from bot.hours.schedule import Schedule
from bot.metrics import page
from bot.metrics.figures import Cluster
from bot.metrics.periods import Period, week_of
from bot.metrics.unanswered import HasFaq, unanswered_clusters
from bot.metrics.weekly import file_stem, week_report, write
from bot.store.database import Store


def report_dir(config: Config) -> Path:
    """`[reports] dir`, relative to the config file."""
    return config.resolve(config.reports.dir)


def write_week(
    config: Config,
    store: Store,
    schedules: Mapping[str, Schedule],
    week: Period,
    now: datetime,
    *,
    out_dir: Path | None = None,
    language: str | None = None,
    faq_titles: Mapping[str, str] | None = None,
    clusters: Sequence[Cluster] | None = None,
    knowledge: HasFaq | None = None,
) -> tuple[Path, Path]:
    """The week's page and JSON in `out_dir` (default `[reports] dir`), labels in `language`
    (default: the shop's first language); returns (html, json). With `knowledge`, the
    unanswered questions are grouped by the bot's encoder (as `bot faq gaps` groups them) and
    the FAQ entries are titled by their first question; without, identical texts are
    grouped."""
    if knowledge is not None:
        if clusters is None:
            clusters = [
                (gap.label, gap.customers, list(gap.examples))
                for gap in unanswered_clusters(store, knowledge, week.start, week.end, limit=15)
            ]
        if faq_titles is None:
            faq_titles = {e.id: e.questions[0] for e in knowledge.faq.by_id.values()}
    with store.engine.connect() as conn:
        report = week_report(
            conn, config, schedules, week, now, faq_titles=faq_titles, clusters=clusters
        )
    language = language or config.content.languages[0]
    report["language"] = language
    return write(out_dir or report_dir(config), week, report, page.render(report, language))


def due_week(config: Config, zone_now: datetime) -> Period | None:
    """The week whose report is due at `zone_now` (a time in the default queue's zone): the
    week that ended, once this week's `[reports] weekly_at` has passed; None before it."""
    tz = zone_now.tzinfo
    assert tz is not None
    this_week = week_of(zone_now.date(), tz)
    minutes = config.reports.weekly_minutes
    due = datetime.combine(
        this_week.start.date() + timedelta(days=config.reports.weekly_day),
        time(minutes // 60, minutes % 60),
        tz,
    )
    return None if zone_now < due else this_week.before()


#: a report's file name without its suffix: the week's Monday
REPORT_STEM = re.compile(r"^week-\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Headline:
    """The newest complete report: its name and the figures the supervisor page shows."""

    stem: str
    week: dict[str, Any]
    summary: dict[str, Any]
    change: dict[str, Any]


def latest(config: Config, out_dir: Path | None = None) -> Headline | None:
    """The newest week with both its page and JSON written, or None."""
    folder = out_dir or report_dir(config)
    stems = sorted(
        path.stem
        for path in folder.glob("week-*.html")
        if REPORT_STEM.match(path.stem) and path.with_suffix(".json").exists()
    )
    if not stems:
        return None
    data = json.loads((folder / f"{stems[-1]}.json").read_text(encoding="utf-8"))
    return Headline(stems[-1], data["week"], data["summary"], data.get("change", {}))


def page_of(config: Config, stem: str, out_dir: Path | None = None) -> Path | None:
    """A report page by its name; None for anything else (no path can be smuggled in)."""
    if not REPORT_STEM.match(stem):
        return None
    path = (out_dir or report_dir(config)) / f"{stem}.html"
    return path if path.is_file() else None


def written(config: Config, week: Period, out_dir: Path | None = None) -> bool:
    return ((out_dir or report_dir(config)) / f"{file_stem(week)}.html").exists()
