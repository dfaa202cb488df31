"""Waiting care on an injected clock: the apology to a customer no human has answered, SLA
breaches escalated, resolved tickets closed — once per ticket, also with two workers at once."""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.assembly import build_pipeline
from bot.content.config import CareConfig, Config, load_config
from bot.content.problems import ProblemsError
from bot.domain.clock import FixedClock
from bot.domain.messages import Action
from bot.domain.ticket import Ticket
from bot.jobs import scheduler
from bot.jobs.care import (
    CareRound,
    close_resolved,
    escalate_breaches,
    run_care,
    send_waiting_care,
)
from bot.jobs.leader import Leadership
from bot.jobs.release import release_queue_closed
from bot.jobs.reload import ScheduleReloader
from bot.store import schema, tickets
from bot.store.database import Store
from bot.understanding.encoders import MemoEncoder
from tests.support.harness import Harness, Outbox, make_harness
from tests.support.shop import at

SORRY_ZH = "很抱歉让您久等了，您的问题已在人工客服队列中，我们会尽快为您处理，请不要离开。"


def _handoff(harness: Harness, text: str, user: str, when: str, channel: str = "telegram") -> int:
    ctx = harness.say(text, user=user, when=when, channel=channel)
    assert ctx.decision is not None and ctx.decision.action == Action.HANDOFF, ctx.decision
    assert ctx.decision.ticket_id is not None
    return ctx.decision.ticket_id


def _care(harness: Harness, when: str) -> list[str]:
    """Run the apology step at `when`; the chats it wrote to, sent through the test channel."""
    pipeline = harness.pipeline
    harness.clock.set(at(when))
    harness.outbox.sent.clear()
    notices = send_waiting_care(
        pipeline.config, pipeline.store, pipeline.knowledge.schedules, pipeline.clock.now()
    )
    pipeline.deliver_now(notices)
    return [m.chat_id for m in harness.outbox.sent]


def _breaches(harness: Harness, when: str) -> list[Ticket]:
    harness.clock.set(at(when))
    return escalate_breaches(harness.pipeline.config, harness.pipeline.store, at(when))


def _ticket(harness: Harness, ticket_id: int) -> Ticket:
    with harness.pipeline.store.transaction() as tx:
        ticket = tickets.get(tx, ticket_id)
    assert ticket is not None
    return ticket


def _change(harness: Harness, ticket_id: int, when: str, **values: Any) -> None:
    with harness.pipeline.store.transaction() as tx:
        tickets.change(tx, ticket_id, at(when), **values)


def _events(store: Store, kind: str) -> list[tuple[int, dict[str, Any] | None]]:
    events = schema.ticket_events
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(events.c.ticket_id, events.c.data)
            .where(events.c.kind == kind)
            .order_by(events.c.id)
        ).all()
    return [(int(row.ticket_id), row.data) for row in rows]


def _harness_with(config: Config, encoder: MemoEncoder, tmp_path: Path, **care: Any) -> Harness:
    return make_harness(config.model_copy(update={"care": CareConfig(**care)}), encoder, tmp_path)


def test_one_apology_after_the_configured_wait_and_never_before(harness: Harness) -> None:
    ticket_id = _handoff(harness, "转人工", "a", "2026-11-24 10:00")
    _handoff(harness, "talk to a human", "b", "2026-11-24 10:03")
    assert _care(harness, "2026-11-24 10:04:59") == []
    assert _care(harness, "2026-11-24 10:05") == ["a"]
    assert harness.replies == [SORRY_ZH]
    assert _ticket(harness, ticket_id).care_sent_at == at("2026-11-24 10:05")
    assert _care(harness, "2026-11-24 10:06") == []  # once per ticket
    assert _care(harness, "2026-11-24 10:08") == ["b"]
    assert harness.replies == [
        "We're sorry to keep you waiting. Your request is in our team's queue and will be "
        "picked up as soon as possible."
    ]
    assert _care(harness, "2026-11-24 11:00") == []
    assert [ticket for ticket, _ in _events(harness.pipeline.store, "care")] == [
        ticket_id,
        ticket_id + 1,
    ]
    assert harness.pipeline.store.unsent_outbound() == []


def test_no_apology_once_a_human_answered(harness: Harness) -> None:
    answered = _handoff(harness, "转人工", "a", "2026-11-24 10:00")
    claimed = _handoff(harness, "人工客服", "b", "2026-11-24 10:00")
    _change(harness, answered, "2026-11-24 10:01", first_response_at=at("2026-11-24 10:01"))
    _change(
        harness, claimed, "2026-11-24 10:01", status="assigned", assigned_at=at("2026-11-24 10:01")
    )
    assert _care(harness, "2026-11-24 10:10") == ["b"]  # claimed, but still no reply: sorry
    assert _ticket(harness, answered).care_sent_at is None


