"""Timed work driven by an injected clock: releasing tickets at opening, reloading content,
delivering and retrying replies."""

from __future__ import annotations

import gc
import logging
import os
import weakref
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.assembly import load_knowledge
from bot.domain.agent import Role
from bot.domain.delivery import PermanentFailure, RetryAfter
from bot.domain.messages import Action
from bot.domain.ticket import Ticket
from bot.jobs import scheduler
from bot.jobs.heap import freeze_startup, give_back, refreeze
from bot.jobs.leader import Leadership
from bot.jobs.release import release_queue_closed
from bot.jobs.reload import KnowledgeReloader, ScheduleReloader
from bot.store import agents, outbox, schema
from bot.understanding.encoders import MemoEncoder
from tests.support.harness import AsyncOutbox, Harness, dispatch_once
from tests.support.shop import at


def _handoff(harness: Harness, text: str, user: str, when: str, channel: str = "telegram") -> int:
    ctx = harness.say(text, user=user, when=when, channel=channel)
    assert ctx.decision is not None and ctx.decision.action == Action.HANDOFF, ctx.decision
    assert ctx.decision.ticket_id is not None
    return ctx.decision.ticket_id


def _release(harness: Harness) -> list[Ticket]:
    pipeline = harness.pipeline
    released, notices = release_queue_closed(
        pipeline.config, pipeline.store, pipeline.knowledge.schedules, pipeline.clock.now()
    )
    pipeline.deliver_now(notices)
    return released


def test_tickets_queued_while_closed_are_released_at_opening(harness: Harness) -> None:
    normal = _handoff(harness, "转人工", "a", "2026-11-27 19:00")
    complaint = _handoff(harness, "我要投诉你们", "b", "2026-11-27 20:00")
    later = _handoff(harness, "人工客服", "c", "2026-11-28 11:00")
    store = harness.pipeline.store
    assert store.tickets(status="queued") == []

    harness.clock.set(at("2026-11-30 08:59:59"))
    assert _release(harness) == []

    harness.outbox.sent.clear()
    harness.clock.set(at("2026-11-30 09:00:00"))
    _online(harness, "olga", ("general",), at("2026-11-30 08:58"))
    released = _release(harness)
    assert [t.id for t in released] == [complaint, normal, later]  # high first, then oldest
    assert {t.status for t in store.tickets(status="queued")} == {"queued"}
    assert [(m.chat_id, m.text) for m in harness.outbox.sent] == [
        ("b", "您好，我们已开始服务，您的问题已在排队。客服上线后会尽快回复您，请稍候。"),
        ("a", "您好，人工客服已上线，正在为您处理，请稍候。"),
        ("c", "您好，人工客服已上线，正在为您处理，请稍候。"),
    ]
    assert store.unsent_outbound() == []
    assert _release(harness) == []  # released once


def _online(harness: Harness, login: str, queues: tuple[str, ...], seen: datetime) -> None:
    """An agent of these queues whose console was last heard from at `seen`."""
    store = harness.pipeline.store
    with store.transaction() as tx:
        agent = agents.add(tx, login, login.title(), Role.AGENT, "x", seen, queues)
        agents.seen(tx, agent.id, seen)


def test_at_opening_nobody_online_is_not_told_as_an_agent_on_it(harness: Harness) -> None:
    """Finding 2 of issue 20's trial: tickets released at opening told the customer "人工客服已
    上线，正在为您处理" while the queue's only agent was last seen long before (the team logs
    in a few minutes after opening). They hear that the request is queued instead."""
    _handoff(harness, "转人工", "a", "2026-11-27 19:00")
    _handoff(harness, "talk to a human", "e", "2026-11-27 19:30")
    _online(harness, "li", ("general",), at("2026-11-27 17:50"))  # yesterday, not now
    harness.outbox.sent.clear()
    harness.clock.set(at("2026-11-30 09:00"))
    assert len(_release(harness)) == 2
    assert [m.text for m in harness.outbox.sent] == [
        "您好，我们已开始服务，您的问题已在排队。客服上线后会尽快回复您，请稍候。",
        "Hello, we're open now and your request is in the queue. An agent will reply as soon as "
        "they're online.",
    ]


def test_no_message_outside_the_channels_reply_window(harness: Harness) -> None:
    _handoff(harness, "转人工", "w1", "2026-11-27 19:00", channel="wechat")  # 62 h before opening
    _handoff(harness, "talk to a human", "w2", "2026-11-29 20:00", channel="wechat")
    harness.outbox.sent.clear()
    harness.clock.set(at("2026-11-30 09:00"))
    assert len(_release(harness)) == 2
    assert [(m.chat_id, m.text) for m in harness.outbox.sent] == [
        (
            "w2",
            "Hello, we're open now and your request is in the queue. An agent will reply as "
            "soon as they're online.",
        )
    ]


