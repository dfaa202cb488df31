"""Texts that lack a language the shop answers in: warnings, not errors.

A customer who writes English and meets an answer without `en` gets the Chinese one (see
`config.pick`). That is right for a Chinese-only shop and a silent gap for a bilingual one, so
`bot check` names each such text and the shop says which languages it answers in
(`[content] languages` in config.toml).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from bot.content.config import Config
from bot.content.entries import FaqEntry, IntentSpec
from bot.content.problems import Problem, line_of_key

NAMES = {"zh": "Chinese", "en": "English"}


class ScheduleTexts(Protocol):
    """What this check reads of a schedule (bot.hours.schedule.Schedule), without importing
    the hours room, which itself builds on content."""

    @property
    def file(self) -> Path: ...

    @property
    def notice(self) -> Mapping[str, str]: ...

    @property
    def handoff_notice(self) -> Mapping[str, str]: ...

    @property
    def greetings(self) -> Mapping[str, Mapping[str, str]]: ...


def missing_languages(
    config: Config,
    faq: Iterable[FaqEntry],
    intents: Iterable[IntentSpec],
    schedules: Iterable[ScheduleTexts],
) -> list[Problem]:
    """One warning per text and missing language, naming the file, the line and the fix."""
    wanted = config.content.languages
    found: list[Problem] = []

    def warn(texts: Mapping[str, str], file: Path, line: int | None, what: str, fix: str) -> None:
        for language in wanted:
            if not texts.get(language):
                found.append(
                    Problem(
                        file,
                        line,
                        f"{what} has no {NAMES[language]} (`{language}`) text: customers "
                        f"writing in {NAMES[language]} get {_fallback(texts)}",
                        fix.replace("{language}", language) + _or_silence(config, language),
                        severity="warning",
                    )
                )

    for entry in faq:
        warn(
            entry.answer,
            entry.file,
            entry.line,
            f"FAQ entry {entry.id!r}: the answer",
            "add `{language}:` under `answer:`",
        )
    for intent in intents:
        if intent.reply:
            warn(
                intent.reply,
                intent.file,
                intent.line,
                f"intent {intent.name!r}: the reply",
                "add `{language}:` under `reply:`",
            )
    for key, text in config.texts.model_dump().items():
        if isinstance(text, dict):
            warn(
                text,
                config.path,
                line_of_key(config.path, f"texts.{key}"),
                f"[texts.{key}]",
                f'add {{language}} = "…" under [texts.{key}]',
            )
    for schedule in schedules:
        for section, texts in [
            ("notice", schedule.notice),
            ("handoff_notice", schedule.handoff_notice),
            *((f'greetings."{k}"', v) for k, v in schedule.greetings.items()),
        ]:
            if texts:
                warn(
                    texts,
                    schedule.file,
                    _line_of_table(schedule.file, section),
                    f"[{section}]",
                    f'add {{language}} = "…" under [{section}]',
                )
    return found


def _line_of_table(path: Path, section: str) -> int | None:
    """The line of a table header such as [notice] or [greetings."春节"]."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    header = f"[{section}]"
    found = (n for n, text in enumerate(lines, start=1) if text.strip().startswith(header))
    return next(found, None) or line_of_key(path, section.split(".")[0])


def _or_silence(config: Config, missing: str) -> str:
    """The other way out: say the shop does not answer in that language."""
    rest = [language for language in config.content.languages if language != missing]
    if not rest:
        return ""
    listed = ", ".join(f'"{language}"' for language in rest)
    only = " and ".join(NAMES[language] for language in rest)
    return (
        f"; or, if the shop answers only in {only}, set languages = [{listed}] under [content] "
        f"in {config.path.name}"
    )


def _fallback(texts: Mapping[str, str]) -> str:
    """What `config.pick` gives instead, in words."""
    present = [NAMES.get(language, language) for language in ("zh", "en") if texts.get(language)]
    return f"the {present[0]} text" if present else "nothing"