def test_no_apology_while_the_queue_is_closed_then_after_opening_plus_the_wait(
    harness: Harness,
) -> None:
    pipeline = harness.pipeline
    ticket_id = _handoff(harness, "转人工", "a", "2026-11-27 19:00")  # Friday evening
    assert _ticket(harness, ticket_id).status == "queue_closed"
    assert _care(harness, "2026-11-28 12:00") == []
    assert _care(harness, "2026-11-30 09:04") == []  # Monday: not yet available, not released
    harness.clock.set(at("2026-11-30 09:00"))
    release_queue_closed(
        pipeline.config, pipeline.store, pipeline.knowledge.schedules, at("2026-11-30 09:00")
    )
    assert _care(harness, "2026-11-30 09:04:59") == []
    assert _care(harness, "2026-11-30 09:05") == ["a"]


def test_a_ticket_left_queued_at_closing_gets_its_apology_at_opening(harness: Harness) -> None:
    _handoff(harness, "转人工", "a", "2026-11-24 17:58")
    assert _care(harness, "2026-11-24 18:30") == []  # the team went home: no "as soon as possible"
    assert _care(harness, "2026-11-25 09:00") == ["a"]


def test_apology_waits_for_the_channels_reply_window(harness: Harness) -> None:
    """A WeChat customer who wrote more than 48 h ago cannot be written to; when they write
    again (the ticket still open, the bot silent) the apology goes out."""
    pipeline = harness.pipeline
    ticket_id = _handoff(harness, "转人工", "w", "2026-11-27 19:00", channel="wechat")
    harness.clock.set(at("2026-11-30 09:00"))  # 62 h later
    release_queue_closed(
        pipeline.config, pipeline.store, pipeline.knowledge.schedules, at("2026-11-30 09:00")
    )
    assert _care(harness, "2026-11-30 09:05") == []
    assert _ticket(harness, ticket_id).care_sent_at is None
    harness.say("还有人吗", user="w", when="2026-11-30 09:06", channel="wechat")
    assert harness.replies == []  # the ticket owns the conversation: the bot stays quiet
    assert _care(harness, "2026-11-30 09:06") == ["w"]
    assert _ticket(harness, ticket_id).care_sent_at == at("2026-11-30 09:06")


def test_apology_minutes_zero_turns_it_off(
    config: Config, encoder: MemoEncoder, tmp_path: Path
) -> None:
    harness = _harness_with(config, encoder, tmp_path, apology_minutes=0)
    _handoff(harness, "转人工", "a", "2026-11-24 10:00")
    assert _care(harness, "2026-11-24 12:00") == []


def test_sla_breach_raises_priority_once_and_records_it(harness: Harness) -> None:
    ticket_id = _handoff(harness, "转人工", "a", "2026-11-24 10:00")
    before = _ticket(harness, ticket_id)
    assert (before.queue, before.priority) == ("general", "normal")
    assert before.first_response_due == at("2026-11-24 10:02")
    assert _breaches(harness, "2026-11-24 10:02") == []
    [breached] = _breaches(harness, "2026-11-24 10:02:01")
    assert (breached.id, breached.breach, breached.priority) == (
        ticket_id,
        "first_response",
        "high",
    )
    assert breached.breached_at == at("2026-11-24 10:02:01")
    assert breached.queue == "general"  # no escalate_queue configured
    assert breached.breached(at("2026-11-24 10:02:01"))  # the console's alert
    with harness.pipeline.store.engine.connect() as conn:
        rank = conn.execute(
            sa.select(schema.tickets.c.priority_rank).where(schema.tickets.c.id == ticket_id)
        ).scalar_one()
    assert rank == 1  # high sorts before normal in "claim next"
    assert _events(harness.pipeline.store, "escalated") == [
        (
            ticket_id,
            {
                "breach": "first_response",
                "priority_from": "normal",
                "priority_to": "high",
            },  # the queue did not change, so it is not said to have
        )
    ]
    assert _breaches(harness, "2026-11-24 10:31") == []  # the transfer deadline too: still once
    assert _ticket(harness, ticket_id).priority == "high"


