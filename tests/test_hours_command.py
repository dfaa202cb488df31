"""`bot hours`, as an operator runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli.main import main


def test_explains_a_holiday_and_lists_the_next_openings(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(shop / "config.toml"), "hours", "--at", "2026-10-01 10:00"]) == 0
    out = capsys.readouterr().out
    assert (
        "schedule default (Asia/Shanghai) — queues: general, complaints, after_sales, tech" in out
    )
    assert "  2026-10-01 10:00: closed — 国庆节" in out
    assert "  holiday greeting today: 国庆节快乐！" in out
    lines = out.splitlines()
    first = lines.index("  next 14 days:") + 1
    assert lines[first : first + 5] == [
        "    opens  Thu 2026-10-08 09:00",
        "    closes Thu 2026-10-08 18:00",
        "    opens  Fri 2026-10-09 09:00",
        "    closes Fri 2026-10-09 18:00",
        "    opens  Sat 2026-10-10 09:00  (调休 working day)",
    ]
    assert "schedule urgent (Asia/Shanghai) — queues: urgent" in out
    assert "  open around the clock" in out


def test_warns_when_a_year_has_no_adjusted_workdays(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(shop / "config.toml"), "hours", "--at", "2026-12-28 10:00"]) == 0
    out = capsys.readouterr().out
    assert "  2026-12-28 10:00: open — weekly hours 09:00–18:00" in out
    assert "    closes Thu 2026-12-31 15:00" in out  # the special date closes early
    # A year the State Council cannot have announced yet (2027 may arrive with a package update):
    assert main(["--config", str(shop / "config.toml"), "hours", "--at", "2030-12-27 10:00"]) == 0
    assert (
        "warning: the CN calendar has no 调休 working days for 2030 yet" in capsys.readouterr().out
    )


def test_broken_schedule_is_reported(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = shop / "schedules" / "default.toml"
    path.write_text(
        path.read_text(encoding="utf-8").replace('"Asia/Shanghai"', '"Asia/Shangai"'),
        encoding="utf-8",
    )
    assert main(["--config", str(shop / "config.toml"), "hours"]) == 2
    err = capsys.readouterr().err
    assert "default.toml:" in err and "unknown time zone 'Asia/Shangai'" in err


def test_a_moment_that_is_not_one_says_how_to_write_it(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (["hours", "--at", "tomorrow"], ["chat", "--at", "2026-12-24 25:00"]):
        assert main(["--config", str(shop / "config.toml"), *command]) == 2
        err = capsys.readouterr().err
        assert "is not a moment" in err and 'e.g. --at "2026-12-24 23:00"' in err


def test_a_moment_with_an_offset_is_shown_in_the_schedules_zone(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["--config", str(shop / "config.toml"), "hours", "--at", "2026-11-24T02:00+00:00"])
        == 0
    )
    assert "10:00" in capsys.readouterr().out  # 02:00 UTC is 10:00 in Shanghai