def test_urgent_tickets_are_never_queue_closed(harness: Harness) -> None:
    _handoff(harness, "插座冒烟了", "u", "2026-11-28 03:00")
    assert [t.queue for t in harness.pipeline.store.tickets(status="queued")] == ["urgent"]


def test_edited_schedule_is_reloaded_and_a_broken_edit_keeps_the_old(
    harness: Harness, shop: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reload = ScheduleReloader(harness.pipeline)
    path = shop / "schedules" / "default.toml"
    tuesday_evening = at("2026-11-24 19:00")
    assert not harness.pipeline.knowledge.schedules["default"].is_open(tuesday_evening)

    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace('tue = ["09:00-18:00"]', 'tue = ["09:00-21:00"]'), encoding="utf-8"
    )
    assert reload()
    assert harness.pipeline.knowledge.schedules["default"].is_open(tuesday_evening)
    assert not reload()  # nothing changed since

    path.write_text(text.replace('tue = ["09:00-18:00"]', 'tue = ["9 to 9"]'), encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="bot.jobs"):
        assert not reload()
    assert harness.pipeline.knowledge.schedules["default"].is_open(tuesday_evening)  # old kept
    assert "default.toml:" in caplog.text and "bad time range '9 to 9'" in caplog.text


def test_scheduler_runs_every_job(harness: Harness, encoder: MemoEncoder) -> None:
    pipeline = harness.pipeline
    leadership = Leadership(pipeline.store, "me", pipeline.clock)
    jobs = scheduler.start(pipeline, leadership, lambda: load_knowledge(pipeline.config, encoder))
    try:
        found = {job.id: job for job in jobs.get_jobs()}
        assert set(found) == {
            "leadership",
            "release",
            "care",
            "weekly-report",
            "reload-schedules",
            "reload-knowledge",
        }
        assert isinstance(found["reload-knowledge"].func, KnowledgeReloader)
        assert found["release"].trigger.interval.total_seconds() == scheduler.RELEASE_EVERY_S
        assert leadership.is_leader  # the only worker leads
    finally:
        jobs.shutdown(wait=False)
        leadership.resign()


def test_only_the_leader_releases(harness: Harness) -> None:
    pipeline = harness.pipeline
    _handoff(harness, "转人工", "a", "2026-11-27 19:00")
    harness.clock.set(at("2026-11-30 09:00"))
    first = Leadership(pipeline.store, "first", pipeline.clock)
    second = Leadership(pipeline.store, "second", pipeline.clock)
    assert first.renew() and not second.renew()
    sent: list[object] = []
    assert scheduler.release_if_leading(pipeline, second, sent.extend) == 0
    assert scheduler.release_if_leading(pipeline, first, sent.extend) == 1
    assert len(sent) == 1
    assert scheduler.release_if_leading(pipeline, first, sent.extend) == 0  # idempotent
    harness.clock.set(at("2026-11-30 09:01"))  # the first stopped renewing: its lease ran out
    assert second.renew()


def test_faq_edit_is_learnt_in_the_background_and_swapped_in(
    harness: Harness, shop: Path, encoder: MemoEncoder
) -> None:
    reload = KnowledgeReloader(
        harness.pipeline, lambda: load_knowledge(harness.pipeline.config, encoder)
    )
    assert not reload()  # nothing edited yet
    before = harness.say("可以包装成礼物吗", user="a")
    assert before.decision is not None and before.decision.faq_id != "gift-wrap"
    path = shop / "faq" / "shop.yaml"
    path.write_text(
        path.read_text(encoding="utf-8")
        + "\n- id: gift-wrap\n  questions:\n    - 可以包装成礼物吗\n    - 能帮忙礼品包装吗\n"
        "    - 有礼盒包装吗\n    - Can you gift-wrap it?\n"
        "  answer:\n    zh: 下单时勾选“礼品包装”即可，免费。\n",
        encoding="utf-8",
    )
    assert reload()
    after = harness.say("可以包装成礼物吗", user="b")
    assert after.decision is not None and after.decision.faq_id == "gift-wrap"
    assert harness.replies[-1] == "下单时勾选“礼品包装”即可，免费。"
    # the message handled before the swap kept the knowledge it started with
    assert before.knowledge is not harness.pipeline.knowledge
    assert before.knowledge.faq.by_id.get("gift-wrap") is None