def test_sla_breach_moves_the_ticket_to_the_escalation_queue(
    config: Config, encoder: MemoEncoder, tmp_path: Path
) -> None:
    harness = _harness_with(config, encoder, tmp_path, escalate_queue="complaints")
    ticket_id = _handoff(harness, "我要投诉你们", "a", "2026-11-24 10:00")
    assert _ticket(harness, ticket_id).priority == "high"
    other = _handoff(harness, "转人工", "b", "2026-11-24 10:00")
    [first, second] = _breaches(harness, "2026-11-24 10:05")
    assert (first.id, first.queue, first.priority) == (ticket_id, "complaints", "urgent")
    assert (second.id, second.queue, second.priority) == (other, "complaints", "high")
    assert [t.id for t in harness.pipeline.store.tickets("complaints")] == [ticket_id, other]
    [(_, data), _] = _events(harness.pipeline.store, "escalated")
    assert data == {
        "breach": "first_response",
        "priority_from": "high",
        "priority_to": "urgent",
    }
    [_, (_, moved)] = _events(harness.pipeline.store, "escalated")
    assert moved == {
        "breach": "first_response",
        "priority_from": "normal",
        "priority_to": "high",
        "queue_from": "general",
        "queue_to": "complaints",
    }


def test_breach_without_escalation_is_still_recorded(
    config: Config, encoder: MemoEncoder, tmp_path: Path
) -> None:
    harness = _harness_with(config, encoder, tmp_path, escalate_priority=False)
    ticket_id = _handoff(harness, "转人工", "a", "2026-11-24 10:00")
    [breached] = _breaches(harness, "2026-11-24 10:03")
    assert (breached.priority, breached.breach) == ("normal", "first_response")
    assert [t for t, _ in _events(harness.pipeline.store, "breached")] == [ticket_id]
    assert _events(harness.pipeline.store, "escalated") == []


