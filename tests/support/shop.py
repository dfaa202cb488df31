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


def pin_thresholds(shop: Path) -> Path:
    """The shop's config.toml with the FAQ thresholds pinned (answer 0.6, suggest 0.45) instead
    of calibrated on its five entries: a misspelt question ("发漂怎么开") is then offered as
    suggestions. Returns the config file's path."""
    path = shop / "config.toml"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "[faq]\n", "[faq]\nanswer_threshold = 0.6\nsuggest_threshold = 0.45\n"
        ),
        encoding="utf-8",
    )
    return path
