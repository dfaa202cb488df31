"""A known week of service, built through the real pipeline, the Desk and the scheduler's jobs
with an injected clock, for the metrics and report tests. Every number the tests expect is
worked out by hand from the plan below, not by the code under test.

The week is Monday 2026-11-23 to Sunday 2026-11-29 (Asia/Shanghai; the shop is open Mon–Fri
09:00–18:00). Replies are sent by a dispatcher round after each message, so that the bot's
first-response time is the delay chosen here.

- 60 customers f00…f59 on Tuesday from 10:00, a minute apart: "多久能发货？" (answered; sent
  after i % 5 seconds: twelve each of 0, 1, 2, 3, 4 s), then 10 s later "怎么开发票" (answered at
  once). f00…f19 come back on Wednesday from 10:00 with "运费多少" (a second conversation).
- 20 customers b00…b19 on Tuesday from 23:00 (closed), 10 customers n00…n09 on Saturday from
  20:00 (closed): "你们几点上班", answered.
- 10 customers g00…g09 on Tuesday from 15:00: "月亮上有兔子吗" (not understood: fallback).
- h1, Tuesday 11:00 "转人工" (general). alice claims 11:02; the care job at 11:02:30 marks the
  first response breached (due 11:02); she replies 11:03 and resolves 11:10; h1 rates 5, NPS 10.
  At 13:10 h1 writes "还是不行，转人工": the ticket reopens to alice, who replies 13:12 and
  resolves 13:20.
- h2, Tuesday 14:00 "我要投诉你们" (complaints, 60 s SLA). bob claims 14:00:30, replies
  14:00:50, resolves 14:05:50; h2 rates 2, NPS 3.
- h3, Tuesday 23:30 "转人工": queue_closed until Wednesday 09:00, released then; alice claims 09:01,
  replies 09:04, resolves 09:10. No rating (h3's next message would open a new conversation).
- h4, Wednesday 17:55 "转人工" (queued, due 17:57): nobody takes it before closing; alice
  claims Thursday 09:05, replies 09:06, resolves 09:16. No rating.
- h5, Thursday 10:00 "转人工": bob claims 10:01, replies 10:02, resolves 10:04; h5 rates 4, NPS 8.
- The week before: 5 customers p0…p4 on Tuesday 2026-11-17 10:00 "多久能发货？" (answered at
  once), and one ticket (p9, "转人工" 11:00; bob claims 11:01, replies 11:02, resolves 11:05;
  rates 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.assembly import build_pipeline
from bot.content.config import Config
from bot.domain.agent import Agent, Role
from bot.domain.clock import FixedClock
from bot.domain.messages import Action
from bot.humans.desk import Desk
from bot.jobs.care import run_care
from bot.jobs.release import release_queue_closed
from bot.store import agents
from bot.understanding.encoders import MemoEncoder
from tests.support.harness import AsyncOutbox, Harness, Outbox, dispatch_once
from tests.support.shop import at

HASH = "$argon2id$v=19$m=65536,t=3,p=4$not-a-real-hash"


@dataclass
class History:
    harness: Harness
    desk: Desk
    alice: Agent
    bob: Agent
    tickets: dict[str, int]


def build(config: Config, encoder: MemoEncoder, store_url: str | None = None) -> History:
    """The history in `store_url` (default: the config's own store, so `bot report` finds it)."""
    config.survey.nps = True
    clock = FixedClock(at("2026-11-17 10:00"))
    pipeline = build_pipeline(
        config, clock, None, store_url=store_url or config.storage_url, encoder=encoder
    )
    harness = Harness(pipeline, clock, Outbox())
    desk = Desk(config, pipeline.store, clock, lambda: pipeline.knowledge)
    with pipeline.store.transaction() as tx:
        alice = agents.add(tx, "alice", "Alice", Role.AGENT, HASH, clock.now())
        bob = agents.add(tx, "bob", "Bob", Role.AGENT, HASH, clock.now())
    history = History(harness, desk, alice, bob, {})

    def say(
        text: str,
        user: str,
        when: str | None = None,
        delay: float = 0,
        expect: Action | None = None,
    ) -> int | None:
        ctx = harness.say(text, user=user, when=when)
        assert ctx.decision is not None
        if expect is not None:
            assert ctx.decision.action == expect, (text, user, ctx.decision)
        clock.advance(timedelta(seconds=delay))
        dispatch_once(pipeline, AsyncOutbox())
        return ctx.decision.ticket_id

    def sent() -> None:
        dispatch_once(pipeline, AsyncOutbox())

    def set_time(when: str) -> None:
        clock.set(at(when))

    def handle(
        agent: Agent,
        ticket: int,
        user: str,
        *,
        claim: str | None,
        reply: tuple[str, str],
        resolve: str,
        ratings: tuple[str, ...] = (),
    ) -> None:
        """`agent` takes the next ticket at `claim` (None: it is theirs already), replies at
        `reply[0]`, resolves at `resolve`; then the customer answers the survey with `ratings`
        (CSAT, then NPS)."""
        if claim is not None:
            set_time(claim)
            assert desk.claim_next(agent) is not None
        set_time(reply[0])
        desk.reply(agent, ticket, reply[1])
        set_time(resolve)
        desk.resolve(agent, ticket)
        sent()
        for rating in ratings:
            say(rating, user, expect=Action.REPLY)

    # the week before
    for i in range(5):
        say("多久能发货？", f"p{i}", f"2026-11-17 10:{i:02d}", expect=Action.ANSWER)
    p9 = say("转人工", "p9", "2026-11-17 11:00", expect=Action.HANDOFF)
    assert p9 is not None
    handle(
        bob,
        p9,
        "p9",
        claim="2026-11-17 11:01",
        reply=("2026-11-17 11:02", "您好，我来帮您。"),
        resolve="2026-11-17 11:05",
        ratings=("3", "7"),
    )

    # the week: FAQ traffic on Tuesday
    start = at("2026-11-24 10:00")
    for i in range(60):
        clock.set(start + timedelta(minutes=i))
        say("多久能发货？", f"f{i:02d}", delay=i % 5, expect=Action.ANSWER)
        clock.set(start + timedelta(minutes=i, seconds=10))
        say("怎么开发票", f"f{i:02d}", expect=Action.ANSWER)
    # h1: claimed, breached, answered late, resolved, rated, reopened to alice, resolved again
    h1 = say("转人工", "h1", "2026-11-24 11:00", expect=Action.HANDOFF)
    assert h1 is not None
    set_time("2026-11-24 11:02")
    assert desk.claim_next(alice) is not None
    set_time("2026-11-24 11:02:30")
    run_care(config, pipeline.store, pipeline.knowledge.schedules, clock.now())
    sent()
    handle(
        alice,
        h1,
        "h1",
        claim=None,
        reply=("2026-11-24 11:03", "您好，我是 Alice。"),
        resolve="2026-11-24 11:10",
        ratings=("5", "10"),
    )
    assert say("还是不行，转人工", "h1", "2026-11-24 13:10", expect=Action.HANDOFF) == h1
    handle(
        alice,
        h1,
        "h1",
        claim=None,
        reply=("2026-11-24 13:12", "再为您处理一次。"),
        resolve="2026-11-24 13:20",
    )
    # h2: a complaint, handled within its 60 s
    h2 = say("我要投诉你们", "h2", "2026-11-24 14:00", expect=Action.HANDOFF)
    assert h2 is not None
    handle(
        bob,
        h2,
        "h2",
        claim="2026-11-24 14:00:30",
        reply=("2026-11-24 14:00:50", "非常抱歉，我来处理。"),
        resolve="2026-11-24 14:05:50",
        ratings=("2", "3"),
    )
    # not understood
    for i in range(10):
        say("月亮上有兔子吗", f"g{i:02d}", f"2026-11-24 15:{i:02d}", expect=Action.FALLBACK)
    # after hours on Tuesday night
    for i in range(20):
        say("你们几点上班", f"b{i:02d}", f"2026-11-24 23:{i:02d}", expect=Action.ANSWER)
    h3 = say("转人工", "h3", "2026-11-24 23:30", expect=Action.HANDOFF)
    assert h3 is not None
    # Wednesday: h3 released at opening, the returning customers, h4 just before closing
    set_time("2026-11-25 09:00")
    release_queue_closed(config, pipeline.store, pipeline.knowledge.schedules, clock.now())
    sent()
    handle(
        alice,
        h3,
        "h3",
        claim="2026-11-25 09:01",
        reply=("2026-11-25 09:04", "早上好，我来处理。"),
        resolve="2026-11-25 09:10",
    )
    for i in range(20):
        say("运费多少", f"f{i:02d}", f"2026-11-25 10:{i:02d}", expect=Action.ANSWER)
    h4 = say("转人工", "h4", "2026-11-25 17:55", expect=Action.HANDOFF)
    assert h4 is not None
    handle(
        alice,
        h4,
        "h4",
        claim="2026-11-26 09:05",
        reply=("2026-11-26 09:06", "您好，让您久等了。"),
        resolve="2026-11-26 09:16",
    )
    h5 = say("转人工", "h5", "2026-11-26 10:00", expect=Action.HANDOFF)
    assert h5 is not None
    handle(
        bob,
        h5,
        "h5",
        claim="2026-11-26 10:01",
        reply=("2026-11-26 10:02", "您好。"),
        resolve="2026-11-26 10:04",
        ratings=("4", "8"),
    )
    # Saturday evening, closed
    for i in range(10):
        say("你们几点上班", f"n{i:02d}", f"2026-11-28 20:{i:02d}", expect=Action.ANSWER)
    set_time("2026-11-30 09:30")
    history.tickets = {"p9": p9, "h1": h1, "h2": h2, "h3": h3, "h4": h4, "h5": h5}
    return history
