"""Business hours: when a queue's humans are at work, and when they are next back.

A schedule lives in `schedules/<name>.toml`:

    timezone = "Asia/Shanghai"
    [weekly]
    mon = ["09:00-12:00", "13:30-18:00"]   # split shift
    fri = ["09:00-18:00", "22:00-02:00"]   # a range past midnight runs into Saturday
    [notice]
    zh = "…{next_open}…"

All comparisons are made in UTC on instants built in the schedule's zone, so daylight-saving
change days neither gain nor lose business hours.
"""

from __future__ import annotations

import re
import tomllib
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.problems import Problem, ProblemsError, line_of_key

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ZH_DAYS = "一二三四五六日"
_EN_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_HORIZON_DAYS = 400


@dataclass(frozen=True)
class Interval:
    """Minutes from local midnight; `end` may pass 1440 for a range that runs past midnight."""

    start: int
    end: int


@dataclass(frozen=True)
class Schedule:
    name: str
    zone: ZoneInfo
    weekly: dict[int, tuple[Interval, ...]]  # weekday (0 = Monday) -> intervals
    notice: dict[str, str]
    file: Path

    @property
    def always_open(self) -> bool:
        return all(
            any(i.start == 0 and i.end >= 1440 for i in self.weekly.get(d, ())) for d in range(7)
        )

    def _spans(self, day: date) -> list[tuple[datetime, datetime]]:
        spans = []
        for interval in self.weekly.get(day.weekday(), ()):
            start = datetime.combine(day, time(), self.zone) + timedelta(minutes=interval.start)
            end_day = day + timedelta(days=interval.end // 1440)
            end = datetime.combine(end_day, time(), self.zone) + timedelta(
                minutes=interval.end % 1440
            )
            spans.append((_local_instant(start), _local_instant(end)))
        return spans

    def is_open(self, at: datetime) -> bool:
        moment = at.astimezone(UTC)
        local_day = at.astimezone(self.zone).date()
        for day in (local_day - timedelta(days=1), local_day):
            if any(start <= moment < end for start, end in self._spans(day)):
                return True
        return False

    def next_open(self, at: datetime) -> datetime | None:
        """The next moment the service opens after `at` (None if it never closes or never opens)."""
        if self.always_open:
            return None
        moment = at.astimezone(UTC)
        local_day = at.astimezone(self.zone).date()
        for offset in range(-1, _HORIZON_DAYS):
            starts = [s for s, _ in self._spans(local_day + timedelta(days=offset)) if s > moment]
            if starts:
                return min(starts).astimezone(self.zone)
        return None

    def notice_text(self, language: str, at: datetime) -> str:
        opening = self.next_open(at)
        template = self.notice.get(language) or self.notice.get("zh", "")
        return template.replace("{next_open}", format_moment(opening, language) if opening else "")


def _local_instant(moment: datetime) -> datetime:
    """An aware local time as a UTC instant; a wall time skipped by DST moves forward."""
    as_utc = moment.astimezone(UTC)
    if as_utc.astimezone(moment.tzinfo).replace(tzinfo=None) != moment.replace(tzinfo=None):
        return moment.replace(fold=1).astimezone(UTC)
    return as_utc


def format_moment(moment: datetime, language: str) -> str:
    """ "11月25日（周三）9:00" or "Wed 25 Nov, 9:00"."""
    clock = f"{moment.hour}:{moment.minute:02d}"
    if language == "en":
        return f"{_EN_DAYS[moment.weekday()]} {moment.day} {_EN_MONTHS[moment.month - 1]}, {clock}"
    return f"{moment.month}月{moment.day}日（周{_ZH_DAYS[moment.weekday()]}）{clock}"


def load_schedules(folder: Path) -> dict[str, Schedule]:
    schedules, problems = read_schedules(folder)
    if problems:
        raise ProblemsError(problems)
    return schedules


def read_schedules(folder: Path) -> tuple[dict[str, Schedule], list[Problem]]:
    schedules: dict[str, Schedule] = {}
    problems: list[Problem] = []
    files = sorted(folder.glob("*.toml"))
    if not files:
        problems.append(
            Problem(folder, None, "no schedules (*.toml) found", "add schedules/default.toml")
        )
    for path in files:
        schedule = _read_schedule(path, problems)
        if schedule:
            schedules[schedule.name] = schedule
    return schedules, problems


def _read_schedule(path: Path, problems: list[Problem]) -> Schedule | None:
    before = len(problems)
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        problems.append(
            Problem(
                path,
                getattr(exc, "lineno", None),
                f"invalid TOML: {exc}",
                "check quoting and brackets on this line",
            )
        )
        return None
    zone_name = data.get("timezone")
    zone = None
    with suppress(ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(str(zone_name)) if zone_name else None
    if zone is None:
        problems.append(
            Problem(
                path,
                line_of_key(path, "timezone"),
                f"unknown time zone {zone_name!r}",
                'use an IANA name such as "Asia/Shanghai" or "Europe/Berlin"',
            )
        )
    weekly_data = data.get("weekly", {})
    weekly: dict[int, tuple[Interval, ...]] = {}
    if not isinstance(weekly_data, dict):
        weekly_data = {}
        problems.append(
            Problem(
                path,
                line_of_key(path, "weekly"),
                "[weekly] must be a table",
                'write [weekly] then one line a day: mon = ["09:00-18:00"]',
            )
        )
    for key, ranges in weekly_data.items():
        line = line_of_key(path, f"weekly.{key}")
        if key not in DAYS:
            problems.append(Problem(path, line, f"unknown day {key!r}", f"use {', '.join(DAYS)}"))
            continue
        intervals = _intervals(ranges, path, line, problems)
        weekly[DAYS.index(key)] = intervals
    _check_overlaps(weekly, path, problems)
    notice = data.get("notice", {})
    if not isinstance(notice, dict) or "zh" not in notice:
        problems.append(
            Problem(
                path,
                line_of_key(path, "notice"),
                "[notice] needs a `zh` text",
                'add [notice] with zh = "…{next_open}…" (and en)',
            )
        )
        notice = {}
    for key in data:
        if key not in ("timezone", "weekly", "notice"):
            problems.append(
                Problem(
                    path,
                    line_of_key(path, key),
                    f"unknown key {key!r}",
                    "known keys: timezone, [weekly], [notice]",
                )
            )
    if len(problems) > before or zone is None:
        return None
    return Schedule(path.stem, zone, weekly, {k: str(v) for k, v in notice.items()}, path)


def _intervals(
    ranges: Any, path: Path, line: int | None, problems: list[Problem]
) -> tuple[Interval, ...]:
    if not isinstance(ranges, list):
        problems.append(
            Problem(
                path, line, "hours must be a list", 'write e.g. ["09:00-18:00"] or [] for closed'
            )
        )
        return ()
    intervals = []
    for text in ranges:
        match = _RANGE.match(str(text))
        if not match:
            problems.append(
                Problem(
                    path,
                    line,
                    f"bad time range {text!r}",
                    'write "HH:MM-HH:MM", e.g. "09:00-18:00"',
                )
            )
            continue
        h1, m1, h2, m2 = map(int, match.groups())
        if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
            problems.append(
                Problem(path, line, f"impossible time in {text!r}", "hours run 00:00 to 24:00")
            )
            continue
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if end == start:
            problems.append(
                Problem(path, line, f"empty range {text!r}", "use 00:00-24:00 for a whole day")
            )
            continue
        intervals.append(Interval(start, end if end > start else end + 1440))
    return tuple(sorted(intervals, key=lambda i: i.start))


def _check_overlaps(
    weekly: dict[int, tuple[Interval, ...]], path: Path, problems: list[Problem]
) -> None:
    week = 7 * 1440
    spans = sorted(
        (day * 1440 + i.start, day * 1440 + i.end, day)
        for day, intervals in weekly.items()
        for i in intervals
    )
    if spans:  # Sunday night runs into Monday morning
        first = spans[0]
        spans.append((first[0] + week, first[1] + week, first[2]))
    for (_, end, day), (next_start, _, next_day) in pairwise(spans):
        if next_start < end:
            problems.append(
                Problem(
                    path,
                    line_of_key(path, f"weekly.{DAYS[next_day]}"),
                    f"hours on {DAYS[day]} and {DAYS[next_day]} overlap",
                    "make each range end before the next one starts",
                )
            )
