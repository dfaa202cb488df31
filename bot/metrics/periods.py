"""Days and weeks as the service floor counts them: local midnights and Mondays in the time
zone of the default queue's schedule, whatever zone the server runs in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo


@dataclass(frozen=True)
class Period:
    """[start, end): local midnight to local midnight."""

    start: datetime
    end: datetime

    @property
    def first_day(self) -> date:
        return self.start.date()

    def days(self) -> list[Period]:
        """The period's days, each from local midnight to the next (23 or 25 hours long
        across a daylight-saving change)."""
        zone = self.start.tzinfo
        out: list[Period] = []
        day = self.start.date()
        while True:
            start = datetime.combine(day, time(), zone)
            if start >= self.end:
                return out
            out.append(Period(start, datetime.combine(day + timedelta(days=1), time(), zone)))
            day += timedelta(days=1)

    def before(self) -> Period:
        """The period of the same length just before (the week before a week)."""
        length = (self.end.date() - self.start.date()).days
        zone = self.start.tzinfo
        first = self.start.date() - timedelta(days=length)
        return Period(datetime.combine(first, time(), zone), self.start)


def week_of(day: date, zone: tzinfo) -> Period:
    """The Monday-to-Sunday week holding `day`."""
    monday = day - timedelta(days=day.weekday())
    return Period(
        datetime.combine(monday, time(), zone),
        datetime.combine(monday + timedelta(days=7), time(), zone),
    )


def last_full_week(now: datetime, zone: tzinfo) -> Period:
    """The latest week that has ended by `now` (on a Monday: the week that just ended)."""
    return week_of(now.astimezone(zone).date() - timedelta(days=7), zone)


def day_of(day: date, zone: tzinfo) -> Period:
    return Period(
        datetime.combine(day, time(), zone), datetime.combine(day + timedelta(days=1), time(), zone)
    )
