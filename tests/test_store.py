"""Storage on real SQLite and real PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.domain.conversation import ConversationState
from bot.domain.messages import Action, Decision
from bot.domain.ticket import TicketDraft
from bot.store import deliveries, outbox, rate_limits
from bot.store.batch import Arrival, DecisionBatch, Entry
from bot.store.database import Store
from bot.store.migrate import current_revision, head_revision
from tests.support.shop import at

NOW = at("2026-11-24 10:00")
IDLE = timedelta(minutes=30)


def test_migrate_is_idempotent(store: Store) -> None:
    assert store.migrate() == store.migrate() == head_revision()


def test_a_fresh_database_is_created_at_the_latest_version(store: Store) -> None:
    assert current_revision(store.engine) == head_revision() and store.schema_current()
    assert not sa.inspect(store.engine).has_table("schema_version")


def test_a_delivery_is_accepted_once(store: Store) -> None:
    with store.transaction() as tx:
        assert deliveries.accept(tx, "wechat", "msg-1", "u1", "text", "hello", NOW) is not None
        assert deliveries.accept(tx, "wechat", "msg-1", "u1", "text", "hello", NOW) is None
        assert deliveries.accept(tx, "telegram", "msg-1", "u1", "text", "hello", NOW) is not None


def test_an_unhandled_delivery_is_retried_once_stale(store: Store) -> None:
    """A worker that died mid-message must not lose it: the redelivery is processed again."""
    with store.transaction() as tx:
        first = deliveries.accept(tx, "wechat", "msg-2", "u1", "text", "hi", NOW)
        later = NOW + timedelta(seconds=5)
        assert deliveries.accept(tx, "wechat", "msg-2", "u1", "text", "hi", later) is None
        retried = deliveries.accept(
            tx, "wechat", "msg-2", "u1", "text", "hi", NOW + timedelta(minutes=5)
        )
    assert retried == first


def _decide(
    store: Store,
    user: str,
    when: datetime,
    ticket: TicketDraft | None = None,
    replies: tuple[str, ...] = (),
    external: str | None = None,
) -> Entry:
    """One message of `user` through a DecisionBatch, the way the pipeline records it."""
    with store.transaction() as tx:
        message = deliveries.accept(
            tx, "wechat", external or f"{user}-{when}", user, "text", "x", when
        )
        assert message is not None
        batch = DecisionBatch(tx, IDLE, timedelta(seconds=30))
        batch.load([Arrival(message, "wechat", user, user, when)])
        conversation = batch.conversation(("wechat", user, user))
        conversation.last_at = when
        action = Action.HANDOFF if ticket else Action.REPLY
        entry = Entry(
            message,
            conversation,
            Decision(action),
            ticket,
            [(r, (), None) for r in replies],
            when,
            None,
            None,
        )
        batch.record(entry)
        batch.flush()
    return entry


def test_conversation_times_out_unless_a_human_owns_it(store: Store) -> None:
    first = _decide(store, "u1", NOW).conversation
    assert first.is_new and first.state == ConversationState.BOT
    same = _decide(store, "u1", NOW + timedelta(minutes=10)).conversation
    assert same.id == first.id and not same.is_new
    later = _decide(store, "u1", NOW + timedelta(hours=2)).conversation
    assert later.id != first.id and later.is_new
    assert store.conversation(first.id).state == ConversationState.CLOSED
    waiting = _decide(store, "u2", NOW, _draft("normal", 2)).conversation
    assert store.conversation(waiting.id).state == ConversationState.HANDOFF
    days_later = _decide(store, "u2", NOW + timedelta(days=3)).conversation
    assert days_later.id == waiting.id  # a human owns it: it never times out


def _draft(priority: str, rank: int) -> TicketDraft:
    return TicketDraft(
        "general",
        priority,
        rank,
        "consult",
        NOW,
        timedelta(seconds=120),
        timedelta(minutes=30),
        {"reasons": ["test"]},
    )


def test_tickets_come_urgent_first_then_oldest(store: Store) -> None:
    made = []
    for n, (priority, rank) in enumerate(
        [("normal", 2), ("urgent", 0), ("high", 1), ("urgent", 0)]
    ):
        entry = _decide(store, f"u{n}", NOW + timedelta(minutes=n), _draft(priority, rank))
        made.append(entry.decision.ticket_id)
    assert [t.id for t in store.tickets("general")] == [made[1], made[3], made[2], made[0]]
    ticket = store.tickets("general")[0]
    assert ticket.created_at == NOW + timedelta(minutes=1)  # stored in UTC, read back aware
    assert ticket.first_response_due == ticket.created_at + timedelta(seconds=120)


def test_decision_ticket_and_replies_are_written_together(store: Store) -> None:
    entry = _decide(store, "u1", NOW, _draft("normal", 2), ("好的", "请稍候"), external="m1")
    conversation = entry.conversation
    assert len(entry.outbox_ids) == 2 and entry.decision.ticket_id
    assert [p.text for p in store.unsent_outbound()] == ["好的", "请稍候"]
    assert store.transcript(conversation.id) == [("in", "x"), ("out", "好的"), ("out", "请稍候")]
    assert store.decisions_for(conversation.id)[0]["ticket_id"] == entry.decision.ticket_id
    again = _decide(store, "u1", NOW, _draft("normal", 2), ("在吗",), external="m2")
    assert again.decision.ticket_id == entry.decision.ticket_id  # one open ticket


def test_the_outbox_keeps_order_within_a_conversation(store: Store) -> None:
    a = _decide(store, "a", NOW).conversation
    b = _decide(store, "b", NOW).conversation
    with store.transaction() as tx:
        a1 = outbox.add(tx, a, None, "a1", NOW)
        b1 = outbox.add(tx, b, None, "b1", NOW)
        a2 = outbox.add(tx, a, None, "a2", NOW, choices=["x", "y"])
    lease = timedelta(seconds=30)
    with store.transaction() as tx:
        claimed = outbox.claim(tx, NOW, "w1", lease, ["wechat"])
    assert [r.id for r in claimed] == [a1, b1, a2] and claimed[2].choices == ("x", "y")
    with store.transaction() as tx:  # all leased: nothing for a second worker
        assert outbox.claim(tx, NOW, "w2", lease, ["wechat"]) == []
        outbox.retry_later(tx, a1, NOW + timedelta(seconds=10), "down")
        outbox.release(tx, [a2])
        outbox.mark_sent(tx, [b1], NOW)
    with store.transaction() as tx:  # a2 waits behind a1, which is not due yet
        assert outbox.claim(tx, NOW, "w2", lease, ["wechat"]) == []
    with store.transaction() as tx:
        again = outbox.claim(tx, NOW + timedelta(seconds=11), "w2", lease, ["wechat"])
    assert [r.id for r in again] == [a1, a2]


def test_one_decision_per_message(store: Store) -> None:
    entry = _decide(store, "u1", NOW, external="d1")
    with pytest.raises(sa.exc.IntegrityError), store.transaction() as tx:
        batch = DecisionBatch(tx, IDLE, timedelta(seconds=30))
        batch.load([Arrival(entry.message_id, "wechat", "u1", "u1", NOW)])
        batch.record(entry)
        batch.flush()


def test_rates_counted_together_count_as_one_after_another(store: Store) -> None:
    """A batch of requests counts each in turn, a key asked twice getting n and n + 1, and a
    later single count carries on from the batch's total."""
    with store.transaction() as tx:
        assert rate_limits.count_many(tx, []) == []
        assert rate_limits.count(tx, "ip:a", 60) == 1
        counted = rate_limits.count_many(
            tx, [("ip:a", 60), ("ip:b", 60), ("ip:a", 60), ("ip:a", 120)]
        )
        assert counted == [2, 1, 3, 1]
        assert rate_limits.count(tx, "ip:a", 60) == 4
