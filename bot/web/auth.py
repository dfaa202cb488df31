"""Who may use the console: passwords hashed with argon2id (argon2-cffi), a lock after
repeated failures, and one answer for every refusal, so a guesser learns nothing about which
logins exist.

`authenticate` does the database calls and the hashing synchronously: the console runs it in
the store pool, never on the event loop (an argon2 check takes tens of milliseconds on purpose).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bot.domain.agent import Agent
from bot.store import agents
from bot.store.database import Store

#: argon2-cffi's defaults (argon2id, 64 MiB, 3 passes), the RFC 9106 low-memory choice
HASHER = PasswordHasher()
#: shortest password accepted when an admin sets one
MIN_PASSWORD = 10
#: checked against when the login does not exist, so that both take the same time
_DUMMY_HASH = HASHER.hash("not a password anyone has")


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return HASHER.hash(password)


@dataclass(frozen=True)
class LoginRefused(Exception):
    """Wrong login or password, a disabled agent, or a locked one: the console says the same
    for all; `reason` is for the log."""

    reason: str


def authenticate(
    store: Store,
    login: str,
    password: str,
    now: datetime,
    limit: int = 5,
    lock_for: timedelta = timedelta(minutes=15),
) -> Agent:
    with store.engine.connect() as conn:
        found = agents.by_login(conn, login)
    if found is None:
        _check(_DUMMY_HASH, password)
        raise LoginRefused(f"no agent {login!r}")
    agent, stored = found
    if not agent.active:
        _check(_DUMMY_HASH, password)
        raise LoginRefused(f"agent {login!r} is disabled")
    if agent.locked(now):
        raise LoginRefused(f"agent {login!r} is locked until {agent.locked_until}")
    if not _check(stored, password):
        with store.transaction() as tx:
            after = agents.failed_login(tx, agent.id, now, limit, lock_for)
        raise LoginRefused(
            f"wrong password for {login!r} ({after.failed_logins} in a row"
            + (", now locked)" if after.locked(now) else ")")
        )
    with store.transaction() as tx:
        agents.logged_in(tx, agent.id, now)
        if HASHER.check_needs_rehash(stored):
            agents.set_password(tx, login, HASHER.hash(password), now)
    return agent


def _check(stored: str, password: str) -> bool:
    try:
        return HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def current_agent(store: Store, agent_id: int) -> Agent | None:
    """The agent behind a console session, or None once they are disabled or removed: checked
    on every request (one primary-key read), so disabling an agent ends their sessions at once."""
    with store.engine.connect() as conn:
        agent = agents.get(conn, agent_id)
    return agent if agent is not None and agent.active else None
