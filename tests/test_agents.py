"""The console's agents: `bot agents`, argon2 passwords, lock-out after repeated failures,
and the failure count kept exact when several workers receive guesses at once."""

from __future__ import annotations

import io
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.cli.main import main
from bot.content.config import load_config
from bot.domain.agent import Role
from bot.store import agents
from bot.store.database import Store
from bot.store.schema import agents as agents_table
from bot.web.auth import LoginRefused, authenticate, hash_password
from tests.support.service import bot_command

PASSWORD = "correct horse battery"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def _agents(shop: Path, monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["--config", str(shop / "config.toml"), "agents", *args])


def test_bot_agents_adds_lists_changes_and_disables(
    shop: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    add = ["add", "wang", "--name", "王小明", "--role", "supervisor", "--password-stdin"]
    assert _agents(shop, monkeypatch, *add, stdin=PASSWORD + "\n") == 0
    assert "wang: added as supervisor (王小明)" in capsys.readouterr().out
    assert _agents(shop, monkeypatch, *add, stdin=PASSWORD + "\n") == 2
    assert "exists already" in capsys.readouterr().err
    short = ["add", "li", "--password-stdin"]
    assert _agents(shop, monkeypatch, *short, stdin="short\n") == 2
    assert "at least 10 characters" in capsys.readouterr().err
    assert _agents(shop, monkeypatch, "passwd", "nobody", "--password-stdin", stdin=PASSWORD) == 2
    assert "no agent 'nobody'" in capsys.readouterr().err

    store = Store(load_config(shop / "config.toml").storage_url)
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(agents_table.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert authenticate(store, "wang", PASSWORD, NOW).role == Role.SUPERVISOR

    assert _agents(shop, monkeypatch, "disable", "wang") == 0
    assert _agents(shop, monkeypatch, "list") == 0
    assert "wang" in (listed := capsys.readouterr().out) and "disabled" in listed
    with pytest.raises(LoginRefused, match="disabled"):
        authenticate(store, "wang", PASSWORD, NOW)
    assert _agents(shop, monkeypatch, "enable", "wang") == 0
    assert authenticate(store, "wang", PASSWORD, NOW).login == "wang"
    store.close()


def test_bot_agents_queues_shows_unless_told_and_all_is_explicit(
    shop: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 20, defect 5: `bot agents queues li` without --queues gave li every queue."""
    add = ["add", "li", "--queues", "general,after_sales", "--password-stdin"]
    assert _agents(shop, monkeypatch, *add, stdin=PASSWORD + "\n") == 0
    capsys.readouterr()

    def works() -> tuple[str, ...]:
        store = Store(load_config(shop / "config.toml").storage_url)
        with store.engine.connect() as conn:
            found = agents.by_login(conn, "li")
        store.close()
        assert found is not None
        return found[0].queues

    assert _agents(shop, monkeypatch, "queues", "li") == 0
    assert "li: works general, after_sales" in capsys.readouterr().out
    assert works() == ("general", "after_sales")

    assert _agents(shop, monkeypatch, "queues", "li", "--queues", "tech,nowhere") == 2
    refused = capsys.readouterr().err
    assert "'nowhere'" in refused and "general, complaints, after_sales, tech, urgent" in refused
    assert _agents(shop, monkeypatch, "queues", "li", "--queues", "") == 2
    assert "`all`" in capsys.readouterr().err
    assert works() == ("general", "after_sales")

    assert _agents(shop, monkeypatch, "queues", "li", "--queues", "all") == 0
    assert "li: works every queue" in capsys.readouterr().out
    assert works() == ()
    assert _agents(shop, monkeypatch, "queues", "nobody") == 2


def test_a_password_with_no_terminal_is_refused_in_one_line(shop: Path) -> None:
    """Issue 20, defect 5: `bot agents add x </dev/null` ended in an EOFError traceback."""
    for args, stdin in [
        (["add", "x"], subprocess.DEVNULL),  # no terminal, nothing on stdin
        (["add", "x", "--password-stdin"], subprocess.DEVNULL),
        (["passwd", "x"], subprocess.DEVNULL),
    ]:
        result = subprocess.run(
            [bot_command(), "agents", *args],
            cwd=shop,
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            start_new_session=True,  # no controlling terminal, as under cron or CI
        )
        assert result.returncode == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "--password-stdin" in result.stderr
    result = subprocess.run(
        [bot_command(), "agents", "add", "x", "--password-stdin"],
        cwd=shop,
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
    )
    assert result.returncode == 0, result.stderr
    assert "x: added as agent" in result.stdout


def test_repeated_wrong_passwords_lock_the_agent_out_for_a_while(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/agents.sqlite3")
    store.migrate()
    with store.transaction() as tx:
        agents.add(tx, "zhao", "赵", Role.AGENT, hash_password(PASSWORD), NOW)
    with pytest.raises(LoginRefused, match="no agent"):
        authenticate(store, "qian", PASSWORD, NOW)
    for n in range(1, 6):
        with pytest.raises(LoginRefused, match=f"{n} in a row"):
            authenticate(store, "zhao", "guess-number-" + str(n), NOW)
    # locked: even the right password is refused until the lock ends
    with pytest.raises(LoginRefused, match="locked"):
        authenticate(store, "zhao", PASSWORD, NOW + timedelta(minutes=14))
    agent = authenticate(store, "zhao", PASSWORD, NOW + timedelta(minutes=16))
    assert agent.login == "zhao"
    with store.engine.connect() as conn:
        found = agents.by_login(conn, "zhao")
    assert found is not None and found[0].failed_logins == 0
    assert found[0].last_login_at == NOW + timedelta(minutes=16)
    # an admin's new password lifts a lock at once
    for _ in range(5):
        with pytest.raises(LoginRefused):
            authenticate(store, "zhao", "wrong-wrong-wrong", NOW)
    with store.transaction() as tx:
        agents.set_password(tx, "zhao", hash_password("a new long password"), NOW)
    assert authenticate(store, "zhao", "a new long password", NOW).login == "zhao"
    store.close()


def test_guesses_at_several_workers_at_once_are_all_counted(postgres_url: str) -> None:
    """Two workers (each with its own connection pool) receive 10 wrong passwords for one
    agent at the same time: every one is counted and the agent ends up locked."""
    setup = Store(postgres_url)
    setup.migrate()
    with setup.transaction() as tx:
        agents.add(tx, "sun", "孙", Role.AGENT, hash_password(PASSWORD), NOW)
    workers = [Store(postgres_url) for _ in range(2)]
    start = threading.Barrier(len(workers))

    def guess(store: Store) -> None:
        start.wait()
        for _ in range(5):
            with store.transaction() as tx:
                agent, _hash = agents.by_login(tx, "sun") or (None, "")
                assert agent is not None
                agents.failed_login(tx, agent.id, NOW, 5, timedelta(minutes=15))

    threads = [threading.Thread(target=guess, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    with setup.engine.connect() as conn:
        found = agents.by_login(conn, "sun")
    assert found is not None
    assert found[0].failed_logins == 10 and found[0].locked(NOW)
    for store in [setup, *workers]:
        store.close()
