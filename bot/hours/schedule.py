"""Business hours: when a queue's humans are at work, and when they are next back.

A schedule lives in `schedules/<name>.toml` (see schedules/default.toml for every key):

    timezone = "Asia/Shanghai"
    holidays = "CN"                         # closed on public holidays, open on 调休 working days
    [weekly]
    mon = ["09:00-12:00", "13:30-18:00"]   # split shift
    fri = ["09:00-18:00", "22:00-02:00"]   # a range past midnight runs into Saturday
    [dates]
    "2026-12-31" = []                       # one-off closure
    "2026-12-24" = ["09:00-15:00"]          # special hours
    [greetings."春节"]
    zh = "新年好！"
    [notice]
    zh = "…{next_open}…"

What decides a day, strongest first: [dates], then the holiday calendar (a holiday is closed, a
调休 day is open with `adjusted_workday` hours), then [weekly]. All comparisons are made in UTC
on instants built in the schedule's zone, so daylight-saving change days neither gain nor lose
business hours.
"""

from __future__ import annotations

import re
import tomllib
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.content.problems import (
    Problem,
    ProblemsError,
    line_near_key,
    line_of_key,
    not_utf8,
    only_errors,
    read_utf8,
    toml_error_line,
)
from bot.hours.calendars import HolidayCalendar, UnknownCalendar

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ZH_DAYS = "一二三四五六日"
_EN_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_DATES = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:\.\.(\d{4}-\d{2}-\d{2}))?$")
_HORIZON_DAYS = 400
_BLOCK_DAYS = 10  # how far a holiday greeting reaches across a block of days off
_KEYS = (
    "timezone",
    "holidays",
    "adjusted_workday",
    "weekly",
    "dates",
    "greetings",
    "notice",
    "handoff_notice",
)


@dataclass(frozen=True)
class Interval:
    """Minutes from local midnight; `end` may pass 1440 for a range that runs past midnight."""

    start: int
    end: int

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}–{_hhmm(self.end % 1440 if self.end > 1440 else self.end)}"


@dataclass(frozen=True)
class DayPlan:
    """A day's hours and why: "weekly hours", "国庆节", "调休 working day", "special date"."""

    day: date
    intervals: tuple[Interval, ...]
    reason: str
    holiday: str | None = None


