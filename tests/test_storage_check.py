"""An unusable storage.url is a problem with key, line and fix, from `bot check` and at start-up.

Tests run as root, and root ignores permission bits, so most cases use what stops root too (a
file where a folder should be, a folder where the file should be, a file that is not a database),
and the permission cases run `bot check` in a user namespace where the bits apply.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.assembly import open_store
from bot.content.config import load_config
from bot.content.problems import Problem, ProblemsError
from tests.support.service import bot_command
from tests.support.shop import checked

DEFAULT_URL = 'url = "sqlite:///var/bot.sqlite3"'


def _use_url(shop: Path, url: str) -> int:
    """Point the shop at `url`; returns the line of the key in config.toml."""
    path = shop / "config.toml"
    text = path.read_text(encoding="utf-8")
    assert DEFAULT_URL in text
    path.write_text(text.replace(DEFAULT_URL, f'url = "{url}"'), encoding="utf-8")
    return text.splitlines().index(DEFAULT_URL) + 1


def _storage_problem(shop: Path) -> Problem:
    [problem] = checked(shop / "config.toml")
    assert problem.is_error and problem.message.startswith("storage.url: ")
    assert problem.file == shop / "config.toml"
    return problem


def test_a_path_under_a_file_cannot_be_created(shop: Path) -> None:
    line = _use_url(shop, "sqlite:///config.toml/bot.sqlite3")
    problem = _storage_problem(shop)
    assert problem.line == line
    assert "config.toml is a file, not a folder" in problem.message
    assert 'url = "sqlite:///var/bot.sqlite3"' in problem.fix


def test_a_folder_is_not_a_database_file(shop: Path) -> None:
    (shop / "data").mkdir()
    line = _use_url(shop, "sqlite:///data")
    problem = _storage_problem(shop)
    assert problem.line == line and "data is a folder, not a database file" in problem.message
    assert problem.fix == 'name a file inside it, e.g. url = "sqlite:///data/bot.sqlite3"'


def test_a_text_file_is_not_a_database(shop: Path) -> None:
    (shop / "notes.txt").write_text("shopping list\n", encoding="utf-8")
    _use_url(shop, "sqlite:///notes.txt")
    problem = _storage_problem(shop)
    assert "notes.txt is not an SQLite database" in problem.message
    assert "move that file away" in problem.fix


def test_a_missing_folder_is_fine_and_check_creates_nothing(shop: Path) -> None:
    _use_url(shop, "sqlite:///var/new/deeper/bot.sqlite3")
    assert checked(shop / "config.toml") == []
    assert not (shop / "var").exists()


def test_an_existing_database_and_an_empty_file_are_fine(shop: Path) -> None:
    sqlite3.connect(shop / "old.sqlite3").execute("CREATE TABLE t (x)").connection.close()
    _use_url(shop, "sqlite:///old.sqlite3")
    assert checked(shop / "config.toml") == []
    (shop / "old.sqlite3").write_bytes(b"")
    assert checked(shop / "config.toml") == []


def _check_unprivileged(shop: Path) -> subprocess.CompletedProcess[str]:
    """`bot check` as a process that permission bits apply to.

    As root, it runs in a new user namespace (`unshare --user`): still the files' owner, but
    without the capabilities that let root write where the bits say no.
    """
    prefix: list[str] = []
    if os.geteuid() == 0:
        unshare = shutil.which("unshare")
        if unshare is None:
            pytest.skip("running as root without `unshare`: permission bits cannot apply")
        prefix = [unshare, "--user"]
        probe = subprocess.run([*prefix, "true"], capture_output=True, text=True, timeout=60)
        if probe.returncode != 0:
            pytest.skip(f"cannot make a user namespace: {probe.stderr.strip()}")
    return subprocess.run(
        [*prefix, bot_command(), "check"], cwd=shop, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_a_read_only_folder_is_reported_for_the_user_running_the_bot(shop: Path) -> None:
    line = _use_url(shop, "sqlite:///locked/bot.sqlite3")
    (shop / "locked").mkdir()
    (shop / "locked").chmod(0o555)
    result = _check_unprivileged(shop)
    assert result.returncode == 1, result.stderr
    assert (
        f"config.toml:{line}: storage.url: cannot create locked/bot.sqlite3: the folder locked is "
        "not writable by this user"
    ) in result.stdout
    assert "fix: let the user running the bot write there" in result.stdout


@pytest.mark.slow
def test_a_read_only_database_file_is_reported(shop: Path) -> None:
    _use_url(shop, "sqlite:///bot.sqlite3")
    database = shop / "bot.sqlite3"
    sqlite3.connect(database).execute("CREATE TABLE t (x)").connection.close()
    database.chmod(0o444)
    result = _check_unprivileged(shop)
    assert result.returncode == 1, result.stderr
    assert "storage.url: bot.sqlite3 cannot be read and written by this user" in result.stdout


def test_an_unreachable_postgresql_server_is_a_problem_and_quick(shop: Path) -> None:
    line = _use_url(shop, "postgresql+psycopg://postgres:secret@127.0.0.1:1/shop")
    started = time.monotonic()
    problem = _storage_problem(shop)
    assert time.monotonic() - started < 10
    assert problem.line == line
    assert problem.message.startswith(
        "storage.url: cannot connect to the database server at "
        "postgresql+psycopg://postgres:***@127.0.0.1:1/shop ("
    )
    assert "secret" not in str(problem)
    assert problem.fix.startswith("start the server, or correct the host, port")


def test_a_reachable_postgresql_server_passes(shop: Path, postgres_url: str) -> None:
    _use_url(shop, postgres_url)
    assert checked(shop / "config.toml") == []


@pytest.mark.slow
def test_bot_chat_refuses_to_start_with_the_problem_not_a_traceback(shop: Path) -> None:
    line = _use_url(shop, "sqlite:///config.toml/bot.sqlite3")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(shop / "config.toml"), "chat"],
        input="你好\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("bot: cannot start, 1 problem(s):")
    assert f"config.toml:{line}: storage.url: cannot create" in result.stderr
    assert result.stdout == ""
    assert time.monotonic() - started < 30  # refused before the content is learnt


def test_a_store_that_fails_to_open_anyway_is_a_problem(shop: Path) -> None:
    """The last guard, for what the check cannot foresee (a full disk, a lock)."""
    (shop / "data").mkdir()
    line = _use_url(shop, "sqlite:///data")
    with pytest.raises(ProblemsError) as caught:
        open_store(load_config(shop / "config.toml"))
    [problem] = caught.value.problems
    assert problem.line == line and problem.message.startswith("storage.url: cannot open")
