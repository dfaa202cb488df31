"""Agents: adding, finding, changing passwords, disabling, and counting failed logins.

A failed login is counted with one UPDATE that also sets the lock when the count reaches the
limit, so two workers receiving guesses at the same moment cannot both miss the lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.domain.agent import Agent, Role
from bot.store.schema import UtcDateTime, agents


class AgentExists(Exception):
    """An agent with this login is already there."""


def add(
    conn: Connection,
    login: str,
    name: str,
    role: Role,
    password_hash: str,
    now: datetime,
    queues: Sequence[str] = (),
) -> Agent:
    if conn.execute(sa.select(agents.c.id).where(agents.c.login == login)).first():
        raise AgentExists(login)
    conn.execute(
        agents.insert().values(
            login=login,
            name=name,
            role=role,
            password_hash=password_hash,
            active=True,
            failed_logins=0,
            created_at=now,
            password_changed_at=now,
            queues=list(queues) or None,
        )
    )
    found = by_login(conn, login)
    assert found is not None
    return found[0]


def by_login(conn: Connection, login: str) -> tuple[Agent, str] | None:
    """The agent and their password hash."""
    row = conn.execute(sa.select(agents).where(agents.c.login == login)).mappings().first()
    return (_agent(row), str(row["password_hash"])) if row else None


def everyone(conn: Connection) -> list[Agent]:
    rows = conn.execute(sa.select(agents).order_by(agents.c.login)).mappings()
    return [_agent(row) for row in rows]


def set_password(conn: Connection, login: str, password_hash: str, now: datetime) -> bool:
    """A new password also lifts a lock (an admin set it)."""
    return bool(
        conn.execute(
            agents.update()
            .where(agents.c.login == login)
            .values(
                password_hash=password_hash,
                password_changed_at=now,
                failed_logins=0,
                locked_until=None,
            )
        ).rowcount
    )


def set_queues(conn: Connection, login: str, queues: Sequence[str]) -> bool:
    """The queues this agent works (empty: every queue)."""
    return bool(
        conn.execute(
            agents.update().where(agents.c.login == login).values(queues=list(queues) or None)
        ).rowcount
    )


def get(conn: Connection, agent_id: int) -> Agent | None:
    row = conn.execute(sa.select(agents).where(agents.c.id == agent_id)).mappings().first()
    return _agent(row) if row else None


def seen(conn: Connection, agent_id: int, now: datetime) -> None:
    """The console heard from this agent now ("agents online")."""
    conn.execute(agents.update().where(agents.c.id == agent_id).values(seen_at=now))


def away(conn: Connection, agent_id: int) -> None:
    """The agent logged out: no longer online, whatever the console heard last."""
    conn.execute(agents.update().where(agents.c.id == agent_id).values(seen_at=None))


def online(conn: Connection, queue: str, since: datetime) -> int:
    """How many active agents who work `queue` (`Agent.works`) the console heard from since
    `since`: the agents online for it, on whichever worker their console talks to."""
    rows = conn.execute(
        sa.select(agents).where(agents.c.active.is_(True), agents.c.seen_at >= since)
    ).mappings()
    return sum(1 for row in rows if _agent(row).works(queue))


def set_active(conn: Connection, login: str, active: bool) -> bool:
    return bool(
        conn.execute(agents.update().where(agents.c.login == login).values(active=active)).rowcount
    )


def failed_login(
    conn: Connection, agent_id: int, now: datetime, limit: int, lock_for: timedelta
) -> Agent:
    """Count one failed login; at `limit` in a row the agent is locked out for `lock_for`."""
    count = agents.c.failed_logins + 1
    conn.execute(
        agents.update()
        .where(agents.c.id == agent_id)
        .values(
            failed_logins=count,
            # typed, so that SQLite stores the lock's end in UTC like every other time (an
            # untyped literal kept the wall time of `now`'s zone: a lock 8 hours too long)
            locked_until=sa.case(
                (count >= limit, sa.literal(now + lock_for, UtcDateTime)),
                else_=agents.c.locked_until,
            ),
        )
    )
    row = conn.execute(sa.select(agents).where(agents.c.id == agent_id)).mappings().one()
    return _agent(row)


def logged_in(conn: Connection, agent_id: int, now: datetime) -> None:
    conn.execute(
        agents.update()
        .where(agents.c.id == agent_id)
        .values(failed_logins=0, locked_until=None, last_login_at=now)
    )


def _agent(row: Any) -> Agent:
    return Agent(
        row["id"],
        row["login"],
        row["name"],
        Role(row["role"]),
        row["active"],
        row["failed_logins"],
        row["locked_until"],
        row["last_login_at"],
        tuple(row["queues"] or ()),
        row["seen_at"],
    )
