"""The arithmetic of the metrics, on plain values: no SQL, no clock, no files. Kept apart so
that a test can feed it numbers worked out by hand, and so that a question about a figure
("why is p90 that?") is answered by reading a dozen lines.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.store.metric_reads import TicketEventFact


@dataclass(frozen=True)
class Distribution:
    """Durations in seconds: how many, the median, the 90th percentile and the mean (None when
    there are none). The median of an even count is the mean of the middle two; p90 is the
    nearest rank (the smallest value with at least 90% of values at or below it), so it is
    always a time someone actually waited."""

    count: int
    median: float | None
    p90: float | None
    mean: float | None

    def as_json(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "median": _round(self.median),
            "p90": _round(self.p90),
            "mean": _round(self.mean),
        }


def distribution(values: Iterable[float]) -> Distribution:
    ordered = sorted(values)
    if not ordered:
        return Distribution(0, None, None, None)
    return Distribution(
        len(ordered),
        float(statistics.median(ordered)),
        percentile(ordered, 90),
        statistics.fmean(ordered),
    )


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values: the value at rank ceil(q/100 · n)."""
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def rate(part: int, whole: int) -> float | None:
    """part / whole, None (not 0) when nothing was counted: "no tickets" is not "0% met"."""
    return part / whole if whole else None


def seconds(start: datetime, end: datetime) -> float:
    """Seconds from start to end, never negative (clocks of different writers may disagree
    by a little)."""
    return max(0.0, (end - start).total_seconds())


class Hours(Protocol):
    """What `open_seconds` needs of a schedule (bot.hours.schedule.Schedule has it)."""

    def is_open(self, at: datetime) -> bool: ...

    def next_open(self, at: datetime) -> datetime | None: ...

    def next_close(self, at: datetime) -> datetime | None: ...


def open_seconds(hours: Hours, start: datetime, end: datetime) -> float:
    """Seconds between start and end during which the schedule was open: the time an agent can
    fairly be held to. A ticket written at 23:00 and answered at 09:05 the next working day
    counts 5 minutes, not 10 hours 5 minutes."""
    total = 0.0
    at = start
    while at < end:
        if hours.is_open(at):
            close = hours.next_close(at)
            stop = end if close is None or close > end else close
            total += (stop - at).total_seconds()
            if stop <= at:  # a schedule that claims open but closes now: step on
                break
            at = stop
        else:
            opening = hours.next_open(at)
            if opening is None or opening >= end:
                break
            at = opening
    return total


def nps(scores: Collection[int]) -> float | None:
    """Net promoter score on answers 0–10: % promoters (9–10) − % detractors (0–6), −100…100."""
    if not scores:
        return None
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    return 100 * (promoters - detractors) / len(scores)


def csat(scores: Collection[int]) -> tuple[float | None, float | None]:
    """CSAT on answers 1–5: the share of 4 and 5 among all answers, and the mean."""
    if not scores:
        return None, None
    return sum(1 for s in scores if s >= 4) / len(scores), statistics.fmean(scores)


@dataclass(frozen=True)
class Spell:
    """A stretch an agent had a ticket: from the claim (or a reopen straight back to its agent)
    to a resolution."""

    start: datetime
    end: datetime
    agent_id: int | None

    @property
    def seconds(self) -> float:
        return seconds(self.start, self.end)


def handling_spells(events: Sequence[TicketEventFact], queues: Collection[str]) -> list[Spell]:
    """A ticket's handling, one spell per resolution, from its history. The first spell starts
    at the first claim; after a reopen, at the reopen itself when the ticket went straight back
    to its agent (the event names the agent), else at the next claim from the queue (the event
    names a queue). A resolution without a claim before it (a supervisor resolving a queued
    ticket) has no handling time."""
    spells: list[Spell] = []
    start: datetime | None = None
    holder: int | None = None
    for event in events:
        if event.kind == "claimed":
            if start is None:
                start, holder = event.at, event.agent_id
        elif event.kind == "reopened":
            start = event.at if event.data.get("to") not in queues else None
        elif event.kind == "resolved":
            if start is not None:
                spells.append(Spell(start, event.at, event.agent_id or holder))
            start = None
    return spells


def within(moment: datetime | None, start: datetime, end: datetime) -> bool:
    return moment is not None and start <= moment < end


def change(now: float | None, before: float | None) -> float | None:
    """The relative change from before to now (0.25 = 25% more); None without both, or when
    before was 0 (any change from nothing is infinite, and says nothing)."""
    if now is None or before is None or before == 0:
        return None
    return (now - before) / abs(before)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
