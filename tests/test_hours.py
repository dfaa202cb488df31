"""Business hours: boundaries, split shifts, ranges past midnight, DST, and file errors."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.content.problems import ProblemsError
from bot.hours.schedule import Schedule, format_moment, load_schedules, read_schedules
from tests.support.shop import FIXTURE, at


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


# --- holidays, 调休, closures, greetings ---------------------------------------------------------

DEFAULT = FIXTURE / "schedules"


def _default() -> Schedule:
    return load_schedules(DEFAULT)["default"]


@pytest.mark.parametrize(
    ("moment", "is_open", "why"),
    [
        ("2026-10-01 10:00", False, "closed — 国庆节"),
        ("2026-10-06 10:00", False, "closed — 休息日（由 2026-09-20 调休）"),
        ("2026-10-08 09:00", True, "open — weekly hours 09:00–18:00"),
        ("2026-10-10 10:00", True, "open — 调休 working day 09:00–18:00"),  # a Saturday
        ("2026-09-20 17:59", True, "open — 调休 working day 09:00–18:00"),  # a Sunday
        ("2026-02-17 10:00", False, "closed — 春节"),
        ("2026-02-14 10:00", True, "open — 调休 working day 09:00–18:00"),
        ("2026-12-31 14:59", True, "open — special date 09:00–15:00"),
        ("2026-12-31 15:00", False, "closed — special date 09:00–15:00"),
    ],
)
def test_statutory_holidays_adjusted_workdays_and_special_dates(
    moment: str, is_open: bool, why: str
) -> None:
    schedule = _default()
    assert schedule.is_open(at(moment)) is is_open
    assert schedule.explain(at(moment)) == why


def test_national_day_notice_names_the_real_next_opening() -> None:
    schedule = _default()
    assert schedule.next_open(at("2026-09-30 18:30")) == at("2026-10-08 09:00")
    assert "10月8日（周四）9:00" in schedule.notice_text("zh", at("2026-10-03 12:00"))


def test_2026_calendar_matches_chinese_calendar_package() -> None:
    """Two independently maintained sources agree on every 2026 day."""
    import chinese_calendar

    schedule = _default()
    assert schedule.calendar is not None
    day = date(2026, 1, 1)
    while day.year == 2026:
        assert bool(schedule.day_plan(day).intervals) == chinese_calendar.is_workday(day), day
        day += timedelta(days=1)


def test_unannounced_year_is_flagged() -> None:
    schedule = _default()
    assert schedule.calendar is not None
    assert not schedule.calendar.missing_adjusted_days(2026)
    assert schedule.calendar.missing_adjusted_days(2030)


@pytest.mark.parametrize(
    ("moment", "zh", "en"),
    [
        ("2026-01-01 10:00", "新年好！", "Happy New Year!"),
        ("2026-02-16 10:00", "新年好！", "Happy Chinese New Year!"),  # 除夕, in the 春节 break
        ("2026-05-03 10:00", "劳动节快乐！", "Happy Labour Day!"),  # the Sunday of the break
        ("2026-09-25 10:00", "中秋节快乐！", "Happy Mid-Autumn Festival!"),
        ("2026-10-06 10:00", "国庆节快乐！", "Happy National Day!"),  # a moved day off
        ("2026-11-28 10:00", None, None),  # an ordinary Saturday
        ("2026-10-10 10:00", None, None),  # a 调休 working Saturday
    ],
)
def test_holiday_greetings(moment: str, zh: str | None, en: str | None) -> None:
    schedule = _default()
    assert schedule.greeting(at(moment), "zh") == zh
    assert schedule.greeting(at(moment), "en") == en


def test_next_close_joins_ranges_past_midnight(tmp_path: Path) -> None:
    s = _schedule(
        tmp_path,
        'timezone = "Asia/Shanghai"\n[weekly]\nfri = ["18:00-24:00"]\nsat = ["00:00-02:00"]',
    )
    assert s.next_close(at("2026-11-27 19:00")) == at("2026-11-28 02:00")
    assert s.next_close(at("2026-11-27 10:00")) == at("2026-11-28 02:00")


def test_date_and_calendar_mistakes_name_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text(
        'timezone = "Asia/Shanghai"\n'
        'holidays = "Atlantis"\n'
        "[weekly]\n"
        'mon = ["09:00-18:00"]\n'
        "[dates]\n"
        '"2026-12-26..2026-12-24" = []\n'
        '"2026-12-20..2026-12-22" = ["10:00-16:00"]\n'
        '"2026-12-21" = []\n'
        '"2026-13-01" = []\n'
        '"2026-12-30" = ["09:00-12:00", "11:00-13:00"]\n'
        '[greetings."春节"]\n'
        'en = "Happy New Year"\n'
        '[notice]\nzh = "x"\n',
        encoding="utf-8",
    )
    _, problems = read_schedules(tmp_path)
    text = "\n".join(str(p) for p in problems)
    assert "bad.toml:2: unknown holiday calendar 'Atlantis'" in text
    assert "bad.toml:6: date range '2026-12-26..2026-12-24' ends before it starts" in text
    assert (
        "bad.toml:8: 2026-12-21 is set twice: in '2026-12-20..2026-12-22' and '2026-12-21'" in text
    )
    assert "bad.toml:9: bad date '2026-13-01'" in text
    assert "bad.toml:10: these hours overlap" in text
    assert "bad.toml:11: [greetings.春节] needs a `zh` text" in text


def test_other_countries_calendars_by_name(tmp_path: Path) -> None:
    s = _schedule(
        tmp_path,
        'timezone = "Europe/Berlin"\nholidays = "DE-BY"\n[weekly]\nmon = ["09:00-17:00"]\ntue = ["09:00-17:00"]',
    )
    berlin = ZoneInfo("Europe/Berlin")
    assert not s.is_open(datetime(2026, 4, 6, 10, tzinfo=berlin))  # Easter Monday
    assert s.explain(datetime(2026, 4, 6, 10, tzinfo=berlin)).startswith("closed — Easter Monday")
    assert s.is_open(datetime(2026, 4, 13, 10, tzinfo=berlin))


def test_one_off_closure_and_date_range(tmp_path: Path) -> None:
    s = _schedule(
        tmp_path,
        'timezone = "Asia/Shanghai"\n[weekly]\nmon = ["09:00-18:00"]\ntue = ["09:00-18:00"]\n'
        'wed = ["09:00-18:00"]\n[dates]\n"2026-11-24" = []\n"2026-11-30..2026-12-01" = ["13:00-17:00"]',
    )
    assert not s.is_open(at("2026-11-24 10:00"))
    assert s.explain(at("2026-11-24 10:00")) == "closed — one-off closure"
    assert s.next_open(at("2026-11-24 10:00")) == at("2026-11-25 09:00")
    assert not s.is_open(at("2026-11-30 10:00")) and s.is_open(at("2026-12-01 16:59"))
    assert s.is_open(at("2026-12-02 10:00"))  # back to the weekly hours


def test_opening_inside_the_spring_forward_gap_moves_forward(tmp_path: Path) -> None:
    s = _schedule(tmp_path, 'timezone = "Europe/Berlin"\n[weekly]\nsun = ["02:30-05:00"]')
    berlin = ZoneInfo("Europe/Berlin")
    assert not s.is_open(datetime(2026, 3, 29, 1, 45, tzinfo=berlin))
    opening = s.next_open(datetime(2026, 3, 29, 1, 0, tzinfo=berlin))
    assert opening is not None
    assert opening.astimezone(ZoneInfo("UTC")) == datetime(
        2026, 3, 29, 1, 30, tzinfo=ZoneInfo("UTC")
    )
    assert (opening.hour, opening.minute) == (3, 30)  # 02:30 does not exist that night


SATURDAY_SHIFT = (
    'timezone = "Asia/Shanghai"\nholidays = "CN"\nadjusted_workday = "mon"\n'
    '[weekly]\nmon = ["09:00-18:00"]\ntue = ["09:00-18:00"]\nwed = ["09:00-18:00"]\n'
    'thu = ["09:00-18:00"]\nfri = ["09:00-18:00"]\nsat = ["10:00-16:00"]\n'
)


@pytest.mark.parametrize(
    "saturday", ["2026-01-03", "2026-02-21", "2026-04-04", "2026-06-20", "2026-09-26"]
)
def test_saturdays_inside_an_announced_break_are_closed(tmp_path: Path, saturday: str) -> None:
    s = _schedule(tmp_path, SATURDAY_SHIFT)
    assert not s.is_open(at(f"{saturday} 11:00"))
    assert s.day_plan(date.fromisoformat(saturday)).reason.endswith(" break")


def test_the_spring_festival_notice_names_the_first_day_after_the_break(tmp_path: Path) -> None:
    s = _schedule(tmp_path, SATURDAY_SHIFT)
    assert s.next_open(at("2026-02-17 12:00")) == at("2026-02-24 09:00")  # not Sat 2-21
    assert "2月24日（周二）9:00" in s.notice_text("zh", at("2026-02-17 12:00"))


def test_ordinary_saturdays_and_make_up_days_stay_open(tmp_path: Path) -> None:
    s = _schedule(tmp_path, SATURDAY_SHIFT)
    assert s.is_open(at("2026-03-07 11:00"))  # an ordinary Saturday shift
    assert s.is_open(at("2026-02-28 17:00"))  # 调休: a working Saturday with Monday's hours
    opened = _schedule(
        tmp_path, SATURDAY_SHIFT + '[dates]\n"2026-02-21" = ["10:00-12:00"]\n', name="t"
    )
    assert opened.is_open(at("2026-02-21 11:00"))  # the operator's [dates] win


def test_a_us_saturday_next_to_a_holiday_is_not_a_break(tmp_path: Path) -> None:
    s = _schedule(
        tmp_path,
        'timezone = "America/New_York"\nholidays = "US"\n[weekly]\nsat = ["10:00-16:00"]\n',
    )
    saturday = datetime(2026, 5, 23, 11, 0, tzinfo=ZoneInfo("America/New_York"))  # Memorial Day Mon
    assert s.is_open(saturday)


# --- hours told to customers: {hours}, {next_open}, and hours written by hand (issue 20, defect 11)


def test_hours_text_names_days_with_the_same_hours_together(tmp_path: Path) -> None:
    s = _schedule(
        tmp_path,
        'timezone = "Asia/Shanghai"\n[weekly]\n'
        + "".join(f'{d} = ["09:00-12:00", "13:30-18:00"]\n' for d in ("mon", "tue", "wed"))
        + 'thu = ["10:00-19:00"]\nfri = ["10:00-19:00"]\nsun = ["22:00-02:00"]\n',
    )
    assert (
        s.hours_text("zh")
        == "周一至周三 9:00–12:00、13:30–18:00，周四至周五 10:00–19:00，周日 22:00–2:00"
    )
    assert (
        s.hours_text("en") == "Mon–Wed 9:00–12:00, 13:30–18:00; Thu–Fri 10:00–19:00; Sun 22:00–2:00"
    )
    assert _default().hours_text("zh") == "周一至周五 9:00–18:00"
    assert load_schedules(DEFAULT)["urgent"].hours_text("en") == "around the clock"


def test_the_notice_fills_hours_and_next_open_from_the_schedule(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(
        'timezone = "Asia/Shanghai"\n[weekly]\n'
        + "".join(f'{d} = ["10:00-19:00"]\n' for d in ("mon", "tue", "wed", "thu", "fri"))
        + '[notice]\nzh = "人工客服时间：{hours}，下次上线：{next_open}"\n'
        'en = "We work {hours}; back {next_open}"\n',
        encoding="utf-8",
    )
    s = load_schedules(tmp_path)["s"]
    saturday = at("2026-11-28 12:00")
    assert (
        s.notice_text("zh", saturday)
        == "人工客服时间：周一至周五 10:00–19:00，下次上线：11月30日（周一）10:00"
    )
    assert s.notice_text("en", saturday) == "We work Mon–Fri 10:00–19:00; back Mon 30 Nov, 10:00"


def test_a_greeting_for_a_holiday_the_calendar_never_has_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(
        'timezone = "Asia/Shanghai"\nholidays = "CN"\n[weekly]\nmon = ["09:00-18:00"]\n'
        '[greetings."国庆"]\nzh = "国庆节快乐！"\n'
        '[greetings."圣诞节"]\nzh = "圣诞快乐！"\nen = "Merry Christmas!"\n'
        '[notice]\nzh = "x"\n',
        encoding="utf-8",
    )
    (tmp_path / "plain.toml").write_text(
        'timezone = "Europe/Berlin"\n[weekly]\nmon = ["09:00-18:00"]\n'
        '[greetings."Weihnachten"]\nzh = "圣诞快乐！"\n[notice]\nzh = "x"\n',
        encoding="utf-8",
    )
    schedules, problems = read_schedules(tmp_path)
    assert set(schedules) == {"s", "plain"}  # a warning: the bot still runs
    found = {(p.file.name, p.line, p.message, p.severity) for p in problems}
    assert found == {
        (
            "s.toml",
            7,
            '[greetings."圣诞节"] is never sent: no holiday in the CN calendar is called that',
            "warning",
        ),
        (
            "plain.toml",
            4,
            '[greetings."Weihnachten"] is never sent: this schedule has no holiday calendar',
            "warning",
        ),
    }
    [christmas] = [p for p in problems if p.file.name == "s.toml"]
    assert "国庆节" in christmas.fix and "春节" in christmas.fix
