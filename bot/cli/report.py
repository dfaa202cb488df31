"""`bot report --week`: the weekly service report, written as a self-contained HTML page and
the same numbers as JSON."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from bot.content.config import Config
from bot.domain.clock import SystemClock
from bot.metrics.periods import last_full_week, week_of
from bot.metrics.writer import write_week


def report_week(
    config: Config,
    at: str | None,
    out: Path | None,
    language: str | None,
    now: datetime | None = None,
) -> int:
    """The week holding `at` (a date, e.g. 2026-11-25), else the last full week, in the
    default queue's time zone; written to `out` (default `[reports] dir`)."""
    from bot.assembly import content_encoder, load_knowledge
    from bot.store.database import Store

    # the bot's own encoder groups the week's unanswered questions, as `bot faq gaps` does
    content = load_knowledge(config, content_encoder(config))
    zone = content.schedules[config.front_schedule].zone
    now = now or SystemClock().now()
    week = week_of(date.fromisoformat(at), zone) if at else last_full_week(now, zone)
    store = Store(config.storage_url)
    store.migrate()
    try:
        html, data = write_week(
            config,
            store,
            content.schedules,
            week,
            now,
            out_dir=out,
            language=language,
            knowledge=content,
        )
    finally:
        store.close()
    print(f"{html}\n{data}")
    return 0
