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

    def days(self) -> list[Period]:
        """The period's days, each from local midnight to the next (23 or 25 hours long
        across a daylight-saving change)."""
        out: list[Period] = []
        day = self.start.date()
        while (one := _days(day, 1, self.start.tzinfo)).start < self.end:
            out.append(one)
            day += timedelta(days=1)
        return out

    def before(self) -> Period:
        """The period of the same length just before (the week before a week)."""
        length = (self.end.date() - self.start.date()).days
        first = self.start.date() - timedelta(days=length)
        return Period(datetime.combine(first, time(), self.start.tzinfo), self.start)


def _days(first: date, count: int, zone: tzinfo | None) -> Period:
    """`count` days from local midnight of `first` to local midnight after the last."""
    return Period(
        datetime.combine(first, time(), zone),
        datetime.combine(first + timedelta(days=count), time(), zone),
    )


def week_of(day: date, zone: tzinfo) -> Period:
    """The Monday-to-Sunday week holding `day`."""
    return _days(day - timedelta(days=day.weekday()), 7, zone)


def last_full_week(now: datetime, zone: tzinfo) -> Period:
    """The latest week that has ended by `now` (on a Monday: the week that just ended)."""
    return week_of(now.astimezone(zone).date() - timedelta(days=7), zone)


def day_of(day: date, zone: tzinfo) -> Period:
    return _days(day, 1, zone)
