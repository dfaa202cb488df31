"""The small fixture shop (tests/fixtures/shop), its time zone, and `bot check` on a copy."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.assembly import check
from bot.content.problems import Problem

FIXTURE = Path(__file__).parent.parent / "fixtures" / "shop"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    """A Shanghai wall time, e.g. at("2026-11-24 10:00") (a Tuesday)."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def checked(path: Path) -> list[Problem]:
    """`bot check` without the calibration warnings the small fixture shop always gets (5
    entries of 4 phrasings are too few to calibrate on; tests/test_problems.py checks that)."""
    return [p for p in check(path) if "calibration" not in p.message]
