"""Swapping in edited content while the bot runs. Every worker reloads its own copy; a broken
edit is reported with file:line and the old content keeps serving."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from bot.content.entries import faq_files, yaml_files
from bot.content.problems import ProblemsError, only_errors, only_warnings
from bot.hours.schedule import read_schedules
from bot.jobs.heap import refreeze
from bot.pipeline.knowledge import Knowledge
from bot.pipeline.runner import Pipeline

log = logging.getLogger("bot.jobs")


def folder_stamp(folder: Path, pattern: str) -> tuple[tuple[str, float, int], ...]:
    """What changes when a file in the folder is edited, added or removed: names, mtimes, sizes."""
    return files_stamp(folder.glob(pattern))


def files_stamp(files: Iterable[Path]) -> tuple[tuple[str, float, int], ...]:
    """Names, mtimes and sizes of these files: what changes when one is edited."""
    return tuple(sorted((p.name, p.stat().st_mtime, p.stat().st_size) for p in files))


class ScheduleReloader:
    """Swaps in edited schedules; a broken edit is reported (file:line) and the old ones stay."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.folder = pipeline.config.resolve(pipeline.config.content.schedules)
        self._seen = self._stamp()

    def _stamp(self) -> tuple[tuple[str, float, int], ...]:
        return folder_stamp(self.folder, "*.toml")

    def __call__(self) -> bool:
        """Reload if a file changed; True when new schedules were swapped in."""
        stamp = self._stamp()
        if stamp == self._seen:
            return False
        self._seen = stamp
        schedules, problems = read_schedules(self.folder)
        missing = {q.schedule for q in self.pipeline.config.queues.values()} - set(schedules)
        for warning in only_warnings(problems):
            log.warning("schedule: %s", warning)
        if only_errors(problems) or missing:
            for problem in only_errors(problems):
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
    classifier in at once; messages already under way finish on the old ones. `learn` reads and
    learns the content (bot.assembly.load_knowledge), raising ProblemsError on a broken edit."""

    def __init__(self, pipeline: Pipeline, learn: Callable[[], Knowledge]) -> None:
        self.pipeline = pipeline
        self.learn = learn
        config = pipeline.config
        self.folders = [config.resolve(config.content.faq), config.resolve(config.content.intents)]
        self._seen = self._stamp()
        #: the problems of the last edit that was not applied, for tests and status pages
        self.problems: list[str] = []

    def _stamp(self) -> tuple[tuple[tuple[str, float, int], ...], ...]:
        # an edit of faq/drafts.yaml is not content: the bot never reads it
        faq, intents = self.folders
        return files_stamp(faq_files(faq)), files_stamp(yaml_files(intents))

    def __call__(self) -> bool:
        """Reload if a file changed; True when new knowledge was swapped in."""
        stamp = self._stamp()
        if stamp == self._seen:
            return False
        self._seen = stamp
        try:
            fresh = self.learn()
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
        refreeze()  # the old index and models go; the new ones stay out of the sweeps
        return True
