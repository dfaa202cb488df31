""" "Claim next" with many agents on many workers: every ticket claimed exactly once, none
lost, urgent first (issue 11's claim rule, at the store; the console will call it)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bot.domain.agent import Role
from bot.domain.ticket import Ticket
from bot.store import agents, tickets
from bot.store.database import Store
from bot.store.schema import conversations
from bot.store.schema import tickets as tickets_table

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
TICKETS = 1000
AGENTS = 20


def _fill(store: Store) -> list[int]:
    """TICKETS queued tickets (every tenth urgent) on their own conversations, and AGENTS
    agents; returns the agents' ids."""
    with store.transaction() as tx:
        tx.execute(
            conversations.insert(),
            [
                dict(
                    channel="webhook",
                    user_id=f"c{n}",
                    chat_id=f"c{n}",
                    state="handoff",
                    opened_at=NOW,
                    last_at=NOW,
                )
                for n in range(TICKETS)
            ],
        )
        ids = tx.execute(sa.select(conversations.c.id).order_by(conversations.c.id)).scalars()
        tx.execute(
            tickets_table.insert(),
            [
                dict(
                    conversation_id=conversation,
                    queue="general" if n % 2 else "after_sales",
                    priority="urgent" if n % 10 == 0 else "normal",
                    priority_rank=0 if n % 10 == 0 else 2,
                    category="consult",
                    status="queued",
                    created_at=NOW + timedelta(seconds=n),
                    available_at=NOW,
                    first_response_due=NOW + timedelta(minutes=2),
                    transfer_due=NOW + timedelta(minutes=30),
                    reasons={},
                )
                for n, conversation in enumerate(ids)
            ],
        )
        return [
            agents.add(tx, f"agent{n}", f"Agent {n}", Role.AGENT, "$argon2id$not-used", NOW).id
            for n in range(AGENTS)
        ]


def _claim_all(workers: list[Store], agent_ids: list[int]) -> list[tuple[int, Ticket]]:
    """Each agent claims until nothing is left, on its worker (agents spread over workers)."""
    claimed: list[tuple[int, Ticket]] = []
    lock = threading.Lock()
    start = threading.Barrier(len(agent_ids))

    def agent(n: int, agent_id: int) -> None:
        store = workers[n % len(workers)]
        start.wait()
        while True:
            with store.transaction() as tx:
                ticket = tickets.claim_next(tx, agent_id, ["general", "after_sales"], NOW)
            if ticket is None:
                return
            with lock:
                claimed.append((agent_id, ticket))

    threads = [threading.Thread(target=agent, args=(n, a)) for n, a in enumerate(agent_ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return claimed


def _check(store: Store, claimed: list[tuple[int, Ticket]]) -> None:
    ids = [ticket.id for _, ticket in claimed]
    assert len(ids) == TICKETS and len(set(ids)) == TICKETS  # each once, none lost
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(tickets_table.c.status, tickets_table.c.agent_id)).all()
    assert Counter(r.status for r in rows) == {"assigned": TICKETS}
    owners = {ticket.id: agent_id for agent_id, ticket in claimed}
    with store.engine.connect() as conn:
        stored = dict(conn.execute(sa.select(tickets_table.c.id, tickets_table.c.agent_id)).all())
    assert stored == owners  # the agent told "yours" is the one recorded
    assert len({agent_id for agent_id, _ in claimed}) > 1  # the work was shared


def test_twenty_agents_on_four_postgresql_workers_claim_each_ticket_once(
    postgres_url: str,
) -> None:
    setup = Store(postgres_url)
    setup.migrate()
    agent_ids = _fill(setup)
    workers = [Store(postgres_url, pool_size=5) for _ in range(4)]
    claimed = _claim_all(workers, agent_ids)
    _check(setup, claimed)
    for store in [setup, *workers]:
        store.close()


def test_twenty_agents_on_one_sqlite_worker_claim_each_ticket_once(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/claims.sqlite3")
    store.migrate()
    agent_ids = _fill(store)
    claimed = _claim_all([store], agent_ids)
    _check(store, claimed)
    store.close()


def test_urgent_first_then_oldest(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/order.sqlite3")
    store.migrate()
    [agent_id, *_] = _fill(store)
    order = []
    with store.transaction() as tx:
        for _ in range(TICKETS // 10 + 2):
            ticket = tickets.claim_next(tx, agent_id, ["general", "after_sales"], NOW)
            assert ticket is not None
            order.append((ticket.priority, ticket.created_at))
    urgent = [created for priority, created in order if priority == "urgent"]
    assert len(urgent) == TICKETS // 10 and urgent == sorted(urgent)
    assert [p for p, _ in order[: len(urgent)]] == ["urgent"] * len(urgent)
    assert order[len(urgent)][0] == "normal"
    with store.transaction() as tx:  # a queue the agent does not serve yields nothing
        assert tickets.claim_next(tx, agent_id, ["complaints"], NOW) is None
    store.close()
