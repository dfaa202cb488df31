"""Broken edits are reported with file, line and fix — by `bot check` and at start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.assembly import check, load_knowledge
from bot.cli.main import main
from bot.content.config import load_config
from bot.content.entries import read_faq
from bot.content.problems import Problem, ProblemsError
from bot.understanding.encoders import MemoEncoder
from bot.understanding.faq import calibration_evidence

BROKEN_FAQ = """\
- id: shipping-time
  questions: [多久发货]
  answer: {zh: 48 小时内发货。, en: Within 48 hours.}

- id: shipping-time
  questions: [运费多少]
  answer: {zh: 满 99 包邮。}

- id: no-answer
  questions: [怎么开发票]
  category: consult
"""


def test_check_reports_every_faq_problem_at_once(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (shop / "faq" / "extra.yaml").write_text(BROKEN_FAQ, encoding="utf-8")
    assert main(["--config", str(shop / "config.toml"), "check"]) == 1
    out = capsys.readouterr().out
    extra = shop / "faq" / "extra.yaml"
    assert f"{extra}:5: duplicate id 'shipping-time' (also at {extra}:1)" in out
    # extra.yaml sorts first, so the fixture's own entry is reported against it as well
    assert (
        f"{shop / 'faq' / 'shop.yaml'}:1: duplicate id 'shipping-time' (also at {extra}:1)" in out
    )
    assert f"{extra}:9: `answer` is missing" in out
    assert "fix: add `answer:` with `zh:` and `en:` texts" in out
    # the fixture's invoice entry asks 怎么开发票 as well
    assert (
        f"{shop / 'faq' / 'shop.yaml'}:13: question '怎么开发票' is in two entries: invoice and "
        f"no-answer ({extra}:10)" in out
    )
    assert "4 problem(s) found." in out


EDITED_FAQ = """\
- id: gift-wrap
  questions:
    - 能包装吗
    - 可以礼品包装吗
  answer:
    zh: 可以。
    en: Yes.
  catgory: consult

- id: gift-card
  questions:
    - 有礼品卡吗
    - 可以礼品包装吗？
  answer:
    zh: 有。
    fr: Oui.
  category: gift

- id: change-address
  questions: 怎么改地址
  answer: {zh: 在订单页修改。}
