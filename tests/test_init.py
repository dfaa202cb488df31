"""`bot init DIR`: a deployment folder outside the code that every command takes by --config or
BOT_CONFIG, and that is never written over."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from bot.assembly import check
from bot.cli.init import InitError, init_deployment
from bot.content.config import load_config
from tests.support.service import bot_command

ROOT = Path(__file__).resolve().parent.parent


def test_the_new_folder_is_the_sample_shop_and_passes_check(tmp_path: Path) -> None:
    target = tmp_path / "our-bot"
    written = init_deployment(target)
    names = {p.relative_to(target).as_posix() for p in written}
    assert {"config.toml", "README.md", ".gitignore", "cases.jsonl"} <= names
    for folder in ("faq", "intents", "schedules"):
        shipped = {p.name for p in (ROOT / folder).iterdir() if p.is_file()}
        assert shipped and {p.name for p in (target / folder).iterdir()} == shipped
    assert (target / "config.toml").read_text(encoding="utf-8") == (ROOT / "config.toml").read_text(
        encoding="utf-8"
    )
    assert "var/" in (target / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert not [p for p in check(target / "config.toml") if p.severity == "error"]
    # every path in it is the folder's own, not the repository's
    config = load_config(target / "config.toml")
    assert config.storage_url == f"sqlite:///{target.resolve() / 'var' / 'bot.sqlite3'}"
    assert config.resolve(config.content.faq) == target.resolve() / "faq"


def test_the_folders_readme_has_what_its_other_files_send_readers_to(tmp_path: Path) -> None:
    """Finding 7 of issue 20's trial: the .gitignore said "back it up instead: see the README",
    which had no backup command, and the README's bare `bot` never said which one that is."""
    target = tmp_path / "our-bot"
    init_deployment(target)
    readme = (target / "README.md").read_text(encoding="utf-8")
    assert "README" in (target / ".gitignore").read_text(encoding="utf-8")
    assert "## Backups" in readme
    assert "bot db backup ~/bot-backups/" in readme and "bot db restore " in readme
    assert ".venv/bin/bot" in readme and ".venv/bin/activate" in readme


def test_the_folders_readme_says_what_the_sample_scores(tmp_path: Path) -> None:
    """Issue 20's trial: `bot eval cases.jsonl` on an untouched folder fails 3 of 144 cases and
    a new user thinks they broke something. The README says what the sample scores, which
    cases it misses, and how a team pins its own floor; the figure is the one
    docs/measurements.md records for the shipped shop, out of the cases the folder holds."""
    target = tmp_path / "our-bot"
    init_deployment(target)
    readme = " ".join((target / "README.md").read_text(encoding="utf-8").split())
    said = re.search(r"passes (\d+) of (\d+) cases", readme)
    assert said is not None
    cases = [
        json.loads(line)
        for line in (target / "cases.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    assert int(said[2]) == len(cases)
    measured = (ROOT / "docs" / "measurements.md").read_text(encoding="utf-8")
    assert f"| cases passed | {said[1]} of {said[2]} |" in measured
    missed = re.findall(r"\bfaq-\d+\b", readme)
    assert len(missed) == len(cases) - int(said[1])
    assert set(missed) <= {case["id"] for case in cases}
    assert "--fail-under" in readme


def test_the_samples_emergency_reply_holds_when_nobody_is_online(tmp_path: Path) -> None:
    """Issue 20's trial: with no agent online, an emergency heard the urgent intent's "已立即为您
    升级至24小时紧急专线，专员会马上处理…" and then texts.handoff_unstaffed, "…现在暂时没有客服在线".
    The urgent intent's reply is said before that line when nobody is online (steps.compose),
    so in the sample a new folder starts from it promises no person at once and says what to do
    meanwhile: the hotline, and 119/120 first."""
    target = tmp_path / "our-bot"
    init_deployment(target)
    config = load_config(target / "config.toml")
    intents = [
        intent
        for path in sorted((target / "intents").glob("*.yaml"))
        for intent in yaml.safe_load(path.read_text(encoding="utf-8"))
    ]
    (urgent,) = [i for i in intents if i["name"] == config.guard.urgent_intent]
    assert urgent["priority"] == "urgent" and urgent["action"] == "handoff"
    promises = ["马上处理", "立即为您", "专员会", "right away", "immediately", "will act"]
    for lang in ("zh", "en"):
        reply = urgent["reply"][lang]
        assert not [p for p in promises if p in reply], reply
        assert "400-000-0000" in reply and "119" in reply and "120" in reply
    # what follows it when nobody is online agrees: recorded, nobody there, leave a message
    assert "没有客服在线" in config.texts.handoff_unstaffed["zh"]


def test_a_folder_that_holds_anything_is_never_written_over(tmp_path: Path) -> None:
    target = tmp_path / "ours"
    target.mkdir()
    (target / "faq.yaml").write_text("our answers\n", encoding="utf-8")
    with pytest.raises(InitError, match="not empty"):
        init_deployment(target)
    assert [p.name for p in target.iterdir()] == ["faq.yaml"]
    assert (target / "faq.yaml").read_text(encoding="utf-8") == "our answers\n"
    with pytest.raises(InitError, match="is a file"):
        init_deployment(target / "faq.yaml")


def test_an_empty_folder_is_filled(tmp_path: Path) -> None:
    target = tmp_path / "empty"
    target.mkdir()
    init_deployment(target)
    assert (target / "config.toml").is_file()
    assert not list(tmp_path.glob(".*init-tmp"))  # the staging folder is gone


def test_a_sample_without_content_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(InitError):
        init_deployment(tmp_path / "new", sample=tmp_path / "nothing-here")
    assert not (tmp_path / "new").exists()


def test_the_command_and_bot_config_from_another_folder(tmp_path: Path) -> None:
    """As the README walks it: `bot init`, then commands run from anywhere with BOT_CONFIG."""
    target = tmp_path / "deploy"
    made = subprocess.run(
        [bot_command(), "init", str(target)], capture_output=True, text=True, timeout=60
    )
    assert made.returncode == 0, made.stderr
    assert f'export BOT_CONFIG="{(target / "config.toml").resolve()}"' in made.stdout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "BOT_CONFIG": str(target / "config.toml")}
    checked = subprocess.run(
        [bot_command(), "check"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "config and content are valid" in checked.stdout
    again = subprocess.run(
        [bot_command(), "init", str(target)], capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 1 and "not empty" in again.stderr
    assert not list(elsewhere.iterdir())  # nothing was written where the command ran
