"""Fuzzing the files people edit (config.toml, faq/*.yaml, intents/*.yaml, schedules/*.toml):
`bot check` and hot reload answer any document with problems that name file:line, or accept
it; they never raise, and a bad edit keeps the old content serving. Survey answers and
schedules never raise and stay in range. The strategies and properties are shared with
bench/fuzz.py (tests/support/fuzzing.py), which runs them with 10^5 inputs."""

from __future__ import annotations

import dataclasses
import functools
import logging
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.assembly import check
from bot.content.problems import only_errors
from bot.hours.schedule import Schedule, load_schedules
from bot.jobs.reload import KnowledgeReloader, ScheduleReloader
from bot.pipeline.knowledge import Knowledge
from tests.support import fuzzing
from tests.support.harness import Harness
from tests.support.service import bot_command

#: modest in CI (the bench runs 10^5): together these tests take well under a minute
QUICK = settings(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped content; each example puts its file back when done."""
    return fuzzing.copy_shipped(tmp_path_factory.mktemp("fuzz") / "shop")


@pytest.mark.parametrize("name", sorted(fuzzing.SHIPPED))
def test_bot_check_names_file_and_line_for_any_document(shipped: Path, name: str) -> None:
    prop = functools.partial(fuzzing.content_property, shipped, name)

    @QUICK
    @given(fuzzing.documents(name))
    def run(data: bytes) -> None:
        assert prop(data) == []

    run()


@QUICK
@given(fuzzing.survey_texts, fuzzing.survey_scales)
def test_survey_answers_never_raise_and_stay_in_range(text: str, scale: tuple[int, int]) -> None:
    assert fuzzing.survey_property(text, *scale) == []


@pytest.fixture(scope="module")
def schedules() -> dict[str, Schedule]:
    return load_schedules(fuzzing.ROOT / "schedules")


@settings(QUICK, max_examples=60)
@given(st.sampled_from(["default", "urgent"]), fuzzing.moments)
def test_schedules_answer_for_any_moment(
    schedules: dict[str, Schedule], name: str, moment: datetime
) -> None:
    assert fuzzing.schedule_property(schedules[name], moment) == []


# --- what fuzzing found, each kept as a case of its own --------------------------------------


def _edit(root: Path, relative: str, data: bytes | str) -> Path:
    path = root / relative
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def _errors(config_path: Path) -> list[str]:
    found = only_errors(check(config_path))
    assert found, "the broken edit was accepted"
    for problem in found:
        assert problem.line, f"no line: {problem}"
    return [f"{problem.file.name}:{problem.line}: {problem.message}" for problem in found]


@pytest.fixture
def content(tmp_path: Path) -> Path:
    return fuzzing.copy_shipped(tmp_path / "shop")


@pytest.mark.parametrize(
    ("relative", "data", "expected"),
    [
        # a file saved as GBK by a Windows editor: the line of the first bad byte
        ("config.toml", "[storage]\n# 数据库\n".encode("gbk"), "config.toml:2: not UTF-8 text"),
        ("schedules/default.toml", b'timezone = "Asia/Shanghai"\n\xff\n', "default.toml:2: not"),
        ("faq/orders.yaml", b"- id: a\n  questions: [\xe5\xaf]\n", "orders.yaml:2: not UTF-8"),
        # Python 3.11's TOML errors keep the line only in their message
        ("config.toml", b"[storage]\nurl = \n", "config.toml:2: invalid TOML"),
        ("schedules/default.toml", b'timezone = "Asia/Shanghai"\n[weekly\n', "default.toml:2"),
        # a list where a queue's name belongs is a problem, not a TypeError
        (
            "intents/service.yaml",
            b"- name: x\n  action: handoff\n  queue: [general]\n  examples: [a]\n"
            b"  reply: {zh: a, en: a}\n",
            "service.yaml:3: handoff intent needs a known queue",
        ),
        # a YAML key that is a list is a problem, not a TypeError
        ("faq/orders.yaml", b"- id: a\n  ? [b]\n  : c\n", "orders.yaml:2: "),
        # an entry that is not a mapping ("- false") names its line
        ("faq/orders.yaml", b"- id: a\n  questions: [q]\n  answer: {zh: a}\n- false\n", ":4: "),
        # a date range to the end of time is refused at once (it took seconds, then raised
        # OverflowError past 9999-12-31)
        (
            "schedules/default.toml",
            b'timezone = "Asia/Shanghai"\n[dates]\n"2026-12-31..9999-12-31" = []\n'
            b'[notice]\nzh = "x"\n',
            "default.toml:3: date range",
        ),
        # a time zone name too long for a file name is an unknown zone, not an OSError
        (
            "schedules/default.toml",
            ('timezone = "' + "A" * 300 + '"\n[notice]\nzh = "x"\n').encode(),
            "default.toml:1: unknown time zone",
        ),
        # the last date there is, alone, raised OverflowError stepping past it
        (
            "schedules/default.toml",
            b'timezone = "Asia/Shanghai"\n[dates]\n9999-12-31 = ["x"]\n[notice]\nzh = "x"\n',
            "default.toml:2: bad time range",
        ),
        # a calendar named like one of the holidays package's constants (holidays.MON is an
        # int) is an unknown calendar, not a TypeError
        (
            "schedules/default.toml",
            b'timezone = "Asia/Shanghai"\nholidays = "mon"\n[notice]\nzh = "x"\n',
            "default.toml:2: unknown holiday calendar 'mon'",
        ),
        # missing keys and keys written in quotes still get a line
        ("schedules/default.toml", b'"timezone" = "Mars/Olympus"\n', "default.toml:1: unknown"),
        ("schedules/default.toml", b'timezone = "UTC"\n', "default.toml:1: [notice] needs"),
        ("config.toml", b'[storage]\nurl = "sqlite:///var/bot.sqlite3"\n', "config.toml:1: "),
    ],
)
def test_what_fuzzing_found_is_reported_with_file_and_line(
    content: Path, relative: str, data: bytes, expected: str
) -> None:
    _edit(content.parent, relative, data)
    errors = _errors(content)
    assert any(expected in error for error in errors), errors


def test_bot_check_reports_a_config_that_is_not_utf8(content: Path) -> None:
    """The command itself, as an operator runs it: a message with file:line, exit 1, no
    traceback."""
    _edit(content.parent, "config.toml", "[storage]\n# 数据库\n".encode("gbk"))
    done = subprocess.run(
        [bot_command(), "--config", str(content), "check"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=content.parent,
    )
    assert "Traceback" not in done.stderr
    assert done.returncode == 1, done.stderr
    assert "config.toml:2: not UTF-8 text" in done.stdout


# --- hot reload keeps the old content on a bad edit -------------------------------------------


@pytest.fixture
def reloading(harness: Harness, shop: Path) -> Iterator[tuple[Harness, Path]]:
    yield harness, shop


@settings(QUICK, max_examples=15)
@given(data=fuzzing.mutations_of("schedules") | fuzzing.documents("schedules"))
def test_a_bad_schedule_edit_keeps_the_old_schedules(
    reloading: tuple[Harness, Path], data: bytes
) -> None:
    harness, shop = reloading
    pipeline = harness.pipeline
    reload = ScheduleReloader(pipeline)
    before = pipeline.knowledge.schedules
    path = shop / "schedules" / "default.toml"
    original = path.read_bytes()
    try:
        path.write_bytes(data + b"\n# edited\n")  # a change the reloader sees, whatever data is
        swapped = reload()
        if not swapped:
            assert pipeline.knowledge.schedules is before
    finally:
        path.write_bytes(original)
        pipeline.knowledge = dataclasses.replace(pipeline.knowledge, schedules=before)


def test_a_schedule_that_is_not_utf8_keeps_the_old_and_logs_file_line(
    harness: Harness, shop: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reload = ScheduleReloader(harness.pipeline)
    before = harness.pipeline.knowledge.schedules
    path = shop / "schedules" / "default.toml"
    path.write_bytes(path.read_bytes().replace("调休".encode(), "调休".encode("gbk"), 1))
    with caplog.at_level(logging.ERROR, logger="bot.jobs"):
        assert reload() is False
    assert harness.pipeline.knowledge.schedules is before
    assert "default.toml:" in caplog.text and "not UTF-8 text" in caplog.text


@settings(QUICK, max_examples=10)
@given(
    name=st.sampled_from(["faq", "intents"]),
    data=st.one_of(fuzzing.mutations_of("faq"), fuzzing.mutations_of("intents")),
)
def test_a_bad_faq_or_intent_edit_keeps_the_old_index(
    reloading: tuple[Harness, Path], name: str, data: bytes
) -> None:
    harness, shop = reloading
    pipeline = harness.pipeline
    relative = "faq/shop.yaml" if name == "faq" else "intents/intents.yaml"
    calls: list[int] = []

    def learn() -> Knowledge:
        """What hot reload learns from, without the encoder: the reading that refuses."""
        from bot.assembly import read_content
        from bot.content.problems import ProblemsError

        calls.append(1)
        _, problems = read_content(pipeline.config)
        if only_errors(problems):
            raise ProblemsError(only_errors(problems))
        return pipeline.knowledge

    reload = KnowledgeReloader(pipeline, learn)
    before = pipeline.knowledge.faq
    path = shop / relative
    original = path.read_bytes()
    try:
        path.write_bytes(data + b"\n# edited\n")
        if not reload():
            assert pipeline.knowledge.faq is before
            assert all(":" in problem for problem in reload.problems)
        assert calls == [1]
    finally:
        path.write_bytes(original)