"""


def test_each_faq_problem_names_the_line_of_its_key(shop: Path) -> None:
    """Issue 20, defect 11: the same question in two entries is an error; every problem names
    the line of the key or item at fault, not the entry's `- id:`; `questions:` given a single
    text says so instead of "missing"."""
    path = shop / "faq" / "zz.yaml"
    path.write_text(EDITED_FAQ, encoding="utf-8")
    found = {(p.line, p.message, p.severity) for p in check(shop / "config.toml")}
    assert found == {
        (8, "unknown key `catgory` (a typo?)", "error"),
        (
            13,
            f"question '可以礼品包装吗？' is in two entries: gift-card and gift-wrap ({path}:4)",
            "error",
        ),
        (16, "`answer` has unknown language 'fr'", "error"),
        (17, "`category: gift` is not allowed", "error"),
        (20, "`questions` is a single text, not a list: '怎么改地址'", "error"),
    }
    [single] = [p for p in check(shop / "config.toml") if p.line == 20]
    assert single.fix == "write each text on its own line under `questions:`, starting with `- `"


def test_a_question_twice_in_one_entry_is_a_warning(shop: Path) -> None:
    (shop / "faq" / "zz.yaml").write_text(
        "- id: gift-wrap\n  questions:\n    - 能包装吗\n    - 能 包装吗?\n"
        "  answer: {zh: 可以。, en: Yes.}\n",
        encoding="utf-8",
    )
    [problem] = [p for p in check(shop / "config.toml") if p.file.name == "zz.yaml"]
    assert (problem.line, problem.severity) == (4, "warning")
    assert problem.message == "question '能 包装吗?' is listed twice in gift-wrap (also on line 3)"


def test_duplicate_across_files_names_both(shop: Path) -> None:
    (shop / "faq" / "zz.yaml").write_text(
        "- id: invoice\n  questions: [发票]\n  answer: {zh: 可以。}\n", encoding="utf-8"
    )
    problems = check(shop / "config.toml")
    assert [str(p).splitlines()[0] for p in problems] == [
        f"{shop / 'faq' / 'zz.yaml'}:1: duplicate id 'invoice' (also at {shop / 'faq' / 'shop.yaml'}:11)"
    ]


def test_bad_yaml_names_the_line(shop: Path) -> None:
    (shop / "faq" / "shop.yaml").write_text(
        "- id: a\n  questions: [x]\n  answer:\n    zh: ok\n - id: b\n", encoding="utf-8"
    )
    [problem] = check(shop / "config.toml")
    assert problem.file == shop / "faq" / "shop.yaml" and problem.line == 5
    assert "invalid YAML" in problem.message and problem.fix


def test_forbidden_phrase_in_an_answer_is_rejected(shop: Path) -> None:
    (shop / "faq" / "rude.yaml").write_text(
        "- id: rude\n  questions: [能便宜点吗]\n  answer: {zh: 这是规定，没办法。}\n",
        encoding="utf-8",
    )
    messages = [p.message for p in check(shop / "config.toml")]
    assert "uses the forbidden phrase (忌语) '没办法'" in messages
    assert "uses the forbidden phrase (忌语) '这是规定'" in messages


def test_intent_problems(shop: Path) -> None:
    (shop / "intents" / "more.yaml").write_text(
        "- name: refund\n  examples: [退款]\n  action: handoff\n  queue: nowhere\n  priority: asap\n",
        encoding="utf-8",
    )
    text = "\n".join(str(p) for p in check(shop / "config.toml"))
    # each problem on the line of its key, not the entry's first line (issue 20, defect 11)
    assert "more.yaml:4: handoff intent needs a known queue, got 'nowhere'" in text
    assert "more.yaml:5: `priority: asap` is not allowed" in text
    assert "fix: use one of: urgent, high, normal, low" in text


def test_start_up_refuses_broken_content_with_file_and_line(
    shop: Path, encoder: MemoEncoder
) -> None:
    (shop / "faq" / "extra.yaml").write_text(BROKEN_FAQ, encoding="utf-8")
    with pytest.raises(ProblemsError) as caught:
        load_knowledge(load_config(shop / "config.toml"), encoder)
    assert any(p.line == 9 and "answer" in p.message for p in caught.value.problems)


@pytest.mark.slow
def test_bot_chat_exits_with_the_problems(shop: Path) -> None:
    (shop / "faq" / "extra.yaml").write_text(BROKEN_FAQ, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(shop / "config.toml"), "chat"],
        input="你好\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert f"{shop / 'faq' / 'extra.yaml'}:5: duplicate id" in result.stderr
    assert result.stdout == ""


def test_config_mistakes_name_key_line_and_allowed_values(shop: Path) -> None:
    path = shop / "config.toml"
    text = path.read_text(encoding="utf-8")
    text = text.replace('backend = "use"', 'backend = "bert"').replace(
        "target_precision = 0.95", "target_precison = 0.95"
    )
    path.write_text(text, encoding="utf-8")
    problems = {p.message: p for p in check(path)}
    lines = text.splitlines()
    backend = problems["encoder.backend: bad value 'bert'"]
    assert backend.line == lines.index('backend = "bert"') + 1
    assert "'use', 'sentence-transformers' or 'use+sentence-transformers'" in backend.fix
    typo = problems["faq.target_precison: unknown key (a typo?)"]
    assert typo.line == next(
        i for i, line in enumerate(lines, 1) if line.startswith("target_precison")
    )


def test_missing_config_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "nope.toml"), "eval", "x.jsonl"]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_check_outside_a_deployment_names_the_ways_to_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 20's trial: `bot check` in a folder without config.toml said "run from the project
    folder", which a new user does not have: it names `bot init`, --config and BOT_CONFIG."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BOT_CONFIG", raising=False)
    assert main(["check"]) == 1
    said = capsys.readouterr()
    printed = said.out + said.err
    assert "config file not found" in printed
    assert "bot init DIR" in printed
    assert "bot --config DIR/config.toml COMMAND" in printed
    assert "BOT_CONFIG=DIR/config.toml" in printed
    assert "project folder" not in printed


def test_duplicate_intent_across_files(shop: Path) -> None:
    (shop / "intents" / "zz.yaml").write_text(
        "- name: greeting\n  examples: [哈喽]\n  action: reply\n  reply: {zh: 您好}\n",
        encoding="utf-8",
    )
    [problem] = check(shop / "config.toml")
    assert problem.line == 1 and problem.file.name == "zz.yaml"
    assert problem.message.startswith("duplicate name 'greeting' (also at ")
    assert problem.fix == "merge the examples into one intent"


def test_unquoted_yes_no_and_plain_string_entries(shop: Path) -> None:
    (shop / "faq" / "yn.yaml").write_text(
        "- id: gift-wrap\n  questions: [能包装吗, yes]\n  answer: {zh: 可以。, en: No}\n- just-a-string\n",
        encoding="utf-8",
    )
    text = "\n".join(str(p) for p in check(shop / "config.toml"))
    assert "yn.yaml:2: `questions` has True where a text was meant (an unquoted yes/no?)" in text
    assert "yn.yaml:3: `answer.en` has False where a text was meant" in text
    assert 'fix: put the text in quotes, e.g. "yes" or "No"' in text
    assert "yn.yaml:4: an entry is not a mapping: 'just-a-string'" in text


def test_names_longer_than_the_database_allows(shop: Path) -> None:
    long_id = "a" * 65
    (shop / "faq" / "long.yaml").write_text(
        f"- id: {long_id}\n  questions: [x]\n  answer: {{zh: y}}\n", encoding="utf-8"
    )
    [problem] = check(shop / "config.toml")
    assert problem.line == 1 and "longer than 64 characters" in problem.message


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://u@h/db", "not a usable database URL"),
        ("mysql+nosuchdriver://u@h/db", "not a usable database URL"),
    ],
)
def test_storage_url_is_checked_before_start(shop: Path, url: str, message: str) -> None:
    path = shop / "config.toml"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            'url = "sqlite:///var/bot.sqlite3"', f'url = "{url}"'
        ),
        encoding="utf-8",
    )
    [problem] = check(path)
    assert problem.message.startswith(f"storage.url: {message}")
    assert "postgresql+psycopg://" in problem.message
    assert problem.line is not None


def test_forbidden_phrase_in_a_schedule_notice(shop: Path) -> None:
    path = shop / "schedules" / "default.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("您的留言已收到", "什么时候回复我也不知道"), encoding="utf-8")
    [problem] = check(shop / "config.toml")
    assert problem.file == path and problem.line is not None
    assert problem.message == "[notice] uses the forbidden phrase (忌语) '不知道'"


def test_a_channel_enabled_without_its_credentials(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`bot check` (and `bot run`, which refuses to start) names what each enabled channel
    lacks and the variable to set; nothing is read from the repository."""
    for name in ("TELEGRAM_BOT_TOKEN", "WECHAT_TOKEN", "WECHAT_AES_KEY", "WECHAT_APP_SECRET"):
        monkeypatch.delenv(name, raising=False)
    path = shop / "config.toml"
    path.write_text(
        path.read_text(encoding="utf-8")
        + "\n[channels.telegram]\nenabled = true\n"
        + '\n[channels.wechat]\nenabled = true\napp_id = "wx-test-app"\n',
        encoding="utf-8",
    )
    messages = {p.message.removesuffix(" in this environment"): p for p in check(path)}
    telegram = messages["channels.telegram is enabled but the bot token from @BotFather is missing"]
    assert "export TELEGRAM_BOT_TOKEN=" in telegram.fix
    assert (
        telegram.line
        == path.read_text(encoding="utf-8").splitlines().index("[channels.telegram]") + 2
    )
    assert {m for m in messages if m.startswith("channels.wechat")} == {
        "channels.wechat is enabled but the server-configuration Token (令牌) is missing",
        "channels.wechat is enabled but the AppSecret (开发者密码) is missing",
        "channels.wechat is enabled but the EncodingAESKey (消息加解密密钥) is missing",
    }
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:TEST-not-a-real-token")
    assert not any(p.message.startswith("channels.telegram") for p in check(path))


