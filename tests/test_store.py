"""Storage on real SQLite and real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from bot.domain.conversation import ConversationState
from bot.domain.ticket import TicketDraft
from bot.store import conversations, decisions, inbox, outbox, tickets
from bot.store.database import Store
from tests.conftest import at

NOW = at("2026-11-24 10:00")
IDLE = timedelta(minutes=30)


def test_migrate_is_idempotent(store: Store) -> None:
    assert store.migrate() == store.migrate()


def test_a_delivery_is_accepted_once(store: Store) -> None:
    with store.transaction() as tx:
        assert inbox.accept(tx, "wechat", "msg-1", "u1", "text", "hello", NOW) is not None
        assert inbox.accept(tx, "wechat", "msg-1", "u1", "text", "hello", NOW) is None
        assert inbox.accept(tx, "telegram", "msg-1", "u1", "text", "hello", NOW) is not None


def test_an_unhandled_delivery_is_retried_once_stale(store: Store) -> None:
    """A worker that died mid-message must not lose it: the redelivery is processed again."""
    with store.transaction() as tx:
        first = inbox.accept(tx, "wechat", "msg-2", "u1", "text", "hi", NOW)
        later = NOW + timedelta(seconds=5)
        assert inbox.accept(tx, "wechat", "msg-2", "u1", "text", "hi", later) is None
        retried = inbox.accept(tx, "wechat", "msg-2", "u1", "text", "hi", NOW + timedelta(minutes=5))
    assert retried == first


def test_conversation_times_out_unless_a_human_owns_it(store: Store) -> None:
    with store.transaction() as tx:
        conv = conversations.current(tx, "wechat", "u1", "u1", NOW, IDLE)
        assert conv.is_new and conv.state == ConversationState.BOT
        same = conversations.current(tx, "wechat", "u1", "u1", NOW + timedelta(minutes=10), IDLE)
        assert same.id == conv.id and not same.is_new
        later = conversations.current(tx, "wechat", "u1", "u1", NOW + timedelta(hours=2), IDLE)
        assert later.id != conv.id and later.is_new
        assert conversations.get(tx, conv.id).state == ConversationState.CLOSED


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
        when = NOW + timedelta(minutes=n)
        with store.transaction() as tx:
            conv = conversations.current(tx, "wechat", f"u{n}", f"u{n}", when, IDLE)
            made.append(tickets.create(tx, conv.id, _draft(priority, rank), when))
    assert [t.id for t in store.tickets("general")] == [made[1], made[3], made[2], made[0]]
    ticket = store.tickets("general")[0]
    assert ticket.created_at == NOW + timedelta(minutes=1)  # stored in UTC, read back aware
    assert ticket.first_response_due == ticket.created_at + timedelta(seconds=120)


def test_the_outbox_keeps_order_within_a_conversation(store: Store) -> None:
    with store.transaction() as tx:
        a = conversations.current(tx, "wechat", "a", "a", NOW, IDLE)
        b = conversations.current(tx, "wechat", "b", "b", NOW, IDLE)
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
    import pytest
    import sqlalchemy as sa

    with store.transaction() as tx:
        message = inbox.accept(tx, "wechat", "d1", "u1", "text", "hi", NOW)
        conv = conversations.current(tx, "wechat", "u1", "u1", NOW, IDLE)
        assert message is not None
        record = {"action": "reply", "intent": "greeting", "faq_id": None, "is_open": True}
        decisions.record(tx, message, conv.id, record, NOW)
    with pytest.raises(sa.exc.IntegrityError), store.transaction() as tx:
        decisions.record(tx, message, conv.id, record, NOW)
