"""A text without a language the shop answers in is a visible warning, not a silent gap."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.assembly import load_knowledge
from bot.cli.main import main
from bot.content.config import load_config
from bot.understanding.encoders import MemoEncoder
from tests.support.shop import checked

CHINESE_ONLY = """\
- id: gift-wrap
  questions: [能包装吗, 可以礼品包装吗]
  answer:
    zh: 可以，下单时备注“礼品包装”即可。
"""


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_faq_answer_without_english_is_a_warning_with_file_line_and_fix(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (shop / "faq" / "wrap.yaml").write_text(CHINESE_ONLY, encoding="utf-8")
    [warning] = checked(shop / "config.toml")
    assert warning.severity == "warning" and not warning.is_error
    assert warning.file == shop / "faq" / "wrap.yaml" and warning.line == 1
    assert "'gift-wrap'" in warning.message and "English (`en`)" in warning.message
    assert warning.fix.startswith("add `en:` under `answer:`")
    assert 'languages = ["zh"]' in warning.fix

    assert main(["--config", str(shop / "config.toml"), "check"]) == 0
    out = capsys.readouterr().out
    assert f"warning: {shop / 'faq' / 'wrap.yaml'}:1: FAQ entry 'gift-wrap'" in out
    assert "fix: add `en:` under `answer:`" in out
    # and the calibration's; then the act each intent is taken as
    assert "config and content are valid, with 2 warning(s).\n" in out
    assert "  urgent: emergency (priority urgent)" in out


def test_a_plain_string_answer_is_chinese_only(shop: Path) -> None:
    (shop / "faq" / "wrap.yaml").write_text(
        "- id: gift-wrap\n  questions: [能包装吗]\n  answer: 可以。\n", encoding="utf-8"
    )
    [warning] = checked(shop / "config.toml")
    assert warning.line == 1 and "English" in warning.message


def test_warnings_do_not_fail_the_check_but_are_counted_beside_errors(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (shop / "faq" / "wrap.yaml").write_text(
        CHINESE_ONLY + "- id: no-answer\n  questions: [x]\n", encoding="utf-8"
    )
    assert main(["--config", str(shop / "config.toml"), "check"]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    error = next(i for i, line in enumerate(lines) if "`answer` is missing" in line)
    warning = next(i for i, line in enumerate(lines) if line.startswith("warning: "))
    assert error < warning  # what must be fixed comes first
    assert lines[-1] == "1 problem(s) found, and 1 warning(s)."


def test_intent_reply_config_text_and_notice_without_english(shop: Path) -> None:
    _edit(
        shop / "intents" / "intents.yaml",
        "    en: You're welcome, glad to help!\n",
        "",
    )
    config = shop / "config.toml"
    _edit(config, "en = \"You're writing faster than I can answer", '# en = "')
    schedule = shop / "schedules" / "default.toml"
    _edit(schedule, '\nen = "Hello! Our team is outside', '\n# en = "')
    found = {(p.file.name, p.line): p for p in checked(config)}
    assert all(p.severity == "warning" for p in found.values())
    intents_lines = (shop / "intents" / "intents.yaml").read_text(encoding="utf-8").splitlines()
    thanks = intents_lines.index("- name: thanks") + 1
    assert "intent 'thanks': the reply has no English" in found["intents.yaml", thanks].message
    flood = config.read_text(encoding="utf-8").splitlines().index("[texts.flood]") + 1
    assert found["config.toml", flood].message.startswith("[texts.flood] has no English")
    assert found["config.toml", flood].fix.startswith('add en = "…" under [texts.flood]')
    notice = schedule.read_text(encoding="utf-8").splitlines().index("[notice]") + 1
    assert found["default.toml", notice].message.startswith("[notice] has no English")
    assert len(found) == 3


def test_a_chinese_only_shop_says_so_and_gets_no_warnings(shop: Path) -> None:
    (shop / "faq" / "wrap.yaml").write_text(CHINESE_ONLY, encoding="utf-8")
    _edit(shop / "config.toml", 'languages = ["zh", "en"]', 'languages = ["zh"]')
    assert checked(shop / "config.toml") == []


def test_languages_must_be_ones_the_bot_speaks(shop: Path) -> None:
    _edit(shop / "config.toml", 'languages = ["zh", "en"]', 'languages = ["zh", "fr"]')
    [problem] = checked(shop / "config.toml")
    assert problem.is_error and problem.message.startswith("content.languages.1: bad value 'fr'")
    lines = (shop / "config.toml").read_text(encoding="utf-8").splitlines()
    assert problem.line == lines.index('languages = ["zh", "fr"]') + 1


def test_start_up_logs_the_warnings_and_runs(
    shop: Path, encoder: MemoEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    (shop / "faq" / "wrap.yaml").write_text(CHINESE_ONLY, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="bot.app"):
        knowledge = load_knowledge(load_config(shop / "config.toml"), encoder)
    assert "gift-wrap" in {entry.id for entry in knowledge.faq.entries}
    logged = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "calibration" not in r.getMessage()
    ]
    assert len(logged) == 1 and "FAQ entry 'gift-wrap'" in logged[0]