def test_refreeze_lets_frozen_garbage_in_cycles_go() -> None:
    """What start-up froze is never swept (bot.jobs.heap); after a reload, whatever of it the old
    content held in a cycle must be swept once."""

    class Node:
        me: object

    node = Node()
    node.me = node  # a cycle: only the collector frees it
    held = weakref.ref(node)
    freeze_startup()
    try:
        del node
        gc.collect()
        assert held() is not None  # frozen: skipped by every sweep
        refreeze()
        assert held() is None
    finally:
        gc.unfreeze()


def _resident_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads Linux's /proc")
def test_start_up_gives_freed_heap_pages_back_to_the_system() -> None:
    """Blocks freed on the C heap stay resident until glibc is asked to return them
    (bot.jobs.heap.give_back, part of `freeze_startup`)."""
    kept, freed = [], []
    for _ in range(1000):  # 64 KB blocks, below glibc's mmap threshold, between kept ones
        freed.append(bytearray(b"x" * 64_000))
        kept.append(bytearray(b"y" * 600))
    del freed
    before = _resident_mb()
    if not give_back():
        pytest.skip("the C library has no malloc_trim (not glibc)")
    # not all of it: in a process with a long history some blocks filled holes amid kept ones
    assert before - _resident_mb() > 16, "the freed 64 MB stayed resident"
    assert len(kept) == 1000


def test_a_reload_lets_the_old_index_go_though_start_up_was_frozen(
    harness: Harness, shop: Path, encoder: MemoEncoder
) -> None:
    """`bot run` keeps what start-up built out of the collector's sweeps (bot.jobs.heap); a
    reload must still free the index and models it replaces, or every FAQ edit would leak them."""
    reload = KnowledgeReloader(
        harness.pipeline, lambda: load_knowledge(harness.pipeline.config, encoder)
    )
    path = shop / "faq" / "shop.yaml"
    text = path.read_text(encoding="utf-8")
    entry = (
        "\n- id: gift-wrap\n  questions:\n    - 可以包装成礼物吗\n  answer:\n    zh: 免费包装。\n"
    )
    freeze_startup()
    try:
        # the fixture's index is shared by other tests: learn one of this test's own first
        path.write_text(text + entry, encoding="utf-8")
        assert reload()
        assert gc.get_freeze_count() > 0  # the new content is kept out of the sweeps
        learnt = weakref.ref(harness.pipeline.knowledge.faq)
        path.write_text(text, encoding="utf-8")
        assert reload()
        gc.collect()
        assert learnt() is None
    finally:
        gc.unfreeze()


def test_broken_faq_edit_keeps_serving_the_old_index(
    harness: Harness, shop: Path, encoder: MemoEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    reload = KnowledgeReloader(
        harness.pipeline, lambda: load_knowledge(harness.pipeline.config, encoder)
    )
    old = harness.pipeline.knowledge
    path = shop / "faq" / "shop.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    broken = lines.index("- id: invoice") + 1  # 1-based
    lines[broken - 1] = "- id: shipping-time"  # the id of the entry above: a duplicate
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="bot.jobs"):
        assert not reload()
    assert harness.pipeline.knowledge is old
    assert any(f"shop.yaml:{broken}" in problem for problem in reload.problems), reload.problems
    assert "old index keeps serving" in caplog.text and "shop.yaml:" in caplog.text
    ctx = harness.say("怎么开发票")
    assert ctx.decision is not None and ctx.decision.faq_id == "invoice"

    lines[broken - 1] = "- id: invoice"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert reload() and reload.problems == []


def test_intent_edit_retrains_the_classifier(
    harness: Harness, shop: Path, encoder: MemoEncoder
) -> None:
    reload = KnowledgeReloader(
        harness.pipeline, lambda: load_knowledge(harness.pipeline.config, encoder)
    )
    old = harness.pipeline.knowledge.classifier
    path = shop / "intents" / "intents.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "\n", encoding="utf-8")  # touched: re-learnt from the same examples
    assert reload()
    assert harness.pipeline.knowledge.classifier is not old
    assert harness.pipeline.knowledge.classifier.classes == old.classes


def test_failed_replies_are_resent_later_and_expire_outside_the_window(harness: Harness) -> None:
    harness.outbox.fail = True
    harness.say("运费多少", user="t", when="2026-11-24 10:00", channel="telegram")
    harness.say("运费多少", user="w", when="2026-11-24 10:00", channel="wechat")
    channel = AsyncOutbox()
    harness.clock.set(at("2026-11-26 11:00"))  # 49 hours later: WeChat no longer accepts it
    assert dispatch_once(harness.pipeline, channel) == 1
    assert [m.chat_id for m in channel.sent] == ["t"]
    assert harness.pipeline.store.unsent_outbound() == []