@dataclass(frozen=True)
class Schedule:
    name: str
    zone: ZoneInfo
    weekly: dict[int, tuple[Interval, ...]]
    notice: dict[str, str]
    file: Path
    calendar: HolidayCalendar | None = None
    dates: dict[date, tuple[Interval, ...]] = field(default_factory=dict)
    adjusted_workday: int = 0  # the weekday whose hours a 调休 working day keeps
    greetings: dict[str, dict[str, str]] = field(default_factory=dict)
    handoff_notice: dict[str, str] = field(default_factory=dict)
    #: each day's opening spans once worked out: a schedule never changes once read (a reload
    #: reads a new one), and every message asks about today and yesterday
    _spans_of: dict[date, tuple[tuple[datetime, datetime], ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def always_open(self) -> bool:
        return (
            not self.calendar
            and not self.dates
            and all(
                any(i.start == 0 and i.end >= 1440 for i in self.weekly.get(d, ()))
                for d in range(7)
            )
        )

    def day_plan(self, day: date) -> DayPlan:
        holiday = self.calendar.holiday(day) if self.calendar else None
        if day in self.dates:
            return DayPlan(day, self.dates[day], "special date", holiday)
        if holiday:
            return DayPlan(day, (), holiday, holiday)
        if self.calendar and self.calendar.announces_breaks and (names := self._holiday_block(day)):
            # a weekend day inside an announced break (春节 runs Sun–Mon): closed, even for a
            # team that works on Saturdays; [dates] above can still open it
            festival = next((n for n in names if not n.startswith("休息日")), names[0])
            return DayPlan(day, (), f"{festival} break", festival)
        if self.calendar and self.calendar.is_adjusted_workday(day):
            return DayPlan(day, self.weekly.get(self.adjusted_workday, ()), "调休 working day")
        intervals = self.weekly.get(day.weekday(), ())
        return DayPlan(day, intervals, "weekly hours" if intervals else "closed every week")

    def _spans(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        known = self._spans_of.get(day)
        if known is None:
            known = self._spans_of[day] = tuple(self._work_out_spans(day))
        return known

    def _work_out_spans(self, day: date) -> list[tuple[datetime, datetime]]:
        spans = []
        for interval in self.day_plan(day).intervals:
            start = datetime.combine(day, time(), self.zone) + timedelta(minutes=interval.start)
            end_day = day + timedelta(days=interval.end // 1440)
            end = datetime.combine(end_day, time(), self.zone) + timedelta(
                minutes=interval.end % 1440
            )
            spans.append((_local_instant(start), _local_instant(end)))
        return spans

    def _local_day(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def is_open(self, at: datetime) -> bool:
        moment = at.astimezone(UTC)
        local_day = self._local_day(at)
        return any(
            start <= moment < end
            for day in (local_day - timedelta(days=1), local_day)
            for start, end in self._spans(day)
        )

    def next_open(self, at: datetime) -> datetime | None:
        """The next moment the service opens after `at` (None if it never closes or opens)."""
        if self.always_open:
            return None
        moment = at.astimezone(UTC)
        local_day = self._local_day(at)
        for offset in range(-1, _HORIZON_DAYS):
            starts = [s for s, _ in self._spans(local_day + timedelta(days=offset)) if s > moment]
            if starts and not self.is_open(min(starts) - timedelta(microseconds=1)):
                return min(starts).astimezone(self.zone)
        return None

    def next_close(self, at: datetime) -> datetime | None:
        """When the current (or next) open stretch ends; contiguous ranges count as one."""
        moment = at.astimezone(UTC)
        local_day = self._local_day(at)
        spans = sorted(
            span
            for offset in range(-1, _HORIZON_DAYS)
            for span in self._spans(local_day + timedelta(days=offset))
            if span[1] > moment
        )
        end: datetime | None = None
        for start, stop in spans:  # the first span still running or to come, then those touching it
            if end is not None and start > end:
                break
            end = stop if end is None else max(end, stop)
        return end.astimezone(self.zone) if end else None

    def explain(self, at: datetime) -> str:
        """ "open — weekly hours 09:00–18:00" or "closed — 国庆节"."""
        local = at.astimezone(self.zone)
        plan = self.day_plan(local.date())
        hours = ", ".join(str(i) for i in plan.intervals)
        state = "open" if self.is_open(at) else "closed"
        if plan.reason == "special date" and not hours:
            return f"{state} — one-off closure"
        if plan.reason in ("weekly hours", "special date", "调休 working day"):
            return f"{state} — {plan.reason} {hours}"
        return f"{state} — {plan.reason}"

    def notice_text(self, language: str, at: datetime) -> str:
        return self.fill(_pick(self.notice, language), language, at)

    def handoff_text(self, language: str, at: datetime) -> str | None:
        """This queue's own words for a handoff while closed (e.g. an emergency number), if any."""
        return (
            self.fill(_pick(self.handoff_notice, language), language, at)
            if self.handoff_notice
            else None
        )

    def fill(self, text: str, language: str, at: datetime) -> str:
        """A text for customers with its placeholders filled as of `at`: `{hours}` the working
        hours (`hours_text`), `{next_open}` the next opening ("10月8日（周四）9:00"). FAQ
        answers, notices and config texts use them, so that they follow the schedule."""
        if HOURS in text:
            text = text.replace(HOURS, self.hours_text(language))
        if NEXT_OPEN in text:
            opening = self.next_open(at)
            text = text.replace(NEXT_OPEN, format_moment(opening, language) if opening else "")
        return text

    def hours_text(self, language: str) -> str:
        """The usual week's hours as customers read them: "周一至周五 9:00–18:00" or
        "Mon–Fri 9:00–18:00"; days with the same hours in a row are named together."""
        zh = language != "en"
        if all(
            any(i.start == 0 and i.end >= 1440 for i in self.weekly.get(d, ())) for d in range(7)
        ):
            return "全天24小时" if zh else "around the clock"
        runs: list[tuple[int, int, tuple[Interval, ...]]] = []
        for day in range(7):
            hours = self.weekly.get(day, ())
            if runs and runs[-1][2] == hours and runs[-1][1] == day - 1:
                runs[-1] = (runs[-1][0], day, hours)
            elif hours:
                runs.append((day, day, hours))
        if not runs:
            return "暂无人工服务时间" if zh else "no set hours"
        parts = []
        for first, last, hours in runs:
            days = _day_name(first, zh)
            if last > first:
                days += ("至" if zh else "–") + _day_name(last, zh)
            ranges = ("、" if zh else ", ").join(_customer_range(i) for i in hours)
            parts.append(f"{days} {ranges}")
        return ("，" if zh else "; ").join(parts)

    def all_intervals(self) -> set[Interval]:
        """Every range of hours it has, weekly or on a date: what a text may state."""
        return {i for hours in (*self.weekly.values(), *self.dates.values()) for i in hours}

    def greeting(self, at: datetime, language: str) -> str | None:
        """The holiday greeting for the day, e.g. "国庆节快乐！" all through the National Day
        break, including its weekend and moved days off."""
        if not self.greetings or not self.calendar:
            return None
        names = self._holiday_block(self._local_day(at))
        for key, texts in self.greetings.items():
            if any(key in name for name in names):
                return texts.get(language) or texts.get("zh")
        return None

    def _holiday_block(self, day: date) -> list[str]:
        """Holiday names of the run of days off around `day` (none on a working day)."""
        if not self._day_off(day):
            return []
        names = []
        for step in (-1, 1):
            current = day
            for _ in range(_BLOCK_DAYS):
                if not self._day_off(current):
                    break
                name = self.calendar.holiday(current) if self.calendar else None
                if name:
                    names.append(name)
                current += timedelta(days=step)
        return names

    def _day_off(self, day: date) -> bool:
        """A public holiday, or a weekend day that is not a 调休 working day."""
        if not self.calendar:
            return False
        if self.calendar.holiday(day):
            return True
        return day.weekday() >= 5 and not self.calendar.is_adjusted_workday(day)


#: placeholders a text for customers may hold (Schedule.fill)
HOURS = "{hours}"
NEXT_OPEN = "{next_open}"


def _pick(texts: dict[str, str], language: str) -> str:
    return texts.get(language) or texts.get("zh", "")


def _day_name(day: int, zh: bool) -> str:
    return f"周{_ZH_DAYS[day]}" if zh else _EN_DAYS[day]


def _customer_range(interval: Interval) -> str:
    """ "9:00–18:00", as people write hours (no leading zero); "22:00–2:00" past midnight."""

    def clock(minutes: int) -> str:
        return f"{minutes // 60}:{minutes % 60:02d}"

    end = interval.end % 1440 if interval.end > 1440 else interval.end
    return f"{clock(interval.start)}–{clock(end)}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _local_instant(moment: datetime) -> datetime:
    """A local wall time as a UTC instant. A time skipped by spring-forward (fold=0) lands after
    the gap (02:30 becomes 03:30), an hour repeated in autumn means its first occurrence."""
    return moment.astimezone(UTC)


def format_moment(moment: datetime, language: str) -> str:
    """ "10月8日（周四）9:00" or "Thu 8 Oct, 9:00"."""
    clock = f"{moment.hour}:{moment.minute:02d}"
    if language == "en":
        return f"{_EN_DAYS[moment.weekday()]} {moment.day} {_EN_MONTHS[moment.month - 1]}, {clock}"
    return f"{moment.month}月{moment.day}日（周{_ZH_DAYS[moment.weekday()]}）{clock}"


def load_schedules(folder: Path) -> dict[str, Schedule]:
    schedules, problems = read_schedules(folder)
    if only_errors(problems):
        raise ProblemsError(only_errors(problems))
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

    def problem(key: str, message: str, fix: str) -> None:
        problems.append(Problem(path, line_near_key(path, key) if key else 1, message, fix))

    try:
        text = read_utf8(path)
    except UnicodeDecodeError as exc:
        problems.append(not_utf8(path, exc))
        return None
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems.append(
            Problem(
                path,
                toml_error_line(exc, text),
                f"invalid TOML: {exc}",
                "check quoting and brackets on this line",
            )
        )
        return None
    for key in data:
        if key not in _KEYS:
            problem(key, f"unknown key {key!r}", f"known keys: {', '.join(_KEYS)}")

    zone_name = data.get("timezone")
    zone = None
    # a name too long for a file name is an OSError from the zone lookup, not a ValueError
    with suppress(ZoneInfoNotFoundError, ValueError, OSError):
        zone = ZoneInfo(str(zone_name)) if zone_name else None
    if zone is None:
        problem(
            "timezone",
            f"unknown time zone {zone_name!r}",
            'use an IANA name such as "Asia/Shanghai" or "Europe/Berlin"',
        )

    calendar = None
    if data.get("holidays"):
        try:
            calendar = HolidayCalendar(str(data["holidays"]))
        except UnknownCalendar:
            problem(
                "holidays",
                f"unknown holiday calendar {data['holidays']!r}",
                'use a country code, optionally with a region: "CN", "HK", "US", "DE-BY"',
            )

    weekly_data = data.get("weekly", {})
    weekly: dict[int, tuple[Interval, ...]] = {}
    if not isinstance(weekly_data, dict):
        weekly_data = {}
        problem(
            "weekly",
            "[weekly] must be a table",
            'write [weekly] then one line a day: mon = ["09:00-18:00"]',
        )
    for key, ranges in weekly_data.items():
        line = line_near_key(path, f"weekly.{key}")
        if key not in DAYS:
            problems.append(Problem(path, line, f"unknown day {key!r}", f"use {', '.join(DAYS)}"))
            continue
        weekly[DAYS.index(key)] = _intervals(ranges, path, line, problems)
    _check_overlaps(weekly, path, problems)

    adjusted = str(data.get("adjusted_workday", "mon"))
    if adjusted not in DAYS:
        problem(
            "adjusted_workday",
            f"unknown day {adjusted!r}",
            'name the weekday whose hours a 调休 working day keeps, e.g. "mon"',
        )

    dates = _dates(data.get("dates", {}), path, problems)
    greetings = _texts_by_key(data.get("greetings", {}), "greetings", path, problems)
    problems += _unsent_greetings(greetings, calendar, path)
    notice = data.get("notice", {})
    if not isinstance(notice, dict) or "zh" not in notice:
        problem(
            "notice",
            "[notice] needs a `zh` text",
            'add [notice] with zh = "…{next_open}…" (and en)',
        )
        notice = {}
    handoff_notice = data.get("handoff_notice", {})
    if not isinstance(handoff_notice, dict):
        problem("handoff_notice", "[handoff_notice] must be a table of texts", 'write zh = "…"')
        handoff_notice = {}
    if any(p.is_error for p in problems[before:]) or zone is None:
        return None
    return Schedule(
        path.stem,
        zone,
        weekly,
        {k: str(v) for k, v in notice.items()},
        path,
        calendar,
        dates,
        DAYS.index(adjusted),
        greetings,
        {k: str(v) for k, v in handoff_notice.items()},
    )


def _intervals(
    ranges: Any, path: Path, line: int | None, problems: list[Problem]
) -> tuple[Interval, ...]:
    if not isinstance(ranges, list):
        problems.append(
            Problem(
                path, line, "hours must be a list", 'write e.g. ["09:00-18:00"], or [] for closed'
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


#: the longest one-off range under [dates]: a year (a longer one is a change of the usual
#: week, and a range to 9999-12-31 would take minutes and end past the last date Python has)
MAX_RANGE_DAYS = 366


def _dates(table: Any, path: Path, problems: list[Problem]) -> dict[date, tuple[Interval, ...]]:
    """[dates]: "YYYY-MM-DD" or "YYYY-MM-DD..YYYY-MM-DD" = hours ([] for closed)."""
    if not isinstance(table, dict):
        problems.append(
            Problem(
                path,
                line_near_key(path, "dates"),
                "[dates] must be a table",
                'write "2026-12-31" = [] under [dates]',
            )
        )
        return {}
    dates: dict[date, tuple[Interval, ...]] = {}
    first_key: dict[date, str] = {}
    for key, ranges in table.items():
        line = _line_of_quoted(path, key) or line_near_key(path, "dates")
        match = _DATES.match(key)
        try:
            first = date.fromisoformat(match.group(1)) if match else None
            last = date.fromisoformat(match.group(2)) if match and match.group(2) else first
        except ValueError:
            first = last = None
        if first is None or last is None:
            problems.append(
                Problem(
                    path,
                    line,
                    f"bad date {key!r}",
                    'write "2026-12-31", or a range "2026-12-24..2026-12-26"',
                )
            )
            continue
        if last < first:
            problems.append(
                Problem(
                    path, line, f"date range {key!r} ends before it starts", "swap the two dates"
                )
            )
            continue
        if (last - first).days >= MAX_RANGE_DAYS:
            problems.append(
                Problem(
                    path,
                    line,
                    f"date range {key!r} is longer than {MAX_RANGE_DAYS} days",
                    "one-off dates are for closures and special hours; lasting hours go "
                    "under [weekly]",
                )
            )
            continue
        intervals = _intervals(ranges, path, line, problems)
        _check_overlaps({0: intervals}, path, problems, line)
        # counted, not stepped past `last`: the day after 9999-12-31 does not exist
        for offset in range((last - first).days + 1):
            day = first + timedelta(days=offset)
            if day in dates:
                problems.append(
                    Problem(
                        path,
                        line,
                        f"{day} is set twice: in {first_key[day]!r} and {key!r}",
                        "keep one entry per day",
                    )
                )
                break
            dates[day], first_key[day] = intervals, key
    return dates


def _texts_by_key(
    table: Any, section: str, path: Path, problems: list[Problem]
) -> dict[str, dict[str, str]]:
    if not isinstance(table, dict):
        problems.append(
            Problem(
                path,
                line_near_key(path, section),
                f"[{section}] must be a table",
                f'write [{section}."春节"] then zh = "新年好！"',
            )
        )
        return {}
    result = {}
    for key, texts in table.items():
        if not isinstance(texts, dict) or "zh" not in texts:
            problems.append(
                Problem(
                    path,
                    _line_of_quoted(path, key) or line_near_key(path, section),
                    f"[{section}.{key}] needs a `zh` text",
                    'add zh = "…" (and en = "…")',
                )
            )
            continue
        result[key] = {k: str(v) for k, v in texts.items()}
    return result


def _unsent_greetings(
    greetings: dict[str, dict[str, str]], calendar: HolidayCalendar | None, path: Path
) -> list[Problem]:
    """A warning for each greeting no holiday of the calendar is called: it is never sent."""
    if not greetings:
        return []
    names = calendar.names() if calendar else set()
    problems = []
    for key in greetings:
        if any(key in name for name in names):
            continue
        if calendar is None:
            message = f'[greetings."{key}"] is never sent: this schedule has no holiday calendar'
            fix = 'add holidays = "CN" (or your country\'s code), or remove the greeting'
        else:
            message = (
                f'[greetings."{key}"] is never sent: no holiday in the {calendar.name} calendar '
                "is called that"
            )
            fix = "use (part of) a holiday's name as the calendar writes it: " + ", ".join(
                sorted(names)
            )
        problems.append(Problem(path, _line_of_quoted(path, key), message, fix, "warning"))
    return problems


def _line_of_quoted(path: Path, key: str) -> int | None:
    """The line where a quoted key ("2026-12-31" or [greetings."春节"]) appears."""
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if f'"{key}"' in text:
            return number
    return None


def _check_overlaps(
    weekly: dict[int, tuple[Interval, ...]],
    path: Path,
    problems: list[Problem],
    line: int | None = None,
) -> None:
    week = 7 * 1440
    spans = sorted(
        (day * 1440 + i.start, day * 1440 + i.end, day)
        for day, intervals in weekly.items()
        for i in intervals
    )
    if spans and line is None:  # Sunday night runs into Monday morning
        first = spans[0]
        spans.append((first[0] + week, first[1] + week, first[2]))
    for (_, end, day), (next_start, _, next_day) in pairwise(spans):
        if next_start < end:
            where = line if line is not None else line_of_key(path, f"weekly.{DAYS[next_day]}")
            what = (
                "these hours overlap"
                if line is not None
                else f"hours on {DAYS[day]} and {DAYS[next_day]} overlap"
            )
            problems.append(
                Problem(path, where, what, "make each range end before the next one starts")
            )
