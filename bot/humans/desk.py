"""What agents do, as one object the console calls: list queues, claim next, read a ticket,
reply, get agent-assist suggestions, transfer, resolve — and what supervisors see.

Every method is synchronous (SQLAlchemy and, for assist, the encoder): the console runs them in
the store's bounded thread pool, never on the event loop. Each change is one transaction that
also writes the ticket's history (`ticket_events`) and, on PostgreSQL, a NOTIFY on channel
`desk` so every worker's console updates live; `version()` is the cheap poll for SQLite.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from bot.content.config import Config, pick
from bot.content.entries import forbidden_in
from bot.domain.agent import Agent, Role
from bot.domain.clock import Clock
from bot.domain.privacy import mask, search_forms
from bot.domain.ticket import Ticket, TicketState
from bot.humans.views import (
    AgentLoad,
    ConversationLine,
    QueueSummary,
    ReplyWarning,
    Suggestion,
    SupervisorView,
    TicketEvent,
    TicketLine,
    TicketView,
    TranscriptLine,
)
from bot.pipeline.knowledge import Knowledge
from bot.store import agents as agent_store
from bot.store import conversations, outbox, ticket_reads
from bot.store import tickets as ticket_store
from bot.store.database import Store
from bot.understanding.suggestions import question_in

log = logging.getLogger("bot.humans")

#: asking for (or mentioning) a password, PIN or verification code: an agent must never ask
_PASSWORD = re.compile(r"密码|口令|验证码|支付码|password|passcode|\bpin\b|\bcvv\b", re.I)
#: the longest reply an agent may send at once (channels split long texts themselves)
MAX_REPLY = 4000
MAX_NOTE = 500


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
        self,
        config: Config,
        store: Store,
        clock: Clock,
        knowledge: Callable[[], Knowledge],
        on_written: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.knowledge = knowledge
        #: called after a reply or survey question was written to the outbox (wakes the
        #: dispatcher; thread-safe on the caller's side)
        self.on_written = on_written

    # --- reading ------------------------------------------------------------------------------

    def queues_of(self, agent: Agent) -> list[str]:
        """The queues this agent works: their own list, every queue for supervisors and admins
        (and for agents with none set)."""
        return [queue for queue in self.config.queues if agent.works(queue)]

    def overview(self, agent: Agent) -> list[QueueSummary]:
        """The agent's queues with counts, oldest wait and SLA clocks."""
        now = self.clock.now()
        with self.store.engine.connect() as conn:
            counts = ticket_reads.queue_counts(conn, now)
        schedules = self.knowledge().schedules
        out = []
        for queue in self.queues_of(agent):
            c = counts.get(queue, ticket_reads.QueueCounts())
            oldest = (now - c.oldest_available).total_seconds() if c.oldest_available else None
            schedule = schedules[self.config.queues[queue].schedule]
            out.append(
                QueueSummary(
                    queue,
                    c.queue_closed,
                    c.queued,
                    c.assigned,
                    max(0.0, oldest) if oldest is not None else None,
                    c.breached,
                    c.next_due,
                    schedule.is_open(now),
                )
            )
        return out

    def queued(self, agent: Agent, queue: str | None = None, limit: int = 50) -> list[TicketLine]:
        """Tickets queued or queue_closed in the agent's queues, in claim order."""
        queues = self.queues_of(agent)
        if queue is not None:
            if queue not in queues:
                raise Forbidden(f"queue {queue!r} is not one of yours")
            queues = [queue]
        with self.store.engine.connect() as conn:
            rows = ticket_reads.listed(
                conn,
                queues=queues,
                statuses=(TicketState.QUEUED, TicketState.QUEUE_CLOSED),
                limit=limit,
            )
        return [self._line(row) for row in rows]

    def mine(self, agent: Agent) -> list[TicketLine]:
        """The agent's open tickets (assigned, or awaiting the customer)."""
        with self.store.engine.connect() as conn:
            rows = ticket_reads.listed(
                conn, agent_id=agent.id, statuses=TicketState.with_agent(), limit=200
            )
        return [self._line(row) for row in rows]

    def done(
        self, agent: Agent, status: TicketState, shown: int = 0, limit: int = 50
    ) -> tuple[list[TicketLine], bool]:
        """Resolved or closed tickets the agent may see (their queues' and their own), the last
        done first, from the `shown`-th on; and whether there are more after these."""
        if status not in (TicketState.RESOLVED, TicketState.CLOSED):
            raise DeskError(f"{status.value} tickets are not done")
        with self.store.engine.connect() as conn:
            rows = ticket_reads.listed(
                conn,
                statuses=(status,),
                visible_to=self._seen_by(agent),
                newest_first=True,
                offset=max(shown, 0),
                limit=limit + 1,
            )
        return [self._line(row) for row in rows[:limit]], len(rows) > limit

    def search(self, agent: Agent, words: str, limit: int = 50) -> list[TicketLine]:
        """Tickets the agent may see whose customer id, or whose conversation's messages, hold
        `words` (matched as stored: masked, so a phone or ID number is looked for masked
        too, `privacy.search_forms`), the last touched first."""
        words = " ".join(words.split())
        if not words:
            return []
        with self.store.engine.connect() as conn:
            rows = ticket_reads.listed(
                conn,
                statuses=tuple(TicketState),
                visible_to=self._seen_by(agent),
                matching=search_forms(words),
                newest_first=True,
                limit=limit,
            )
        return [self._line(row) for row in rows]

    def ticket_number(self, agent: Agent, text: str) -> int | None:
        """`#123` or `123`: that ticket's id when it exists and the agent may see it."""
        digits = text.strip().removeprefix("#").strip()
        if not digits.isascii() or not digits.isdigit() or len(digits) > 18:
            return None
        with self.store.engine.connect() as conn:
            try:
                return self._visible(conn, agent, int(digits)).id
            except DeskError:
                return None

    def ticket(self, agent: Agent, ticket_id: int) -> TicketView:
        """One ticket with its transcript, the bot's reasons and its history; Forbidden for
        another queue's ticket unless the agent is a supervisor."""
        now = self.clock.now()
        with self.store.engine.connect() as conn:
            ticket = self._visible(conn, agent, ticket_id)
            channel, user_id, language, unreachable = ticket_reads.customer_of(
                conn, ticket.conversation_id
            )
            lines = ticket_reads.transcript(conn, channel, user_id)
            events = ticket_reads.history(conn, ticket.id)
            others = ticket_reads.listed(
                conn,
                statuses=tuple(TicketState),
                visible_to=self._seen_by(agent),
                customer=(channel, user_id),
                newest_first=True,
                limit=21,
            )
            talks = ticket_reads.conversations_of(conn, channel, user_id)
            owner = ticket_store.agent_name(conn, ticket.agent_id)
            colleagues = [
                (a.login, a.name)
                for a in agent_store.everyone(conn)
                if a.active and a.id != agent.id
            ]
        return TicketView(
            ticket=ticket,
            channel=channel,
            customer=_customer(channel, user_id),
            language=language,
            unreachable_reason=unreachable,
            transcript=[_transcript_line(line, self._picked(line.decision)) for line in lines],
            events=[TicketEvent(e.at, e.kind, e.agent_name, e.data) for e in events],
            agent_name=owner,
            mine=ticket.agent_id == agent.id and ticket.status in TicketState.with_agent(),
            queues=[q for q in self.config.queues if q != ticket.queue],
            agents=colleagues,
            csat=ticket.csat,
            nps=ticket.nps,
            breached=ticket.breached(now),
            earlier_tickets=[self._line(row) for row in others if row.ticket.id != ticket.id][:20],
            conversations=[
                ConversationLine(
                    c.opened_at,
                    c.last_at,
                    c.messages_in,
                    c.tickets,
                    _short(c.chat_id, 40),
                    c.id == ticket.conversation_id,
                )
                for c in talks
            ],
        )

    def assist(self, agent: Agent, ticket_id: int, limit: int = 3) -> list[Suggestion]:
        """The top FAQ entries for the customer's last questions (their last few messages, so
        that "转人工" after the question still finds it), answers in their language."""
        with self.store.engine.connect() as conn:
            ticket = self._visible(conn, agent, ticket_id)
            channel, user_id, language, _ = ticket_reads.customer_of(conn, ticket.conversation_id)
            texts = ticket_reads.recent_questions(conn, channel, user_id)
        if not texts:
            return []
        knowledge = self.knowledge()
        schedule = knowledge.schedules[self.config.front_schedule]
        now = self.clock.now()
        best: dict[str, Suggestion] = {}
        for reading in knowledge.read(texts, k=limit):
            for match in reading.matches:
                entry = match.entry
                known = best.get(entry.id)
                if known is None or match.score > known.score:
                    best[entry.id] = Suggestion(
                        entry.id,
                        question_in(entry, language),
                        schedule.fill(pick(entry.answer, language), language, now),
                        round(match.score, 3),
                    )
        floor = knowledge.faq.thresholds.suggest * 0.8
        ranked = sorted(best.values(), key=lambda s: -s.score)
        return [s for s in ranked if s.score >= floor][:limit]

    def canned(self, language: str) -> list[tuple[str, str]]:
        """Canned replies (title, text) from config `[[console.canned]]`, in this language."""
        return [(c.title, pick(c.text, language)) for c in self.config.console.canned]

    def check_reply(self, text: str) -> list[ReplyWarning]:
        """Forbidden phrases (忌语) and password requests in a draft reply."""
        warnings = [
            ReplyWarning("forbidden", phrase)
            for phrase in forbidden_in(text, self.config.texts.forbidden_phrases)
        ]
        seen: set[str] = set()
        for found in _PASSWORD.finditer(text):
            word = found.group(0)
            if word.lower() not in seen:
                seen.add(word.lower())
                warnings.append(ReplyWarning("password", word))
        return warnings

    def supervisor(self, agent: Agent) -> SupervisorView:
        """Queue depth, SLA breaches, agents online, today's volumes (supervisors and admins)."""
        if not agent.role.may(Role.SUPERVISOR):
            raise Forbidden("the supervisor view is for supervisors and admins")
        now = self.clock.now()
        since = self._today_start(now)
        online = timedelta(minutes=self.config.console.online_minutes)
        queues = self.overview(agent)
        with self.store.engine.connect() as conn:
            open_rows = ticket_reads.listed(conn, limit=500)
            breaches = [row for row in open_rows if row.ticket.breached(now)]
            loads = ticket_reads.agent_loads(conn, since)
            people = agent_store.everyone(conn)
            volumes = ticket_reads.counts_since(conn, since)
        return SupervisorView(
            queues=queues,
            breaches=[self._line(row) for row in breaches],
            agents=[
                AgentLoad(
                    a.login,
                    a.name,
                    a.role.value,
                    a.seen_at is not None and now - a.seen_at <= online,
                    *loads.get(a.id, (0, 0)),
                )
                for a in people
                if a.active
            ],
            created_today=volumes["created"],
            resolved_today=volumes["resolved"],
            messages_today=volumes["messages"],
            csat_answers_today=volumes["csat_answers"],
            csat_mean_today=volumes["csat_mean"],
        )

    def version(self) -> str:
        """Changes whenever any ticket changes: the console's live view polls it (SQLite) or
        waits for NOTIFY desk (PostgreSQL) and refreshes when it moves."""
        with self.store.engine.connect() as conn:
            return ticket_store.version(conn)

    # --- acting ---------------------------------------------------------------------------------

    def seen(self, agent: Agent) -> None:
        """The agent's console is open (for "agents online")."""
        with self.store.transaction() as tx:
            agent_store.seen(tx, agent.id, self.clock.now())

    def away(self, agent_id: int) -> None:
        """The agent logged out: not online any more (a handoff hears that nobody is)."""
        with self.store.transaction() as tx:
            agent_store.away(tx, agent_id)

    def claim_next(self, agent: Agent) -> Ticket | None:
        """The first queued ticket of the agent's queues becomes theirs (exactly once)."""
        with self.store.transaction() as tx:
            return ticket_store.claim_next(tx, agent.id, self.queues_of(agent), self.clock.now())

    def claim(self, agent: Agent, ticket_id: int) -> Ticket:
        """Take a particular queued ticket, or one held until its queue opens: an agent who is
        there before opening (or a demo at night) answers it then (Conflict when someone was
        faster)."""
        with self._conversation_locked(ticket_id) as tx:
            ticket = self._visible(tx, agent, ticket_id, lock=True)
            if ticket.status not in (TicketState.QUEUED, TicketState.QUEUE_CLOSED):
                raise Conflict(f"ticket {ticket_id} is {ticket.status.value}, not queued")
            claimed = ticket_store.claim(tx, ticket_id, agent.id, self.clock.now())
        if claimed is None:
            raise Conflict(f"ticket {ticket_id} was taken meanwhile")
        return claimed

    def reply(
        self, agent: Agent, ticket_id: int, text: str, *, confirmed: bool = False
    ) -> ReplyOutcome:
        """Send the agent's words to the customer through the conversation's channel, in the
        ticket's conversation's chat (the customer's other chats are other conversations). With
        warnings and not `confirmed`, nothing is sent. The first reply stops the first-response
        clock; the ticket then waits on the customer."""
        text = text.strip()
        if not text:
            raise DeskError("the reply is empty")
        if len(text) > MAX_REPLY:
            raise DeskError(f"the reply is longer than {MAX_REPLY} characters")
        warnings = self.check_reply(text)
        if warnings and not confirmed:
            return ReplyOutcome(False, warnings)
        now = self.clock.now()
        with self._conversation_locked(ticket_id) as tx:
            ticket = self._owned(tx, agent, ticket_id)
            conversation = conversations.get(tx, ticket.conversation_id)
            [outbox_id] = outbox.add_many(
                tx,
                [
                    outbox.Outgoing(
                        conversation, None, text, now, agent_id=agent.id, stored_text=mask(text)
                    )
                ],
            )
            first = ticket.first_response_at is None
            ticket_store.change(
                tx,
                ticket.id,
                now,
                status=TicketState.AWAITING_CUSTOMER,
                first_response_at=ticket.first_response_at or now,
            )
            ticket_store.event(tx, ticket.id, "replied", now, agent.id, first=first)
        self._written()
        if warnings:
            log.warning(
                "agent %s sent a reply despite %s on ticket %s",
                agent.login,
                ", ".join(f"{w.kind} {w.phrase!r}" for w in warnings),
                ticket_id,
            )
        return ReplyOutcome(True, warnings, outbox_id)

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
        if (queue is None) == (to_login is None):
            raise DeskError("transfer to a queue or to an agent")
        note = mask(note.strip())[:MAX_NOTE]
        now = self.clock.now()
        with self._conversation_locked(ticket_id) as tx:
            ticket = self._visible(tx, agent, ticket_id, lock=True)
            if not ticket.is_open:
                raise Conflict(f"ticket {ticket_id} is {ticket.status.value}")
            if ticket.agent_id not in (None, agent.id) and not agent.role.may(Role.SUPERVISOR):
                raise Forbidden("only its agent or a supervisor may transfer this ticket")
            if queue is not None:
                if queue not in self.config.queues:
                    raise DeskError(f"no queue {queue!r}")
                # `available_at` stays: the customer has waited for people since then, and the
                # first-response clock (and its measure) runs from there, not from the transfer
                moved = ticket_store.change(
                    tx, ticket.id, now, queue=queue, status=TicketState.QUEUED, agent_id=None
                )
                target = {"queue": queue}
            else:
                assert to_login is not None
                found = agent_store.by_login(tx, to_login)
                if found is None or not found[0].active:
                    raise DeskError(f"no active agent {to_login!r}")
                colleague = found[0]
                moved = ticket_store.change(
                    tx,
                    ticket.id,
                    now,
                    status=TicketState.ASSIGNED,
                    agent_id=colleague.id,
                    assigned_at=ticket.assigned_at or now,
                )
                target = {"agent": colleague.name}
            ticket_store.event(
                tx,
                ticket.id,
                "transferred",
                now,
                agent.id,
                **target,
                from_queue=ticket.queue,
                note=note,
            )
        return moved

    def resolve(self, agent: Agent, ticket_id: int) -> Ticket:
        """Done: the bot answers again, the customer hears the closing words and is asked for
        satisfaction — once per ticket, however often it reopens."""
        now = self.clock.now()
        texts = self.config.texts
        with self._conversation_locked(ticket_id) as tx:
            ticket = self._visible(tx, agent, ticket_id, lock=True)
            if not ticket.is_open:
                raise Conflict(f"ticket {ticket_id} is already {ticket.status.value}")
            if ticket.agent_id != agent.id and not agent.role.may(Role.SUPERVISOR):
                raise Forbidden("only its agent or a supervisor may resolve this ticket")
            conversation = conversations.get(tx, ticket.conversation_id)
            ask = self.config.survey.csat and ticket.csat_asked_at is None
            done = ticket_store.change(
                tx,
                ticket.id,
                now,
                status=TicketState.RESOLVED,
                resolved_at=now,
                resolved_by=agent.id,
                csat_asked_at=now if ask else ticket.csat_asked_at,
            )
            ticket_store.event(tx, ticket.id, "resolved", now, agent.id)
            lang = conversation.language
            lines = [outbox.Outgoing(conversation, None, pick(texts.closing, lang), now)]
            if ask:
                lines.append(
                    outbox.Outgoing(
                        conversation,
                        None,
                        pick(texts.csat_question, lang),
                        now,
                        choices=[str(n) for n in range(1, 6)],
                    )
                )
            conversations.hand_back(
                tx, conversation.id, ticket.id if ask else None, "csat" if ask else None
            )
            outbox.add_many(tx, lines)
        self._written()
        return done

    # --- helpers --------------------------------------------------------------------------------

    @contextmanager
    def _conversation_locked(self, ticket_id: int) -> Iterator[Connection]:
        """A transaction holding the lock on the ticket's conversation (its customer in its
        chat), the one the pipeline holds while it decides their messages there: an agent's
        reply, transfer or resolve and the bot's handling of a message the customer sends at
        that moment happen one after the other, so neither overwrites the other's ticket status
        or conversation state."""
        with self.store.engine.connect() as conn:
            ticket = ticket_store.get(conn, ticket_id)
            if ticket is None:
                raise NotFound(f"no ticket {ticket_id}")
            key = conversations.get(conn, ticket.conversation_id).key
        with self.store.conversation_lock(key) as tx:
            yield tx

    def _visible(
        self, conn: Connection, agent: Agent, ticket_id: int, *, lock: bool = False
    ) -> Ticket:
        """The ticket, when this agent may see it; `lock`: held until the transaction ends, so
        two workers acting on it at once act one after the other."""
        ticket = ticket_store.get(conn, ticket_id, lock=lock)
        if ticket is None:
            raise NotFound(f"no ticket {ticket_id}")
        if ticket.agent_id != agent.id and not agent.works(ticket.queue):
            raise Forbidden(f"ticket {ticket_id} is in queue {ticket.queue!r}, not one of yours")
        return ticket

    def _seen_by(self, agent: Agent) -> tuple[tuple[str, ...], int] | None:
        """What a list may show this agent, as `_visible` decides for one ticket: their queues'
        tickets and their own; None: every ticket (supervisors, agents of every queue)."""
        if agent.role.may(Role.SUPERVISOR) or not agent.queues:
            return None
        return tuple(agent.queues), agent.id

    def _owned(self, conn: Connection, agent: Agent, ticket_id: int) -> Ticket:
        ticket = ticket_store.get(conn, ticket_id, lock=True)
        if ticket is None:
            raise NotFound(f"no ticket {ticket_id}")
        if ticket.agent_id != agent.id:
            raise Forbidden(f"ticket {ticket_id} is not yours: claim it first")
        if ticket.status not in TicketState.with_agent():
            raise Conflict(f"ticket {ticket_id} is {ticket.status.value}")
        return ticket

    def _line(self, row: ticket_reads.ListedTicket) -> TicketLine:
        t = row.ticket
        return TicketLine(
            id=t.id,
            queue=t.queue,
            priority=t.priority,
            category=t.category,
            status=t.status.value,
            channel=row.channel,
            customer=_customer(row.channel, row.user_id),
            created_at=t.created_at,
            available_at=t.available_at,
            first_response_due=t.first_response_due,
            transfer_due=t.transfer_due,
            breached=t.breached(self.clock.now()),
            agent_name=row.agent_name,
            first_response_at=t.first_response_at,
            last_text=_short(row.last_text, 80),
            csat=t.csat,
        )

    def _picked(self, record: dict[str, Any] | None) -> str | None:
        """The question a customer's "1" picked, from the bot's decision on it: the entry's
        question in the reply's language, as the suggestion offered it (the entry as it reads
        now; None once it is gone, and the number shows alone)."""
        if not record or not record.get("picked") or not record.get("faq_id"):
            return None
        entry = self.knowledge().faq_entry(str(record["faq_id"]))
        return question_in(entry, str(record.get("language") or "zh")) if entry else None

    def _today_start(self, now: datetime) -> datetime:
        """Midnight today where the default queue works."""
        schedule_name = self.config.front_schedule
        zone = self.knowledge().schedules[schedule_name].zone
        local = now.astimezone(zone)
        return datetime.combine(local.date(), time(0), tzinfo=zone)

    def _written(self) -> None:
        if self.on_written is not None:
            try:
                self.on_written()
            except Exception:  # waking is a courtesy: the dispatcher polls anyway
                log.exception("waking the dispatcher failed")


def _customer(channel: str, user_id: str) -> str:
    return f"{channel}:{_short(user_id, 16)}"


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _transcript_line(line: ticket_reads.Line, picked: str | None) -> TranscriptLine:
    author = "customer" if line.direction == "in" else "agent" if line.agent_name else "bot"
    action = decision = None
    if line.decision:
        record = line.decision
        action = str(record.get("action"))
        decision = "; ".join(str(r) for r in record.get("reasons", [])) or None
    return TranscriptLine(line.at, author, line.agent_name, line.text, action, decision, picked)
