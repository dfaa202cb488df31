"""`bot agents`: who may log in to the console. Passwords are read from the terminal without
echo (or, for scripts, one line on standard input with --password-stdin), never from the
command line, where other users could see them in the process list."""

from __future__ import annotations

import getpass
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
    queues: str = "",
) -> int:
    from bot.store import agents
    from bot.store.database import Store
    from bot.web.auth import hash_password

    chosen = tuple(q.strip() for q in queues.split(",") if q.strip())
    unknown = [q for q in chosen if q not in config.queues]
    if unknown:
        print(
            f"bot agents: no queue {', '.join(map(repr, unknown))} in config.toml "
            f"(queues: {', '.join(config.queues)})",
            file=sys.stderr,
        )
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
        password = _password(password_stdin)
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


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        print("bot agents: the two passwords differ", file=sys.stderr)
        raise SystemExit(2)
    return first


def _no_agent(login: str) -> int:
    print(f"bot agents: no agent {login!r} (see `bot agents list`)", file=sys.stderr)
    return 2
