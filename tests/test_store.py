"""Storage on real SQLite and real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from bot.store.database import Store, TicketDraft
from bot.store.migrate import current_revision, head_revision, is_current
from tests.conftest import at

NOW = at("2026-11-24 10:00")


def test_migrate_is_idempotent(store: Store) -> None:
    assert store.migrate() == store.migrate() == head_revision()


def test_a_delivery_is_accepted_once(store: Store) -> None:
    first = store.accept("wechat", "msg-1", "u1", "text", "hello", NOW)
    assert first is not None
    assert store.accept("wechat", "msg-1", "u1", "text", "hello", NOW) is None
    assert (
        store.accept("telegram", "msg-1", "u1", "text", "hello", NOW) is not None
    )  # other channel


def test_an_unhandled_delivery_is_retried_once_stale(store: Store) -> None:
    """A worker that died mid-message must not lose it: the redelivery is processed again."""
    first = store.accept("wechat", "msg-2", "u1", "text", "hi", NOW)
    assert store.accept("wechat", "msg-2", "u1", "text", "hi", NOW + timedelta(seconds=5)) is None
    retried = store.accept("wechat", "msg-2", "u1", "text", "hi", NOW + timedelta(minutes=5))
    assert retried == first


def test_conversation_times_out_unless_a_human_owns_it(store: Store) -> None:
    idle = timedelta(minutes=30)
    conv = store.conversation_for("wechat", "u1", "u1", NOW, idle)
    assert conv.is_new
    same = store.conversation_for("wechat", "u1", "u1", NOW + timedelta(minutes=10), idle)
    assert same.id == conv.id and not same.is_new
    later = store.conversation_for("wechat", "u1", "u1", NOW + timedelta(hours=2), idle)
    assert later.id != conv.id and later.is_new


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


def test_complete_writes_decision_ticket_and_outbox_together(store: Store) -> None:
    message_id = store.accept("wechat", "m1", "u1", "text", "转人工", NOW)
    assert message_id is not None
    conv = store.conversation_for("wechat", "u1", "u1", NOW, timedelta(minutes=30))
    store.attach(message_id, conv, NOW)
    record = {"action": "handoff", "intent": "human_agent", "faq_id": None, "is_open": True}
    ids = store.complete(message_id, conv, record, ["好的", "请稍候"], NOW, _draft("normal", 2))
    assert len(ids) == 2 and record["ticket_id"]
    assert [p.text for p in store.pending_outbound()] == ["好的", "请稍候"]
    assert store.conversation(conv.id).state == "handoff"
    assert store.transcript(conv.id) == [("in", "转人工"), ("out", "好的"), ("out", "请稍候")]
    assert store.decisions_for(conv.id)[0]["ticket_id"] == record["ticket_id"]
    store.mark_sent(ids[0], NOW)
    assert [p.id for p in store.pending_outbound()] == [ids[1]]


def test_tickets_come_urgent_first_then_oldest(store: Store) -> None:
    made = []
    for n, (priority, rank) in enumerate(
        [("normal", 2), ("urgent", 0), ("high", 1), ("urgent", 0)]
    ):
        when = NOW + timedelta(minutes=n)
        message_id = store.accept("wechat", f"t{n}", f"u{n}", "text", "x", when)
        assert message_id is not None
        conv = store.conversation_for("wechat", f"u{n}", f"u{n}", when, timedelta(minutes=30))
        record = {"action": "handoff", "intent": None, "faq_id": None, "is_open": True}
        store.complete(message_id, conv, record, [], when, _draft(priority, rank))
        made.append(record["ticket_id"])
    assert [t.id for t in store.tickets("general")] == [made[1], made[3], made[2], made[0]]
    ticket = store.tickets("general")[0]
    assert ticket.created_at == NOW + timedelta(minutes=1)  # stored in UTC, read back aware
    assert ticket.first_response_due == ticket.created_at + timedelta(seconds=120)


def test_a_handoff_is_never_undone_by_a_concurrent_answer(store: Store) -> None:
    """Two workers, two messages of one customer: one hands off, the other answers from the FAQ."""
    idle = timedelta(minutes=30)
    first = store.accept("wechat", "a", "u1", "text", "转人工", NOW)
    second = store.accept("wechat", "b", "u1", "text", "运费多少", NOW)
    assert first is not None and second is not None
    handing_off = store.conversation_for("wechat", "u1", "u1", NOW, idle)
    answering = store.conversation_for("wechat", "u1", "u1", NOW, idle)  # read before the handoff
    record = {"action": "handoff", "intent": "human_agent", "faq_id": None, "is_open": True}
    store.complete(first, handing_off, record, ["好的"], NOW, _draft("normal", 2))
    answer = {"action": "answer", "intent": "faq", "faq_id": "shipping-fee", "is_open": True}
    store.complete(second, answering, answer, ["满 99 包邮"], NOW)
    assert store.conversation(handing_off.id).state == "handoff"


def test_a_fresh_database_is_created_at_the_latest_version(store: Store) -> None:
    import sqlalchemy as sa

    assert current_revision(store.engine) == head_revision() and is_current(store.engine)
    assert not sa.inspect(store.engine).has_table("schema_version")
