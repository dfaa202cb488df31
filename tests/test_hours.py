"""Business hours: boundaries, split shifts, ranges past midnight, DST, and file errors."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.hours import format_moment, load_schedules, read_schedules
from bot.problems import ProblemsError
from tests.conftest import FIXTURE, at


def _schedule(tmp_path: Path, body: str, name: str = "s"):  # type: ignore[no-untyped-def]
    (tmp_path / f"{name}.toml").write_text(
        body + '\n[notice]\nzh = "下次：{next_open}"\n', encoding="utf-8"
    )
    return load_schedules(tmp_path)[name]


@pytest.mark.parametrize(
    ("moment", "is_open"),
    [
        ("2026-11-24 08:59:59", False),
        ("2026-11-24 09:00:00", True),
        ("2026-11-24 17:59:59", True),
        ("2026-11-24 18:00:00", False),
        ("2026-11-28 10:00:00", False),
    ],  # Saturday
)
def test_default_schedule_boundaries(moment: str, is_open: bool) -> None:
    schedule = load_schedules(FIXTURE / "schedules")["default"]
    assert schedule.is_open(at(moment)) is is_open


def test_next_open_and_notice_text() -> None:
    schedule = load_schedules(FIXTURE / "schedules")["default"]
    assert schedule.next_open(at("2026-11-27 18:00")) == at("2026-11-30 09:00")
    assert schedule.next_open(at("2026-11-24 07:00")) == at("2026-11-24 09:00")
    assert "11月30日（周一）9:00" in schedule.notice_text("zh", at("2026-11-28 12:00"))
    assert "Mon 30 Nov, 9:00" in schedule.notice_text("en", at("2026-11-28 12:00"))


def test_split_shift(tmp_path: Path) -> None:
    s = _schedule(
        tmp_path, 'timezone = "Asia/Shanghai"\n[weekly]\ntue = ["09:00-12:00", "13:30-18:00"]'
    )
    assert s.is_open(at("2026-11-24 11:59"))
    assert not s.is_open(at("2026-11-24 12:00"))
    assert not s.is_open(at("2026-11-24 13:29"))
    assert s.is_open(at("2026-11-24 13:30"))
    assert s.next_open(at("2026-11-24 12:30")) == at("2026-11-24 13:30")


def test_range_past_midnight(tmp_path: Path) -> None:
    s = _schedule(tmp_path, 'timezone = "Asia/Shanghai"\n[weekly]\nfri = ["22:00-02:00"]')
    assert not s.is_open(at("2026-11-27 21:59"))
    assert s.is_open(at("2026-11-27 23:30"))
    assert s.is_open(at("2026-11-28 01:59"))  # Saturday morning, on Friday's shift
    assert not s.is_open(at("2026-11-28 02:00"))
    assert s.next_open(at("2026-11-28 03:00")) == at("2026-12-04 22:00")


def test_dst_change_days_in_berlin(tmp_path: Path) -> None:
    s = _schedule(tmp_path, 'timezone = "Europe/Berlin"\n[weekly]\nsun = ["01:00-04:00"]')
    berlin = ZoneInfo("Europe/Berlin")
    # 2026-03-29: clocks jump 02:00 -> 03:00; the shift is two real hours long.
    assert s.is_open(datetime(2026, 3, 29, 1, 30, tzinfo=berlin))
    assert s.is_open(datetime(2026, 3, 29, 3, 30, tzinfo=berlin))
    assert not s.is_open(datetime(2026, 3, 29, 4, 0, tzinfo=berlin))
    # 2026-10-25: clocks fall back 03:00 -> 02:00; 02:30 happens twice, both open.
    assert s.is_open(datetime(2026, 10, 25, 2, 30, fold=0, tzinfo=berlin))
    assert s.is_open(datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=berlin))
    assert not s.is_open(datetime(2026, 10, 25, 4, 0, tzinfo=berlin))
    opening = s.next_open(datetime(2026, 3, 28, 12, 0, tzinfo=berlin))
    assert opening is not None and opening.utcoffset() is not None
    assert (opening.hour, opening.minute, opening.day) == (1, 0, 29)


def test_always_open_has_no_next_opening() -> None:
    urgent = load_schedules(FIXTURE / "schedules")["urgent"]
    assert urgent.always_open and urgent.is_open(at("2026-11-28 03:00"))
    assert urgent.next_open(at("2026-11-28 03:00")) is None


def test_format_moment() -> None:
    assert format_moment(at("2026-10-08 09:00"), "zh") == "10月8日（周四）9:00"
    assert format_moment(at("2026-10-08 09:30"), "en") == "Thu 8 Oct, 9:30"


def test_schedule_mistakes_name_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text(
        'timezone = "Mars/Olympus"\n\n[weekly]\nmon = ["09:00-12:00", "11:00-18:00"]\ntue = ["9-18"]\n'
        'funday = []\n[notice]\nzh = "x"\n',
        encoding="utf-8",
    )
    _, problems = read_schedules(tmp_path)
    text = "\n".join(str(p) for p in problems)
    assert "bad.toml:1: unknown time zone 'Mars/Olympus'" in text
    assert "bad.toml:4: hours on mon and mon overlap" in text
    assert "bad.toml:5: bad time range '9-18'" in text
    assert "bad.toml:6: unknown day 'funday'" in text
    with pytest.raises(ProblemsError):
        load_schedules(tmp_path)