def test_a_wechat_account_needs_its_app_id(shop: Path) -> None:
    path = shop / "config.toml"
    path.write_text(
        path.read_text(encoding="utf-8") + "\n[channels.wechat]\nenabled = true\n",
        encoding="utf-8",
    )
    assert any("app_id (the AppID, 开发者ID) is needed" in p.message for p in check(path))


def test_too_little_evidence_for_calibration_is_said_in_check_and_at_start_up(
    shop: Path, encoder: MemoEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    """The fixture shop has 5 entries of 4 phrasings: 20 held-out questions, too few to trust
    the calibrated thresholds. `bot check` and the start-up log say so and what to do; pinned
    thresholds in config.toml need no calibration and get no warning."""
    path = shop / "config.toml"
    [weak] = [p for p in check(path) if "calibration" in p.message]
    assert weak.severity == "warning" and weak.file == shop / "faq"
    assert "only 20 phrasings can be asked without themselves" in weak.message
    assert "second and third way to ask" in weak.fix
    with caplog.at_level("WARNING", logger="bot"):
        load_knowledge(load_config(path), encoder)
    assert "only 20 phrasings can be asked without themselves" in caplog.text

    # two-phrasing entries: each phrasing, asked without itself, meets one other
    entries, _ = read_faq(shop / "faq")
    thin = [
        e.__class__(e.id, e.questions[:2], e.answer, e.category, e.file, e.line) for e in entries
    ]
    messages = [m for m, _ in calibration_evidence(thin, negatives=5)]
    assert any("5 of 5 FAQ entries have fewer than three phrasings" in m for m in messages)
    assert any("only 5 examples of what the FAQ must not answer" in m for m in messages)

    path.write_text(
        path.read_text(encoding="utf-8").replace("[faq]\n", "[faq]\nanswer_threshold = 0.6\n"),
        encoding="utf-8",
    )
    assert not [p for p in check(path) if "calibration" in p.message]


def test_telegram_webhook_mode_needs_a_public_address(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:TEST-not-a-real-token")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "not-a-real-secret")
    path = shop / "config.toml"
    path.write_text(
        path.read_text(encoding="utf-8")
        + '\n[channels.telegram]\nenabled = true\nmode = "webhook"\n',
        encoding="utf-8",
    )
    [problem] = [p for p in check(path) if "channels.telegram" in p.message]
    assert "service.public_url is not set" in problem.message
    assert 'mode = "polling"' in problem.fix


def test_a_credential_in_a_shape_the_platform_never_issues_is_named(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token pasted with a space or a key cut short is one clear problem before start-up,
    not a traceback from the platform's library."""
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "not a token")
    monkeypatch.setenv("WECOM_TOKEN", "t")
    monkeypatch.setenv("WECOM_AES_KEY", "short")
    monkeypatch.setenv("WECOM_KF_SECRET", "not-a-real-secret")
    path = shop / "config.toml"
    path.write_text(
        path.read_text(encoding="utf-8")
        + "\n[channels.telegram]\nenabled = true\n"
        + '\n[channels.wecom]\nenabled = true\ncorp_id = "ww-test"\n',
        encoding="utf-8",
    )
    found = [p.message for p in check(path) if p.message.startswith("channels.")]
    assert any("the token in $TELEGRAM_BOT_TOKEN is not a bot token" in m for m in found)
    assert any("the aes_key in $WECOM_AES_KEY is not an EncodingAESKey" in m for m in found)
    assert main(["--config", str(path), "run", "--port", "1"]) == 2  # refused, no traceback


def _new_hours(shop: Path) -> None:
    """The team's hours move to 10:00–19:00; the texts are not touched."""
    path = shop / "schedules" / "default.toml"
    path.write_text(
        path.read_text(encoding="utf-8").replace('["09:00-18:00"]', '["10:00-19:00"]'),
        encoding="utf-8",
    )


def test_hours_written_in_an_answer_or_the_notice_that_the_schedule_lacks_are_warned_of(
    shop: Path,
) -> None:
    """Issue 20, defect 11: after the hours change, an answer or the after-hours notice that
    still says 9:00-18:00 is named with its file and line; `{hours}` there is not."""
    faq, notice = shop / "faq" / "shop.yaml", shop / "schedules" / "default.toml"

    def texts_problems() -> list[Problem]:
        return [p for p in check(shop / "config.toml") if p.file in (faq, notice)]

    assert texts_problems() == []  # the hours written agree with the schedule
    _new_hours(shop)
    problems = texts_problems()
    found = {(p.file, p.line, p.message) for p in problems}
    said = "which the default schedule does not have (Mon–Fri 10:00–19:00)"
    assert found == {
        (faq, 38, f"the answer of business-hours (zh) states the hours '9:00-18:00', {said}, nor any other queue's"),
        (faq, 39, f"the answer of business-hours (en) states the hours '9:00-18:00', {said}, nor any other queue's"),
        (notice, 58, f"[notice] (zh) states the hours '9:00-18:00', {said}"),
        (notice, 59, f"[notice] (en) states the hours '9:00 and 18:00', {said}"),
    }  # fmt: skip
    assert all(p.severity == "warning" and "{hours}" in p.fix for p in problems)

    for path, old, new in [
        (faq, "周一至周五 9:00-18:00", "{hours}"),
        (faq, "Monday to Friday, 9:00-18:00", "{hours}"),
        (notice, "9:00-18:00内", "（{hours}）"),
        (notice, "between 9:00 and 18:00", "({hours})"),
    ]:
        path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    assert texts_problems() == []