def test_passing_failures_back_off_and_give_up(harness: Harness) -> None:
    harness.say("运费多少", user="t", channel="telegram")
    harness.outbox.sent.clear()
    unsent = harness.pipeline.store.unsent_outbound()
    assert unsent == []  # the harness's sender delivered it; make a reply fail from now on
    harness.outbox.fail = True
    harness.say("可以开发票吗", user="t", channel="telegram")
    [row] = harness.pipeline.store.unsent_outbound()
    assert row.attempts == 1
    channel = AsyncOutbox(failures=[ConnectionError("down")] * 10)
    assert dispatch_once(harness.pipeline, channel) == 1  # tried: fails, 2 s backoff
    assert dispatch_once(harness.pipeline, channel) == 0  # not due yet
    for _ in range(8):
        harness.clock.advance(timedelta(minutes=11))
        dispatch_once(harness.pipeline, channel)
    assert harness.pipeline.store.unsent_outbound() == []  # gave up after 8 attempts
    assert channel.sent == []


def test_retry_after_is_honoured_and_order_kept(harness: Harness) -> None:
    harness.outbox.fail = True
    harness.say("运费多少", user="t", when="2026-11-27 20:00", channel="telegram")  # two replies
    texts = [p.text for p in harness.pipeline.store.unsent_outbound()]
    assert len(texts) == 2
    channel = AsyncOutbox(failures=[RetryAfter(7)])
    assert dispatch_once(harness.pipeline, channel) == 2
    assert channel.sent == []  # the first asked to wait; the second stays behind it
    harness.clock.advance(timedelta(seconds=5))
    assert dispatch_once(harness.pipeline, channel) == 0
    harness.clock.advance(timedelta(seconds=3))
    assert dispatch_once(harness.pipeline, channel) == 2
    assert [m.text for m in channel.sent] == texts


def test_a_customer_who_blocked_the_bot_is_marked_unreachable(harness: Harness) -> None:
    harness.outbox.fail = True
    ctx = harness.say("运费多少", user="t", when="2026-11-27 20:00", channel="telegram")
    channel = AsyncOutbox(failures=[PermanentFailure("Forbidden: bot was blocked by the user")])
    assert dispatch_once(harness.pipeline, channel) == 2
    assert harness.pipeline.store.unsent_outbound() == []  # nothing retried for ever
    assert ctx.conversation is not None
    conversation = harness.pipeline.store.conversation(ctx.conversation.id)
    assert conversation.unreachable_reason == "Forbidden: bot was blocked by the user"
    # writing again means the customer can be written to again (unblocked the bot)
    harness.say("运费多少", user="t", channel="telegram")
    assert harness.pipeline.store.conversation(ctx.conversation.id).unreachable_reason is None


def test_the_handoff_reply_names_its_queue(harness: Harness) -> None:
    """A channel with its own handoff (WeCom's session state) moves the customer when it sends
    the reply that hands off, and only that one."""
    harness.outbox.fail = True
    harness.say("转人工", user="t", when="2026-11-27 20:00", channel="telegram")
    rows = harness.pipeline.store.unsent_outbound()
    assert [r.handoff_queue for r in rows] == ["general"]  # one line after hours (issue 20)
    channel = AsyncOutbox()
    dispatch_once(harness.pipeline, channel)
    assert [m.handoff_queue for m in channel.sent] == ["general"]


def test_no_more_than_the_channels_quota_after_each_customer_message(harness: Harness) -> None:
    """WeChat takes 5 customer-service messages per customer message: the sixth is not sent
    (it would be refused with 45047); the customer's next message opens a new quota."""
    harness.outbox.fail = True
    ctx = harness.say("运费多少", user="w", when="2026-11-24 10:00", channel="wechat")
    assert ctx.conversation is not None
    store = harness.pipeline.store
    conversation = store.conversation(ctx.conversation.id)
    with store.transaction() as tx:
        for n in range(5):
            outbox.add(tx, conversation, None, f"follow-up {n}", harness.clock.now())
    channel = AsyncOutbox()
    assert dispatch_once(harness.pipeline, channel) == 5
    assert [m.text for m in channel.sent][1:] == [f"follow-up {n}" for n in range(4)]
    assert store.unsent_outbound() == []  # the sixth expired instead of failing at WeChat
    with store.engine.connect() as conn:
        last = conn.execute(
            sa.select(schema.outbox.c.status, schema.outbox.c.last_error)
            .order_by(schema.outbox.c.id.desc())
            .limit(1)
        ).one()
    assert last.status == "expired" and "quota" in last.last_error
    # inline (passive) replies are free, and a new customer message opens a new quota
    harness.clock.advance(timedelta(minutes=1))
    harness.say("可以开发票吗", user="w", channel="wechat")
    assert dispatch_once(harness.pipeline, channel) == 1
