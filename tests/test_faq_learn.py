"""`bot faq learn`: questions customers resolved by picking a suggestion are offered to the
admin; accepted ones are written into the FAQ file with its comments and layout kept, and the
bot answers them directly after a reload; rejected ones are not offered again."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.assembly import build_pipeline
from bot.cli.main import main
from bot.content.config import Config, load_config
from bot.content.faq_writer import FaqEditError, add_questions
from bot.domain.clock import SystemClock
from bot.domain.messages import Action, Inbound
from bot.understanding.encoders import MemoEncoder
from tests.support.shop import pin_thresholds


def _config(shop: Path) -> Config:
    return load_config(pin_thresholds(shop))


def _talk(config: Config, encoder: MemoEncoder, exchanges: list[tuple[str, list[str]]]) -> None:
    """Customers talking to the bot on the configured store: each says these texts in turn."""
    pipeline = build_pipeline(config, SystemClock(), encoder=encoder)
    for user, texts in exchanges:
        for n, text in enumerate(texts):
            now = SystemClock().now()
            pipeline.handle(Inbound("telegram", f"{user}-{n}", user, user, text, now))
    pipeline.store.close()


def test_a_picked_suggestion_becomes_a_phrasing_once_the_admin_accepts(
    shop: Path, encoder: MemoEncoder, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(shop)
    _talk(
        config,
        encoder,
        [
            ("a", ["发漂怎么开", "第一个"]),  # suggested, then picked: a candidate
            ("b", ["发漂 怎么开？", "1"]),  # the same question, written a little differently
            ("c", ["发漂怎么开", "算了"]),  # suggested but nothing picked: no candidate
            ("d", ["我的手机13812345678发漂怎么开", "1"]),  # personal data: never offered
        ],
    )
    faq_file = next(p for p in (shop / "faq").glob("*.yaml") if "id: invoice" in p.read_text())
    before = faq_file.read_text(encoding="utf-8")
    argv = ["--config", str(shop / "config.toml"), "faq", "learn"]

    assert main(argv) == 0  # lists, changes nothing
    listed = capsys.readouterr().out
    assert "1. [2×] 发漂怎么开  (" in listed and "→ invoice" in listed
    assert "13812345678" not in listed and "138****5678" not in listed
    assert faq_file.read_text(encoding="utf-8") == before

    assert main([*argv, "--accept", "1"]) == 0
    assert "1 phrasing(s) added" in capsys.readouterr().out
    after = faq_file.read_text(encoding="utf-8")
    added = [line for line in after.splitlines() if line not in before.splitlines()]
    assert [line.strip() for line in added] == ["- 发漂怎么开"]
    # everything the admin wrote is still there, comments included, in the same place
    assert [line for line in after.splitlines() if line not in added] == before.splitlines()

    # the bot answers the question now, without a "did you mean…?"
    pipeline = build_pipeline(load_config(shop / "config.toml"), SystemClock(), encoder=encoder)
    ctx = pipeline.handle(Inbound("telegram", "e-0", "e", "e", "发漂怎么开", SystemClock().now()))
    assert ctx.decision is not None and ctx.decision.action == Action.ANSWER
    assert ctx.decision.faq_id == "invoice"
    pipeline.store.close()

    assert main(argv) == 0  # reviewed: not offered again
    assert "No new phrasings" in capsys.readouterr().out


def test_a_rejected_phrasing_is_not_offered_again(
    shop: Path, encoder: MemoEncoder, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(shop)
    _talk(config, encoder, [("a", ["发漂怎么开", "第一个"])])
    argv = ["--config", str(shop / "config.toml"), "faq", "learn"]
    assert main([*argv, "--reject", "all"]) == 0
    assert "0 phrasing(s) added, 1 rejected" in capsys.readouterr().out
    assert main(argv) == 0
    assert "No new phrasings" in capsys.readouterr().out
    assert main([*argv, "--accept", "7"]) == 0  # nothing to number any more
    _talk(config, encoder, [("b", ["发漂怎么开", "第一个"])])
    assert main(argv) == 0  # asked again by someone else: still rejected
    assert "No new phrasings" in capsys.readouterr().out


def test_wrong_numbers_are_refused(
    shop: Path, encoder: MemoEncoder, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(shop)
    _talk(config, encoder, [("a", ["发漂怎么开", "第一个"])])
    argv = ["--config", str(shop / "config.toml"), "faq", "learn"]
    assert main([*argv, "--accept", "2"]) == 2
    assert "give numbers from 1 to 1" in capsys.readouterr().err
    assert main([*argv, "--accept", "1", "--reject", "1"]) == 2


def test_an_accepted_phrasing_taken_out_again_is_offered_again_and_ids_are_stable(
    shop: Path, encoder: MemoEncoder, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(shop)
    _talk(config, encoder, [("a", ["发漂怎么开", "第一个"])])
    argv = ["--config", str(shop / "config.toml"), "faq", "learn"]
    faq_file = next(p for p in (shop / "faq").glob("*.yaml") if "id: invoice" in p.read_text())
    before = faq_file.read_text(encoding="utf-8")
    assert main(argv) == 0
    key = capsys.readouterr().out.split("  (")[1][:6]
    assert main([*argv, "--accept", key]) == 0  # by its id, not its place in the list
    assert faq_file.read_text(encoding="utf-8") != before
    faq_file.write_text(before, encoding="utf-8")  # the admin changes their mind
    capsys.readouterr()
    assert main(argv) == 0
    assert f"发漂怎么开  ({key})" in capsys.readouterr().out


def test_the_writer_keeps_layout_quotes_what_yaml_would_misread_and_refuses_flow_lists(
    tmp_path: Path,
) -> None:
    path = tmp_path / "faq.yaml"
    path.write_text(
        "# shipping questions\n"
        "- id: fee   # the one people ask most\n"
        "  questions:\n"
        "  - 运费多少\n"
        "  - >-\n"
        "    how much is\n"
        "    shipping\n"
        "  answer: {zh: 八元}\n"
        "\n"
        "- id: flow\n"
        "  questions: [a, b]\n"
        "  answer: {zh: 好}\n",
        encoding="utf-8",
    )
    assert add_questions(path, "fee", ["yes", "运费: 多少 #2", "运费多少"]) == [
        "yes",
        "运费: 多少 #2",
    ]
    assert path.read_text(encoding="utf-8").splitlines()[:10] == [
        "# shipping questions",
        "- id: fee   # the one people ask most",
        "  questions:",
        "  - 运费多少",
        "  - >-",
        "    how much is",
        "    shipping",
        '  - "yes"',
        '  - "运费: 多少 #2"',
        "  answer: {zh: 八元}",
    ]
    # a line separator inside a question is kept as an escape, so the next edit still works
    assert add_questions(path, "fee", ["运费\u2028多少"]) == ["运费\u2028多少"]
    assert '  - "运费\\u2028多少"' in path.read_text(encoding="utf-8")
    assert add_questions(path, "fee", ["运费几块"]) == ["运费几块"]
    with pytest.raises(FaqEditError, match="one per line"):
        add_questions(path, "flow", ["c"])
    with pytest.raises(FaqEditError, match="no entry with id 'nope'"):
        add_questions(path, "nope", ["c"])
