"""Hours written out in texts for customers ("周一至周五9:00–18:00" in a FAQ answer or the
after-hours notice), compared with the schedule: after the hours change, a text that still states
the old ones tells customers the wrong hours. `bot check` warns of each; `{hours}` in the text
says the schedule's own hours instead (Schedule.fill).

A notice is about the team's hours, so every range in it counts. A FAQ answer or a reply may
state other hours (a store's, a delivery slot, a maintenance window): there a range counts only
in a sentence that speaks of the service's hours (SERVICE_WORDS).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from bot.content.problems import Problem
from bot.hours.schedule import HOURS, Interval, Schedule

#: "9:00-18:00", "09:00–18:00", "9:00 至 18:00", "between 9:00 and 18:00", "9:00 to 17:30"
_STATED = re.compile(
    r"(?<![\d:：])(\d{1,2})[:：](\d{2})\s*(?:-|–|—|~|～|至|到|to|and|until)\s*"
    r"(\d{1,2})[:：](\d{2})(?![\d:：])",
    re.I,
)


#: words of a sentence about the service's own hours
SERVICE_WORDS = (
    "客服",
    "人工",
    "工作时间",
    "服务时间",
    "营业时间",
    "上班",
    "在线时间",
    "working hours",
    "opening hours",
    "business hours",
    "office hours",
    "support hours",
    "service hours",
    "agent",
    "support team",
    "customer service",
    "our team",
)
_SENTENCE = re.compile(r"[。；;！!？?\n]+|\.\s+")


def stated_hours(text: str, service_only: bool = False) -> list[tuple[str, Interval]]:
    """The ranges of hours a text states, as written and as minutes from midnight; with
    `service_only`, those in sentences that speak of the service's hours."""
    if service_only:
        return [
            found
            for sentence in _SENTENCE.split(text)
            if any(word in sentence.casefold() for word in SERVICE_WORDS)
            for found in stated_hours(sentence)
        ]
    found = []
    for match in _STATED.finditer(text):
        h1, m1, h2, m2 = map(int, match.groups())
        if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59:
            continue
        start, end = h1 * 60 + m1, h2 * 60 + m2
        found.append((match.group(0), Interval(start, end if end > start else end + 1440)))
    return found


def hours_problems(
    texts: dict[str, str],
    schedule: Schedule,
    path: Path,
    lines: Mapping[str, int | None],
    what: str,
    *,
    service_only: bool = True,
    others: Iterable[Schedule] = (),
) -> list[Problem]:
    """A warning for each range of hours these texts (one per language, on `lines`) state that
    is none of
    the schedule's (weekly or on a date), nor of the `others` (a FAQ answer may tell the hours
    of any queue); `service_only=False` for a notice, which is all about the service's
    hours."""
    known = schedule.all_intervals().union(*(other.all_intervals() for other in others))
    problems = []
    for language, text in texts.items():
        for written, interval in stated_hours(text, service_only):
            if interval in known:
                continue
            problems.append(
                Problem(
                    path,
                    lines.get(language),
                    f"{what} ({language}) states the hours {written!r}, which the "
                    f"{schedule.name} schedule does not have ({schedule.hours_text('en')})"
                    + (", nor any other queue's" if others else ""),
                    f"write {HOURS} where the hours go: the bot fills in the schedule's hours "
                    f"({schedule.file.name}) when it replies, so the text follows the schedule",
                    severity="warning",
                )
            )
    return problems
