"""`bot hours`: what the schedules mean at a moment and over the days ahead, for operators."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.content.config import Config
from bot.hours.schedule import Schedule

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def transitions(schedule: Schedule, start: datetime, days: int) -> list[tuple[datetime, str]]:
    """Every opening and closing from `start` over `days` days, in order."""
    until = start + timedelta(days=days)
    events: list[tuple[datetime, str]] = []
    moment = start
    while moment < until:
        if schedule.is_open(moment):
            change, what = schedule.next_close(moment), "closes"
        else:
            change, what = schedule.next_open(moment), "opens"
        if change is None or change >= until:
            break
        events.append((change, what))
        moment = change
    return events


def report(config: Config, schedules: dict[str, Schedule], at: datetime, days: int = 14) -> str:
    lines = []
    for name, schedule in schedules.items():
        queues = [q for q, c in config.queues.items() if c.schedule == name]
        local = at.astimezone(schedule.zone)
        lines.append(
            f"schedule {name} ({schedule.zone.key}) — queues: {', '.join(queues) or 'none'}"
        )
        lines.append(f"  {local:%Y-%m-%d %H:%M}: {schedule.explain(at)}")
        greeting = schedule.greeting(at, "zh")
        if greeting:
            lines.append(f"  holiday greeting today: {greeting}")
        if schedule.always_open:
            lines.append("  open around the clock")
        else:
            lines.append(f"  next {days} days:")
            for moment, what in transitions(schedule, at, days):
                reason = schedule.day_plan(moment.date()).reason
                note = f"  ({reason})" if what == "opens" and reason != "weekly hours" else ""
                lines.append(
                    f"    {what:<6} {_WEEKDAYS[moment.weekday()]} {moment:%Y-%m-%d %H:%M}{note}"
                )
        if schedule.calendar:
            for year in sorted({at.year, (at + timedelta(days=days)).year, at.year + 1}):
                if schedule.calendar.missing_adjusted_days(year):
                    lines.append(
                        f"  warning: the {schedule.calendar.name} calendar has no 调休 working "
                        f"days for {year} yet (not announced, or the package is old); add them "
                        f"under [dates] in {schedule.file.name} when they are published"
                    )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
