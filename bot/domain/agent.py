"""The people behind the bot: agents who answer customers, supervisors who watch the queues,
admins who manage both."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    AGENT = "agent"  # claims tickets and answers customers
    SUPERVISOR = "supervisor"  # also sees every queue, transfers, the supervisor view
    ADMIN = "admin"  # also manages agents

    def may(self, needed: Role) -> bool:
        """Roles are ordered: a supervisor may do what an agent may, an admin everything."""
        order = list(Role)
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True)
class Agent:
    id: int
    login: str
    name: str
    role: Role
    active: bool
    failed_logins: int = 0
    locked_until: datetime | None = None
    last_login_at: datetime | None = None
    #: the queues this agent works; empty: every queue
    queues: tuple[str, ...] = ()
    seen_at: datetime | None = None

    def works(self, queue: str) -> bool:
        """May see and take this queue's tickets: supervisors and admins every queue."""
        return self.role.may(Role.SUPERVISOR) or not self.queues or queue in self.queues

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now
