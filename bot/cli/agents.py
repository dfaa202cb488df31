"""`bot agents`: who may log in to the console. Passwords are read from the terminal without
echo (or, for scripts, one line on standard input with --password-stdin), never from the
command line, where other users could see them in the process list."""

from __future__ import annotations

import getpass
import os
import sys

from bot.content.config import Config
from bot.domain.agent import Role
from bot.domain.clock import SystemClock


def agents_command(
    config: Config,
    action: str,
    login: str | None,
    name: str | None,
    role: str,
    password_stdin: bool,
    queues: str | None = None,
) -> int:
    from bot.store import agents
    from bot.store.database import Store
    from bot.web.auth import hash_password

    try:
        chosen = _queues(config, queues)
    except _Refused as refused:
        print(f"bot agents: {refused}", file=sys.stderr)
        return 2
    store = Store(config.storage_url)
    store.migrate()
    now = SystemClock().now()
    try:
        if action == "list":
            with store.engine.connect() as conn:
                everyone = agents.everyone(conn)
            if not everyone:
                print("No agents yet: add one with `bot agents add LOGIN --name NAME`.")
            for agent in everyone:
                state = "active" if agent.active else "disabled"
                if agent.locked(now):
                    state += f", locked until {agent.locked_until:%Y-%m-%d %H:%M} UTC"
                works = ",".join(agent.queues) or "all queues"
                print(
                    f"{agent.login:<20} {agent.role.value:<11} {state:<10} {works:<24} {agent.name}"
                )
            return 0
        assert login is not None
        if action == "queues":
            if queues is None:
                with store.engine.connect() as conn:
                    found = agents.by_login(conn, login)
                if found is None:
                    return _no_agent(login)
                works = ", ".join(found[0].queues) or "every queue"
                print(f"{login}: works {works} (change it with --queues NAME,… or --queues all)")
                return 0
            with store.transaction() as tx:
                changed = agents.set_queues(tx, login, chosen)
            if not changed:
                return _no_agent(login)
            print(f"{login}: works {', '.join(chosen) or 'every queue'}")
            return 0
        if action == "disable" or action == "enable":
            with store.transaction() as tx:
                changed = agents.set_active(tx, login, action == "enable")
            if not changed:
                return _no_agent(login)
            print(
                f"{login}: {action}d" + (" (can no longer log in)" if action == "disable" else "")
            )
            return 0
        try:
            password = _password(password_stdin)
        except _Refused as refused:
            print(f"bot agents: {refused}", file=sys.stderr)
            return 1
        try:
            hashed = hash_password(password)
        except ValueError as exc:
            print(f"bot agents: {exc}", file=sys.stderr)
            return 2
        if action == "add":
            try:
                with store.transaction() as tx:
                    agent = agents.add(
                        tx, login, name or login, Role(role), hashed, now, queues=chosen
                    )
            except agents.AgentExists:
                print(
                    f"bot agents: {login!r} exists already (change the password with "
                    "`bot agents passwd`)",
                    file=sys.stderr,
                )
                return 2
            works = ", ".join(agent.queues) or "every queue"
            print(f"{agent.login}: added as {agent.role.value} ({agent.name}), works {works}")
            return 0
        with store.transaction() as tx:
            changed = agents.set_password(tx, login, hashed, now)
        if not changed:
            return _no_agent(login)
        print(f"{login}: password changed (and any lock lifted)")
        return 0
    finally:
        store.close()


class _Refused(Exception):
    """A mistake on the command line, said in one line."""


def _queues(config: Config, given: str | None) -> tuple[str, ...]:
    """The queues named with --queues: () for `all` (every queue, now and added later); nothing
    given is () too, which `add` takes as every queue and `queues` as "show them"."""
    if given is None:
        return ()
    chosen = tuple(q.strip() for q in given.split(",") if q.strip())
    known = ", ".join(config.queues)
    if chosen == ("all",):
        return ()
    if not chosen or "all" in chosen:
        raise _Refused(
            f"--queues takes queue names separated by commas, or `all` alone (queues: {known})"
        )
    unknown = [q for q in chosen if q not in config.queues]
    if unknown:
        raise _Refused(f"no queue {', '.join(map(repr, unknown))} in config.toml (queues: {known})")
    return chosen


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise _Refused("--password-stdin: standard input is empty; pipe the password in")
        return line.rstrip("\n")
    if not _has_terminal():
        raise _Refused("no terminal to ask for the password on; pipe it in with --password-stdin")
    try:
        first = getpass.getpass("Password: ")
        again = getpass.getpass("Again: ")
    except EOFError:
        raise _Refused("no password given (input ended)") from None
    if again != first:
        raise _Refused("the two passwords differ")
    return first


def _has_terminal() -> bool:
    """getpass asks on the controlling terminal, and without one reads standard input with a
    warning and fails at its end with a traceback: know beforehand."""
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return sys.stdin.isatty()
    return True


def _no_agent(login: str) -> int:
    print(f"bot agents: no agent {login!r} (see `bot agents list`)", file=sys.stderr)
    return 2
