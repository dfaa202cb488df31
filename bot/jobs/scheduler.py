"""Timed work, run by APScheduler in a small thread pool (never on the event loop).

Two kinds of job: each worker reloads its own copy of edited content and renews or seeks the
scheduler's leadership; the cluster's jobs (releasing tickets at opening time; waiting care, SLA
escalation and closing resolved tickets; the weekly report) run on every worker's timer but do
their work only on the leader, and are idempotent besides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from bot.domain.messages import Outbound
from bot.jobs.care import CareRound, run_care
from bot.jobs.leader import Leadership
from bot.jobs.release import release_queue_closed
from bot.jobs.reload import KnowledgeReloader, ScheduleReloader
from bot.metrics.writer import due_week, write_week, written
from bot.pipeline.knowledge import Knowledge
from bot.pipeline.runner import Pipeline

log = logging.getLogger("bot.jobs")

RELEASE_EVERY_S = 30
CARE_EVERY_S = 15
RELOAD_EVERY_S = 10
LEADERSHIP_EVERY_S = 5
#: the weekly report is looked for this often; it is written once, the first time its moment
#: (`[reports] weekly_at`) has passed and its file is not there yet
REPORT_EVERY_S = 300


def release_if_leading(
    pipeline: Pipeline, leadership: Leadership, on_notices: Callable[[Sequence[Outbound]], object]
) -> int:
    """The release job: only the leader releases; returns how many tickets it released."""
    if not leadership.is_leader:
        return 0
    released, notices = release_queue_closed(
        pipeline.config, pipeline.store, pipeline.knowledge.schedules, pipeline.clock.now()
    )
    if notices:
        on_notices(notices)
    return len(released)


def care_if_leading(
    pipeline: Pipeline, leadership: Leadership, on_notices: Callable[[Sequence[Outbound]], object]
) -> CareRound | None:
    """The care job: only the leader apologises to waiting customers, escalates breached tickets
    and closes resolved ones; the apologies go to the dispatcher at once. None when not leading."""
    if not leadership.is_leader:
        return None
    done = run_care(
        pipeline.config, pipeline.store, pipeline.knowledge.schedules, pipeline.clock.now()
    )
    if done.notices:
        on_notices(done.notices)
    return done


def weekly_report_if_leading(pipeline: Pipeline, leadership: Leadership) -> Path | None:
    """The weekly-report job: once `[reports] weekly_at` (Monday 09:00 in the default queue's
    time zone) has passed, the leader writes the week that ended, unless its file is already
    there. Checking on an interval instead of firing once at 09:00 means a restart, a
    leadership change or a worker that was down at 09:00 still gets the report written, and
    only once. Returns the page written, None when there was nothing to do."""
    if not leadership.is_leader:
        return None
    config = pipeline.config
    knowledge = pipeline.knowledge
    zone = knowledge.schedules[config.front_schedule].zone
    now = pipeline.clock.now()
    week = due_week(config, now.astimezone(zone))
    if week is None or written(config, week):
        return None
    html, _ = write_week(
        config, pipeline.store, knowledge.schedules, week, now, knowledge=knowledge
    )
    log.info("weekly report written: %s", html)
    return html


def start(
    pipeline: Pipeline,
    leadership: Leadership | None,
    learn: Callable[[], Knowledge] | None = None,
    on_notices: Callable[[Sequence[Outbound]], object] = lambda notices: None,
) -> BackgroundScheduler:
    """Start the timed jobs in background threads; call .shutdown() to stop them. `learn`
    re-learns the FAQ and intents after an edit (None: no FAQ/intent reload). Without a
    `leadership` (`bot chat`, which must never act for the cluster) only this process's own
    jobs run: reloading edited content."""
    scheduler = BackgroundScheduler(
        timezone="UTC", executors={"default": ThreadPoolExecutor(max_workers=2)}
    )
    every = {"trigger": "interval", "max_instances": 1, "coalesce": True}
    if leadership is not None:
        scheduler.add_job(leadership.renew, seconds=LEADERSHIP_EVERY_S, id="leadership", **every)
        scheduler.add_job(
            release_if_leading,
            seconds=RELEASE_EVERY_S,
            args=[pipeline, leadership, on_notices],
            id="release",
            **every,
        )
        scheduler.add_job(
            care_if_leading,
            seconds=CARE_EVERY_S,
            args=[pipeline, leadership, on_notices],
            id="care",
            **every,
        )
        scheduler.add_job(
            weekly_report_if_leading,
            seconds=REPORT_EVERY_S,
            args=[pipeline, leadership],
            id="weekly-report",
            **every,
        )
    scheduler.add_job(
        ScheduleReloader(pipeline), seconds=RELOAD_EVERY_S, id="reload-schedules", **every
    )
    if learn is not None:
        scheduler.add_job(
            KnowledgeReloader(pipeline, learn),
            seconds=RELOAD_EVERY_S,
            id="reload-knowledge",
            **every,
        )
    if leadership is not None:
        leadership.renew()
    scheduler.start()
    return scheduler
