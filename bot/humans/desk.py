"""What agents do, as one object the console calls: list queues, claim next, read a ticket,
reply, get agent-assist suggestions, transfer, resolve — and what supervisors see.

Every method is synchronous (SQLAlchemy and, for assist, the encoder): the console runs them in
the store's bounded thread pool, never on the event loop. Each change is one transaction that
also writes the ticket's history (`ticket_events`) and, on PostgreSQL, a NOTIFY on channel
`desk` so every worker's console updates live; `version()` is the cheap poll for SQLite.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.content.config import Config
from bot.domain.agent import Agent
from bot.domain.clock import Clock
from bot.domain.ticket import Ticket
from bot.humans.views import (
    QueueSummary,
    ReplyWarning,
    Suggestion,
    SupervisorView,
    TicketLine,
    TicketView,
)
from bot.pipeline.knowledge import Knowledge
from bot.store.database import Store


class DeskError(Exception):
    """A refused action; the console shows `str(error)` and answers with `status`."""

    status = 400


class NotFound(DeskError):
    status = 404


class Forbidden(DeskError):
    """The agent's role or queues do not allow it (another queue's ticket, someone else's)."""

    status = 403


class Conflict(DeskError):
    """The ticket moved on meanwhile (claimed by another, already resolved)."""

    status = 409


@dataclass(frozen=True)
class ReplyOutcome:
    """`sent` False: nothing was written; the agent sees `warnings` and may send anyway."""

    sent: bool
    warnings: list[ReplyWarning]
    outbox_id: int | None = None


class Desk:
    def __init__(
        self, config: Config, store: Store, clock: Clock, knowledge: Callable[[], Knowledge]
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.knowledge = knowledge

    def queues_of(self, agent: Agent) -> list[str]:
        """The queues this agent works: their own list, every queue for supervisors and admins
        (and for agents with none set)."""
        raise NotImplementedError

    def overview(self, agent: Agent) -> list[QueueSummary]:
        """The agent's queues with counts, oldest wait and SLA clocks."""
        raise NotImplementedError

    def queued(self, agent: Agent, queue: str | None = None, limit: int = 50) -> list[TicketLine]:
        """Tickets ready or waiting in the agent's queues, in claim order."""
        raise NotImplementedError

    def mine(self, agent: Agent) -> list[TicketLine]:
        """The agent's open tickets (assigned or waiting on the customer)."""
        raise NotImplementedError

    def claim_next(self, agent: Agent) -> Ticket | None:
        """The first queued ticket of the agent's queues becomes theirs (exactly once)."""
        raise NotImplementedError

    def claim(self, agent: Agent, ticket_id: int) -> Ticket:
        """Take a particular queued ticket (Conflict when someone was faster)."""
        raise NotImplementedError

    def ticket(self, agent: Agent, ticket_id: int) -> TicketView:
        """One ticket with its transcript, the bot's reasons and its history; Forbidden for
        another queue's ticket unless the agent is a supervisor."""
        raise NotImplementedError

    def check_reply(self, text: str) -> list[ReplyWarning]:
        """Forbidden phrases (忌语) and password requests in a draft reply."""
        raise NotImplementedError

    def reply(
        self, agent: Agent, ticket_id: int, text: str, *, confirmed: bool = False
    ) -> ReplyOutcome:
        """Send the agent's words to the customer through the conversation's channel. With
        warnings and not `confirmed`, nothing is sent. The first reply stops the
        first-response clock; the ticket then waits on the customer."""
        raise NotImplementedError

    def assist(self, agent: Agent, ticket_id: int, limit: int = 3) -> list[Suggestion]:
        """The top FAQ entries for the customer's last question, answers in their language."""
        raise NotImplementedError

    def canned(self, language: str) -> list[tuple[str, str]]:
        """Canned replies (title, text) from config `[console.canned]`, in this language."""
        raise NotImplementedError

    def transfer(
        self,
        agent: Agent,
        ticket_id: int,
        *,
        queue: str | None = None,
        to_login: str | None = None,
        note: str = "",
    ) -> Ticket:
        """To another queue (queued there) or to another agent (assigned to them), with a note
        that stays in the ticket's history."""
        raise NotImplementedError

    def resolve(self, agent: Agent, ticket_id: int) -> Ticket:
        """Done: the bot answers again, and the customer is asked for satisfaction (once per
        ticket)."""
        raise NotImplementedError

    def supervisor(self, agent: Agent) -> SupervisorView:
        """Queue depth, SLA breaches, agents online, today's volumes (supervisors and admins)."""
        raise NotImplementedError

    def seen(self, agent: Agent) -> None:
        """The agent's console is open (for "agents online")."""
        raise NotImplementedError

    def version(self) -> str:
        """Changes whenever any ticket changes: the console's live view polls it (SQLite) or
        waits for NOTIFY desk (PostgreSQL) and refreshes when it moves."""
        raise NotImplementedError