def test_breach_of_an_urgent_ticket_says_nothing_changed(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 20's trial: an urgent ticket past its deadline got a history entry "新队列 紧急 原队列
    紧急 新优先级 紧急 原优先级 紧急" and the log "now urgent/urgent", as if it had been raised."""
    ticket_id = _handoff(harness, "救命，家里着火了", "a", "2026-11-24 10:00")
    before = _ticket(harness, ticket_id)
    assert (before.queue, before.priority) == ("urgent", "urgent")
    assert before.first_response_due is not None
    late = before.first_response_due + timedelta(seconds=1)
    pipeline = harness.pipeline
    with caplog.at_level("WARNING", logger="bot.jobs"):
        [breached] = escalate_breaches(pipeline.config, pipeline.store, late)
    assert (breached.id, breached.queue, breached.priority) == (ticket_id, "urgent", "urgent")
    assert breached.breached_at is not None  # the console's alert still shows
    assert _events(harness.pipeline.store, "escalated") == []
    assert _events(harness.pipeline.store, "breached") == [
        (ticket_id, {"breach": "first_response"})
    ]
    (said,) = [r.getMessage() for r in caplog.records if "deadline" in r.getMessage()]
    assert "nothing to raise" in said and "now urgent/urgent" not in said


def test_transfer_deadline_missed_without_an_agent(harness: Harness) -> None:
    ticket_id = _handoff(harness, "转人工", "a", "2026-11-24 10:00")
    _change(harness, ticket_id, "2026-11-24 10:01", first_response_at=at("2026-11-24 10:01"))
    assert _breaches(harness, "2026-11-24 10:30") == []
    [breached] = _breaches(harness, "2026-11-24 10:30:01")
    assert breached.breach == "transfer"


def test_claimed_and_answered_in_time_never_breaches(harness: Harness) -> None:
    ticket_id = _handoff(harness, "转人工", "a", "2026-11-24 10:00")
    _change(
        harness,
        ticket_id,
        "2026-11-24 10:01",
        status="awaiting_customer",
        assigned_at=at("2026-11-24 10:01"),
        first_response_at=at("2026-11-24 10:01:30"),
    )
    assert _breaches(harness, "2026-11-24 17:00") == []


def test_after_hours_ticket_is_not_breached_before_it_is_available(harness: Harness) -> None:
    pipeline = harness.pipeline
    ticket_id = _handoff(harness, "转人工", "a", "2026-11-27 19:00")
    closed_ticket = _ticket(harness, ticket_id)
    assert closed_ticket.available_at == at("2026-11-30 09:00")
    assert closed_ticket.first_response_due == at("2026-11-30 09:02")  # clocks start at opening
    assert closed_ticket.transfer_due == at("2026-11-30 09:30")
    assert _breaches(harness, "2026-11-28 12:00") == []
    assert _breaches(harness, "2026-11-30 08:59") == []
    assert _breaches(harness, "2026-11-30 09:03") == []  # still queue_closed: agents never saw it
    # released three minutes late (the job runs every 15 s; an operator may also have moved
    # the opening): the clocks start at the release, not at the opening agents never saw
    release_queue_closed(
        pipeline.config, pipeline.store, pipeline.knowledge.schedules, at("2026-11-30 09:03")
    )
    released = _ticket(harness, ticket_id)
    assert released.available_at == at("2026-11-30 09:03")
    assert released.first_response_due == at("2026-11-30 09:05")
    assert _breaches(harness, "2026-11-30 09:04") == []
    [breached] = _breaches(harness, "2026-11-30 09:06")
    assert breached.id == ticket_id and breached.breach == "first_response"


def _reschedule(harness: Harness, shop: Path, dates: str) -> None:
    """An operator puts `dates` under [dates] of the default schedule, in place of what they
    added there before; the workers reload it."""
    path = shop / "schedules" / "default.toml"
    reload = ScheduleReloader(harness.pipeline)
    text = re.sub(
        r'\[dates\]\n(?:.*\n)*?(?="2026-12-31")',
        f"[dates]\n{dates}\n",
        path.read_text(encoding="utf-8"),
    )
    path.write_text(text, encoding="utf-8")
    assert reload()


def _release_at(harness: Harness, when: str) -> list[Ticket]:
    pipeline = harness.pipeline
    harness.clock.set(at(when))
    released, _ = release_queue_closed(
        pipeline.config, pipeline.store, pipeline.knowledge.schedules, at(when)
    )
    return released


def test_opening_early_starts_the_clocks_at_the_release(harness: Harness, shop: Path) -> None:
    """Finding 3 of issue 20's trial: an operator opened tonight until midnight; the overnight
    tickets were released but kept the deadlines of Monday's opening, so no SLA escalation
    or "late" tonight."""
    ticket_id = _handoff(harness, "转人工", "a", "2026-11-27 19:00")  # Friday evening
    assert _ticket(harness, ticket_id).first_response_due == at("2026-11-30 09:02")
    _reschedule(harness, shop, '"2026-11-27" = ["10:00-24:00"]')
    assert [t.id for t in _release_at(harness, "2026-11-27 22:40")] == [ticket_id]
    released = _ticket(harness, ticket_id)
    assert released.available_at == at("2026-11-27 22:40")
    assert released.first_response_due == at("2026-11-27 22:42")
    assert released.transfer_due == at("2026-11-27 23:10")
    [breached] = _breaches(harness, "2026-11-27 22:43")
    assert breached.id == ticket_id and breached.breach == "first_response"


def test_tickets_waiting_for_opening_follow_a_changed_schedule(
    harness: Harness, shop: Path
) -> None:
    """... and tickets still waiting for the opening show the deadlines of the opening that
    will happen, earlier or later than the one they were made for."""
    ticket_id = _handoff(harness, "转人工", "a", "2026-11-27 19:00")
    _reschedule(harness, shop, '"2026-11-28" = ["10:00-16:00"]')  # open on Saturday
    assert _release_at(harness, "2026-11-27 22:40") == []
    waiting = _ticket(harness, ticket_id)
    assert waiting.status == "queue_closed"
    assert waiting.available_at == at("2026-11-28 10:00")
    assert (waiting.first_response_due, waiting.transfer_due) == (
        at("2026-11-28 10:02"),
        at("2026-11-28 10:30"),
    )
    _reschedule(harness, shop, '"2026-11-30" = []')  # not Saturday after all, nor Monday
    assert _release_at(harness, "2026-11-28 10:00") == []
    waiting = _ticket(harness, ticket_id)
    assert waiting.available_at == at("2026-12-01 09:00")
    assert (waiting.first_response_due, waiting.transfer_due) == (
        at("2026-12-01 09:02"),
        at("2026-12-01 09:30"),
    )
    assert _breaches(harness, "2026-11-30 10:00") == []


def test_resolved_tickets_close_after_the_reopen_time(harness: Harness) -> None:
    config, store = harness.pipeline.config, harness.pipeline.store
    assert config.handoff.reopen_minutes == 1440
    ticket_id = _handoff(harness, "转人工", "a", "2026-11-24 10:00")
    _change(
        harness,
        ticket_id,
        "2026-11-24 11:00",
        status="resolved",
        resolved_at=at("2026-11-24 11:00"),
    )
    assert close_resolved(config, store, at("2026-11-25 10:59")) == 0
    assert _ticket(harness, ticket_id).status == "resolved"
    assert close_resolved(config, store, at("2026-11-25 11:00:01")) == 1
    assert _ticket(harness, ticket_id).status == "closed"
    assert close_resolved(config, store, at("2026-11-25 12:00")) == 0


def test_the_scheduler_runs_care_on_the_leader_only(harness: Harness) -> None:
    pipeline = harness.pipeline
    _handoff(harness, "转人工", "a", "2026-11-24 10:00")
    harness.clock.set(at("2026-11-24 10:10"))
    first = Leadership(pipeline.store, "first", pipeline.clock)
    second = Leadership(pipeline.store, "second", pipeline.clock)
    assert first.renew() and not second.renew()
    told: list[object] = []
    assert scheduler.care_if_leading(pipeline, second, told.extend) is None
    done = scheduler.care_if_leading(pipeline, first, told.extend)
    assert done is not None and len(done.notices) == 1 and len(done.breached) == 1
    assert told == done.notices  # the dispatcher is woken with the apology
    again = scheduler.care_if_leading(pipeline, first, told.extend)
    assert again == CareRound()


def test_escalate_queue_must_be_a_queue(shop: Path) -> None:
    path = shop / "config.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + '\n[care]\nescalate_queue = "supervisors"\n', encoding="utf-8")
    with pytest.raises(ProblemsError) as raised:
        load_config(path)
    assert "care.escalate_queue 'supervisors' is not one of the queues" in str(raised.value)
    path.write_text(text + '\n[care]\nescalate_queue = "complaints"\n', encoding="utf-8")
    assert load_config(path).care.escalate_queue == "complaints"


def test_two_postgresql_workers_apologise_and_escalate_each_ticket_once(
    config: Config, encoder: MemoEncoder, postgres_url: str
) -> None:
    """Both workers run the whole care job at the same moment, round after round; every ticket
    gets one apology and one escalation."""
    clock = FixedClock(at("2026-11-24 10:00"))
    pipeline = build_pipeline(config, clock, Outbox(), store_url=postgres_url, encoder=encoder)
    harness = Harness(pipeline, clock, Outbox())
    workers = [Store(postgres_url, pool_size=2) for _ in range(2)]
    try:
        created = []
        rounds: list[list[CareRound]] = []
        for n in range(3):
            start = at("2026-11-24 10:00") + timedelta(minutes=10 * n)
            for user in range(12):
                created.append(
                    _handoff(harness, "转人工", f"r{n}u{user}", start.strftime("%Y-%m-%d %H:%M"))
                )
            rounds.append(
                _both(config, pipeline.knowledge.schedules, workers, start + timedelta(minutes=6))
            )
        assert sum(len(done.notices) for pair in rounds for done in pair) == len(created)
        assert sum(len(done.breached) for pair in rounds for done in pair) == len(created)
        assert sorted(t for t, _ in _events(pipeline.store, "care")) == created
        assert sorted(t for t, _ in _events(pipeline.store, "escalated")) == created
        with pipeline.store.engine.connect() as conn:
            apologies = conn.execute(
                sa.select(sa.func.count()).where(schema.outbox.c.text == SORRY_ZH)
            ).scalar_one()
        assert apologies == len(created)
    finally:
        for store in workers:
            store.close()
        pipeline.store.close()


def _both(config: Config, schedules: Any, workers: list[Store], now: datetime) -> list[CareRound]:
    """Run the care job on every worker at once (threads released by one barrier)."""
    barrier = threading.Barrier(len(workers))
    results: list[CareRound | BaseException] = [CareRound()] * len(workers)

    def work(i: int) -> None:
        try:
            barrier.wait()
            results[i] = run_care(config, workers[i], schedules, now)
        except BaseException as exc:  # reported by the test, not lost in the thread
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [r for r in results if isinstance(r, CareRound)]


def test_no_escalation_at_night_for_a_ticket_that_came_just_before_closing(
    harness: Harness,
) -> None:
    pipeline = harness.pipeline
    ticket_id = _handoff(harness, "转人工", "late", "2026-11-24 17:50")
    schedules = pipeline.knowledge.schedules

    def breaches(when: str) -> list[Ticket]:
        harness.clock.set(at(when))
        return escalate_breaches(pipeline.config, pipeline.store, at(when), schedules)

    assert breaches("2026-11-24 18:25") == []  # late, but nobody is there to take it
    assert breaches("2026-11-25 03:00") == []
    [late] = breaches("2026-11-25 09:00")  # at opening, still unanswered: escalated
    assert late.id == ticket_id and late.breach == "first_response"
