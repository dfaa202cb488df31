"""Timed work, run by APScheduler: releasing tickets at opening time, reloading edited schedules,
FAQ and intents, resending failed replies.

The jobs are plain functions of the pipeline and its clock, so tests drive them with a fixed
clock instead of waiting; APScheduler only decides when they run.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler

from bot.content.config import pick
from bot.content.problems import ProblemsError
from bot.domain.messages import Outbound, Priority
from bot.hours.schedule import read_schedules
from bot.pipeline.runner import Pipeline
from bot.store.database import Ticket
from bot.understanding.encoders import Encoder

log = logging.getLogger("bot.timers")

RELEASE_EVERY_S = 30
RELOAD_EVERY_S = 10
RESEND_EVERY_S = 30


def release_waiting(pipeline: Pipeline) -> list[Ticket]:
    """At opening time, hand the tickets queued while closed to agents, urgent first then oldest,
    and tell each customer an agent is on it — where the channel still lets the bot write."""
    now = pipeline.clock.now()
    config, store = pipeline.config, pipeline.store
    released = sorted(
        (
            ticket
            for queue, queue_config in config.queues.items()
            if pipeline.knowledge.schedules[queue_config.schedule].is_open(now)
            for ticket in store.release_waiting(queue, now)
        ),
        key=lambda t: (Priority(t.priority).rank, t.created_at, t.id),
    )
    for ticket in released:
        conversation = store.conversation(ticket.conversation_id)
        if not pipeline.may_write(conversation, now):
            log.info(
                "ticket %s released; %s no longer lets the bot write to its customer",
                ticket.id,
                conversation.channel,
            )
            continue
        text = pick(config.texts.released, conversation.language)
        outbox_id = store.notify(conversation, text, now)
        pipeline.send(
            Outbound(conversation.channel, conversation.chat_id, text, conversation.id, outbox_id)
        )
    if released:
        log.info("released %d waiting ticket(s)", len(released))
    return released


def _folder_stamp(folder: Path, pattern: str) -> tuple[tuple[str, float, int], ...]:
    return tuple(
        sorted((p.name, p.stat().st_mtime, p.stat().st_size) for p in folder.glob(pattern))
    )


class ScheduleReloader:
    """Swaps in edited schedules; a broken edit is reported (file:line) and the old ones stay."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.folder = pipeline.config.resolve(pipeline.config.content.schedules)
        self._seen = self._stamp()

    def _stamp(self) -> tuple[tuple[str, float, int], ...]:
        return _folder_stamp(self.folder, "*.toml")

    def __call__(self) -> bool:
        """Reload if a file changed; True when new schedules were swapped in."""
        stamp = self._stamp()
        if stamp == self._seen:
            return False
        self._seen = stamp
        schedules, problems = read_schedules(self.folder)
        missing = {q.schedule for q in self.pipeline.config.queues.values()} - set(schedules)
        if problems or missing:
            for problem in problems:
                log.error("schedule edit not applied, keeping the old schedules: %s", problem)
            for name in sorted(missing):
                log.error(
                    "schedule edit not applied: a queue needs %s", Path(self.folder, f"{name}.toml")
                )
            return False
        self.pipeline.knowledge = dataclasses.replace(self.pipeline.knowledge, schedules=schedules)
        log.info("schedules reloaded from %s", self.folder)
        return True


class KnowledgeReloader:
    """Re-learns an edited FAQ or intent file in the background and swaps the new index and
    classifier in at once; messages already under way finish on the old ones. A broken edit is
    reported with file:line and the old index keeps serving."""

    def __init__(self, pipeline: Pipeline, encoder: Encoder) -> None:
        self.pipeline = pipeline
        self.encoder = encoder
        config = pipeline.config
        self.folders = [config.resolve(config.content.faq), config.resolve(config.content.intents)]
        self._seen = self._stamp()
        #: the problems of the last edit that was not applied, for tests and status pages
        self.problems: list[str] = []

    def _stamp(self) -> tuple[tuple[tuple[str, float, int], ...], ...]:
        return tuple(_folder_stamp(folder, "*.y*ml") for folder in self.folders)

    def __call__(self) -> bool:
        """Reload if a file changed; True when new knowledge was swapped in."""
        from bot.assembly import (
            load_knowledge,  # app builds pipelines; importing it here avoids a cycle
        )

        stamp = self._stamp()
        if stamp == self._seen:
            return False
        self._seen = stamp
        try:
            fresh = load_knowledge(self.pipeline.config, self.encoder)
        except ProblemsError as exc:
            self.problems = [str(problem) for problem in exc.problems]
            for problem in self.problems:
                log.error("FAQ/intent edit not applied, the old index keeps serving: %s", problem)
            return False
        except Exception:
            log.exception("FAQ/intent edit not applied, the old index keeps serving")
            return False
        self.problems = []
        self.pipeline.knowledge = dataclasses.replace(
            self.pipeline.knowledge,
            faq=fresh.faq,
            classifier=fresh.classifier,
            intents=fresh.intents,
        )
        log.info("FAQ and intents reloaded: %s", fresh.faq.thresholds.describe())
        return True


def start(pipeline: Pipeline, encoder: Encoder | None = None) -> BackgroundScheduler:
    """Start the timed jobs in a background thread; call .shutdown() to stop them."""
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        release_waiting,
        "interval",
        seconds=RELEASE_EVERY_S,
        args=[pipeline],
        id="release",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        pipeline.resend_pending,
        "interval",
        seconds=RESEND_EVERY_S,
        kwargs={"min_age": timedelta(seconds=RESEND_EVERY_S)},
        id="resend",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        ScheduleReloader(pipeline),
        "interval",
        seconds=RELOAD_EVERY_S,
        id="reload-schedules",
        max_instances=1,
        coalesce=True,
    )
    if encoder is not None:
        scheduler.add_job(
            KnowledgeReloader(pipeline, encoder),
            "interval",
            seconds=RELOAD_EVERY_S,
            id="reload-knowledge",
            max_instances=1,
            coalesce=True,
        )
    scheduler.start()
    return scheduler
