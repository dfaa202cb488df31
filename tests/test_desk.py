"""The human side end to end through the real pipeline and store: a handoff becomes a ticket,
an agent claims, replies and resolves it through the `Desk`, the customer answers the survey;
the bot is silent while a human owns the conversation and back after resolve; reopening,
"your agent is on it", queue position, complaints about waiting, VIP routing, permissions."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from bot.assembly import build_pipeline
from bot.content.config import Config, load_config
from bot.domain.agent import Agent, Role
from bot.domain.clock import FixedClock
from bot.domain.messages import Action
from bot.domain.ticket import TicketState
from bot.humans.desk import Conflict, Desk, DeskError, Forbidden
from bot.pipeline.context import Context
from bot.store import agents
from bot.store.database import Store
from bot.store.schema import messages, tickets
from bot.understanding.encoders import MemoEncoder
from tests.support.harness import AsyncOutbox, Harness, Outbox, dispatch_once, make_harness
from tests.support.shop import at

HASH = "$argon2id$v=19$m=65536,t=3,p=4$not-a-real-hash"
#: the shipped shop's intents (the repository's own `intents/`)
SHIPPED_INTENTS = Path(__file__).parent.parent / "intents"


def _agent(
    harness: Harness, login: str, role: Role = Role.AGENT, queues: tuple[str, ...] = ()
) -> Agent:
    with harness.pipeline.store.transaction() as tx:
        return agents.add(tx, login, login.title(), role, HASH, harness.clock.now(), queues)


def _online(harness: Harness, login: str, queues: tuple[str, ...] = ()) -> Agent:
    """An agent whose console is open now (it has just told the desk)."""
    agent = _agent(harness, login, queues=queues)
    _desk(harness).seen(agent)
    return agent


def _desk(harness: Harness) -> Desk:
    pipeline = harness.pipeline
    return Desk(pipeline.config, pipeline.store, pipeline.clock, lambda: pipeline.knowledge)


def _sent(harness: Harness) -> list[str]:
    """What the dispatcher sends now (the desk's writes go through the outbox)."""
    sender = AsyncOutbox()
    dispatch_once(harness.pipeline, sender)
    return [m.text for m in sender.sent]


def _handoff(harness: Harness, user: str = "u1", text: str = "转人工") -> int:
    ctx = harness.say(text, user=user)
    assert ctx.decision is not None and ctx.decision.action == Action.HANDOFF, ctx.decision
    assert ctx.decision.ticket_id is not None
    return ctx.decision.ticket_id


def _claimed(harness: Harness) -> tuple[Agent, Desk, int]:
    """Agent alice, the desk, and a customer's handoff that alice has claimed."""
    alice = _agent(harness, "alice")
    desk = _desk(harness)
    ticket_id = _handoff(harness)
    assert desk.claim_next(alice) is not None
    return alice, desk, ticket_id


def test_an_agent_claims_replies_and_resolves_and_the_customer_rates(harness: Harness) -> None:
    alice = _agent(harness, "alice")
    desk = _desk(harness)
    harness.say("多久能发货？")
    ticket_id = _handoff(harness)
    assert desk.overview(alice)[0].queued == 1

    claimed = desk.claim_next(alice)
    assert claimed is not None and claimed.id == ticket_id
    assert desk.claim_next(alice) is None
    # the bot's acknowledgement is not the human's first response
    assert claimed.first_response_at is None

    # the bot is silent while a human owns the conversation
    ctx = harness.say("我的订单号是 12345")
    assert ctx.decision is not None and ctx.decision.action == Action.SILENT
    assert harness.replies == []

    harness.clock.advance(timedelta(seconds=40))
    outcome = desk.reply(alice, ticket_id, "您好，我是客服 Alice，订单明天发货。")
    assert outcome.sent and outcome.warnings == []
    assert _sent(harness) == ["您好，我是客服 Alice，订单明天发货。"]
    view = desk.ticket(alice, ticket_id)
    assert view.ticket.status == TicketState.AWAITING_CUSTOMER  # the customer's move
    assert view.ticket.first_response_at == harness.clock.now()
    authors = [(line.author, line.text) for line in view.transcript]
    assert ("customer", "我的订单号是 12345") in authors
    assert ("agent", "您好，我是客服 Alice，订单明天发货。") in authors
    assert any(line.author == "bot" for line in view.transcript)
    assert any(line.action == "handoff" and line.decision for line in view.transcript)

    harness.say("好的")  # the customer answers: the agent's move again
    assert desk.ticket(alice, ticket_id).ticket.status == TicketState.ASSIGNED
    assert harness.replies == []

    desk.resolve(alice, ticket_id)
    sent = _sent(harness)
    assert sent[0].startswith("感谢您的耐心等待")
    assert "1–5" in sent[1]

    ctx = harness.say("5")
    assert ctx.decision is not None and "csat answer 5" in ctx.decision.reasons[0]
    assert harness.replies == ["感谢您的评价，祝您生活愉快！"]
    view = desk.ticket(alice, ticket_id)
    assert view.csat == 5 and view.ticket.status == TicketState.RESOLVED
    assert [e.kind for e in view.events] == ["created", "claimed", "replied", "resolved", "csat"]

    # the bot answers again, and a later "5" is not a second rating
    ctx = harness.say("多久能发货？")
    assert ctx.decision is not None and ctx.decision.action == Action.ANSWER
    harness.say("5")
    assert desk.ticket(alice, ticket_id).csat == 5


def test_a_ticket_held_until_opening_can_be_taken_by_an_agent_already_there(
    harness: Harness,
) -> None:
    """The console offers 领取 on a ticket waiting for its queue to open; taking it answered
    409 "someone was faster", falsely, so an agent in early (or trying `bot demo` at night)
    could not answer it."""
    alice = _agent(harness, "alice")
    desk = _desk(harness)
    harness.clock.set(at("2026-11-24 23:30"))
    night = _handoff(harness, user="u2")
    with harness.pipeline.store.engine.connect() as conn:
        status = conn.execute(sa.select(tickets.c.status).where(tickets.c.id == night)).scalar()
    assert status == TicketState.QUEUE_CLOSED
    taken = desk.claim(alice, night)
    assert taken.status == TicketState.ASSIGNED and taken.agent_id == alice.id
    assert desk.reply(alice, night, "您好，我是 Alice，现在就为您处理。").sent
    with pytest.raises(Conflict):
        desk.claim(_agent(harness, "bob"), night)


def test_a_resolved_ticket_reopens_to_its_agent_and_is_surveyed_once(harness: Harness) -> None:
    alice, desk, ticket_id = _claimed(harness)
    desk.reply(alice, ticket_id, "已为您处理。")
    desk.resolve(alice, ticket_id)
    _sent(harness)
    harness.clock.advance(timedelta(hours=2))
    ctx = harness.say("还是不行，转人工")
    assert ctx.decision is not None and ctx.decision.action == Action.HANDOFF
    assert ctx.decision.ticket_id == ticket_id  # the same ticket, not a new one
    assert harness.replies == ["您的问题已由客服Alice跟进处理中，请稍候，我们会尽快回复您。"]
    view = desk.ticket(alice, ticket_id)
    assert view.ticket.status == TicketState.ASSIGNED and view.ticket.reopened == 1
    assert view.mine
    desk.resolve(alice, ticket_id)
    assert [t for t in _sent(harness) if "1–5" in t] == []  # asked once per ticket

    # past the reopen time a new ticket starts
    harness.clock.advance(timedelta(days=2))
    assert _handoff(harness) != ticket_id


def test_the_customer_hears_who_is_on_it_and_never_gets_a_second_ticket(harness: Harness) -> None:
    _, _, ticket_id = _claimed(harness)
    ctx = harness.say("人工客服")
    assert ctx.decision is not None and ctx.decision.ticket_id == ticket_id
    assert harness.replies == ["您的问题已由客服Alice跟进处理中，请稍候，我们会尽快回复您。"]
    with harness.pipeline.store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tickets)).scalar() == 1


#: lines that name a handoff topic (the refund intent hands off) while thanking or declining
MENTIONS = [
    "不用退款了，补发就行，谢谢！",
    "好的，那我不退款了",
    "退货的事不用了，谢谢你们",
    "got the refund, thanks!",
    "thanks, no need for a refund, just resend it",
]


def test_mentioning_a_handoff_topic_does_not_make_the_bot_talk_over_the_agent(
    shop: Path, encoder: MemoEncoder, tmp_path: Path
) -> None:
    """Issue 20, defect 3: while an agent owns the conversation, a line that merely mentions a
    refund read as asking for a person again ("您的问题已由客服…跟进处理中"). Only asking for
    a person, complaining about the wait or an emergency gets a bot line."""
    shipped = yaml.safe_load((SHIPPED_INTENTS / "service.yaml").read_text(encoding="utf-8"))
    refund = [intent for intent in shipped if intent["name"] == "refund_request"]
    (shop / "intents" / "refund.yaml").write_text(
        yaml.safe_dump(refund, allow_unicode=True), encoding="utf-8"
    )
    harness = make_harness(load_config(shop / "config.toml"), encoder, tmp_path)
    assert harness.say(MENTIONS[0], user="x").decision.intent == "refund_request"  # type: ignore[union-attr]

    ticket_id = _handoff(harness, "a")  # queued: nobody has claimed it yet

    def say(text: str) -> Context:
        harness.clock.advance(timedelta(seconds=20))  # not a flood
        return harness.say(text, user="a")

    for text in MENTIONS:
        ctx = say(text)
        assert ctx.decision is not None and ctx.decision.action == Action.SILENT, text
        assert harness.replies == [], text
    for text in ("人呢？怎么还没人回我", "can I talk to a real person"):
        say(text)
        assert len(harness.replies) == 1, text

    alice = _agent(harness, "alice")
    desk = _desk(harness)
    assert desk.claim(alice, ticket_id).id == ticket_id
    for text in MENTIONS:
        ctx = say(text)
        assert ctx.decision is not None and ctx.decision.action == Action.SILENT, text
        assert harness.replies == [], text
    say("can I talk to a real person")
    assert harness.replies == ["Alice from our team is on your request and will reply shortly."]
    say("人呢？怎么还没人回我")
    assert harness.replies == ["您的问题已由客服Alice跟进处理中，请稍候，我们会尽快回复您。"]
    say("等了这么久还没人理，你们到底管不管！！")
    assert harness.replies == ["您的问题已由客服Alice跟进处理中，请稍候，我们会尽快回复您。"]
    ctx = say("救命，家里着火了")
    assert ctx.decision is not None and ctx.decision.action == Action.HANDOFF
    assert "400-000-0000" in harness.replies[0]


def test_a_customer_who_declines_a_person_or_complains_of_the_wait_while_an_agent_has_it(
    harness: Harness,
) -> None:
    """Finding 1 of issue 20's trial: while an agent owned the conversation, "投诉的事也算了，
    不用转人工了" got "your agent is on it", and "怎么还没人理我？等了好久了" got silence.
    A declined person is nobody asked for; a complaint about the wait while it is the agent's
    move hears who is on it; right after the agent's answer the bot leaves it to them."""
    alice, desk, ticket_id = _claimed(harness)

    def say(text: str) -> Context:
        harness.clock.advance(timedelta(seconds=20))  # not a flood
        return harness.say(text)

    for text in ("对了，投诉的事也算了，不用转人工了", "不需要人工", "no need for an agent"):
        ctx = say(text)
        assert ctx.decision is not None and ctx.decision.action == Action.SILENT, text
        assert harness.replies == [], (text, ctx.decision.reasons)
    say("都半小时了还没人回复")
    assert harness.replies == ["您的问题已由客服Alice跟进处理中，请稍候，我们会尽快回复您。"]
    desk.reply(alice, ticket_id, "您好，这就为您查。")
    say("都半小时了还没人回复")  # crossed with the answer: it is there already
    assert harness.replies == []
    assert desk.ticket(alice, ticket_id).ticket.priority == "normal"


def test_a_waiting_customer_learns_their_place_and_a_complaint_moves_them_up(
    harness: Harness,
) -> None:
    desk = _desk(harness)
    _online(harness, "olga")
    first = _handoff(harness, "a")
    ctx = harness.say("转人工", user="b")
    assert ctx.decision is not None
    assert "您前面还有1位客户在等待" in " ".join(harness.replies)
    second = ctx.decision.ticket_id
    ctx = harness.say("人工", user="b")
    assert harness.replies == ["您前面还有1位客户在等待，请稍候。"]

    ctx = harness.say("等了这么久还没人理，你们到底管不管！！", user="b")
    assert harness.replies == ["非常抱歉让您久等了！已为您优先处理，客服会尽快回复您。"]
    bob = _agent(harness, "bob")
    claimed = desk.claim_next(bob)
    assert claimed is not None and claimed.id == second != first  # moved ahead
    assert claimed.priority == "high"


def test_an_english_queue_position_reads_right_for_one_and_for_several(harness: Harness) -> None:
    """Issue 20, defect 4: "There are 1 customers ahead of you"."""
    _online(harness, "olga")
    for user in ("a", "b"):
        _handoff(harness, user)
    positions = []
    for user in ("c", "d"):
        harness.say("can I talk to a real person", user=user)
        positions.append(harness.replies[-1])
        harness.say("I want a person", user=user)  # asked again while queued
        positions.append(harness.replies[-1])
    assert positions == [
        "Customers ahead of you: 2. Please hold on.",
        "Customers ahead of you: 2. Please hold on.",
        "Customers ahead of you: 3. Please hold on.",
        "Customers ahead of you: 3. Please hold on.",
    ]
    harness.say("I want a person", user="b")
    assert harness.replies == ["Customers ahead of you: 1. Please hold on."]


def test_with_no_agent_online_the_customer_hears_so_and_the_ticket_is_made(
    harness: Harness,
) -> None:
    """Issue 20, defect 12a: in open hours with nobody logged in, "connecting you…" was a
    promise nobody kept. Online is a console heard from within console.online_minutes."""
    unstaffed = harness.pipeline.config.texts.handoff_unstaffed["zh"]
    ticket_id = _handoff(harness, "a")
    assert harness.replies == [unstaffed]
    [ticket] = harness.pipeline.store.tickets("general")  # the ticket is still made, queued
    assert ticket.id == ticket_id and ticket.status == TicketState.QUEUED
    harness.clock.advance(timedelta(seconds=20))
    harness.say("人工", user="a")  # asking again while nobody is there
    assert harness.replies == [unstaffed]

    _online(harness, "gina", queues=("complaints",))  # online, but not for this queue
    _handoff(harness, "b")
    assert harness.replies == [unstaffed]

    alice = _online(harness, "alice")
    _handoff(harness, "c")
    assert harness.replies[0] == "好的，正在为您转接人工客服。"

    harness.clock.advance(timedelta(minutes=harness.pipeline.config.console.online_minutes + 1))
    _handoff(harness, "d")  # alice's console has not been heard from since
    assert harness.replies == [unstaffed]

    desk = _desk(harness)
    desk.seen(alice)
    _handoff(harness, "e")
    assert harness.replies[0] == "好的，正在为您转接人工客服。"
    desk.away(alice.id)  # logged out
    _handoff(harness, "f")
    assert harness.replies == [unstaffed]
    # a team that answers outside the console (WeCom's own app) turns the check off
    harness.pipeline.config.console.online_minutes = 0
    _handoff(harness, "g")
    assert harness.replies[0] == "好的，正在为您转接人工客服。"


def test_an_agent_online_on_one_worker_counts_on_another(
    config: Config, encoder: MemoEncoder, postgres_url: str
) -> None:
    """Presence is read from the database: an agent whose console talks to one worker is
    online for the handoffs another worker decides."""
    clock = FixedClock(at("2026-11-24 10:00"))
    workers = [
        build_pipeline(config, clock, Outbox(), store_url=postgres_url, encoder=encoder)
        for _ in range(2)
    ]
    first, second = (Harness(p, clock, p.sender) for p in workers)  # type: ignore[arg-type]
    try:
        _handoff(second, "presence-a")
        assert second.replies == [config.texts.handoff_unstaffed["zh"]]
        _online(first, "presence-alice")
        _handoff(second, "presence-b")
        assert second.replies[0] == "好的，正在为您转接人工客服。"
    finally:
        for pipeline in workers:
            pipeline.store.close()


def test_expected_wait_comes_from_how_long_recent_tickets_waited(harness: Harness) -> None:
    alice = _agent(harness, "alice")
    desk = _desk(harness)
    for user in ("a", "b"):
        _handoff(harness, user)
        harness.clock.advance(timedelta(minutes=4))
        desk.claim_next(alice)
    desk.seen(alice)
    _handoff(harness, "c")
    harness.say("转人工", user="d")
    assert "您前面还有1位客户在等待，预计等待约4分钟。" in harness.replies


def test_vip_customers_go_to_their_queue_at_high_priority(
    config: Config, encoder: MemoEncoder, tmp_path: Path
) -> None:
    config.handoff.vip_customers = ["wechat:boss"]
    config.handoff.vip_queue = "tech"
    harness = make_harness(config, encoder, tmp_path)
    ctx = harness.say("转人工", user="boss")
    assert ctx.decision is not None
    assert (ctx.decision.queue, ctx.decision.priority) == ("tech", "high")
    ctx = harness.say("转人工", user="someone")
    assert ctx.decision is not None and ctx.decision.queue == "general"


def test_agents_see_only_their_queues_supervisors_see_all(harness: Harness) -> None:
    general = _agent(harness, "gina", queues=("general",))
    boss = _agent(harness, "sam", Role.SUPERVISOR)
    desk = _desk(harness)
    complaint = _handoff(harness, "a", "我要投诉你们")
    ours = _handoff(harness, "b")
    assert [q.queue for q in desk.overview(general)] == ["general"]
    with pytest.raises(Forbidden):
        desk.ticket(general, complaint)
    with pytest.raises(Forbidden):
        desk.supervisor(general)
    assert desk.ticket(boss, complaint).ticket.queue == "complaints"
    claimed = desk.claim_next(general)
    assert claimed is not None and claimed.id == ours
    with pytest.raises(Forbidden):  # not theirs to answer
        desk.reply(boss, ours, "hello")
    with pytest.raises(Conflict):
        desk.claim(boss, ours)
    view = desk.supervisor(boss)
    assert view.created_today == 2 and {q.queue for q in view.queues} >= {"general", "complaints"}
    assert [a.open_tickets for a in view.agents if a.login == "gina"] == [1]


def test_replies_asking_for_passwords_or_using_forbidden_phrases_wait_for_a_second_look(
    harness: Harness,
) -> None:
    alice, desk, ticket_id = _claimed(harness)
    outcome = desk.reply(alice, ticket_id, "这是规定，请告诉我您的登录密码")
    assert not outcome.sent
    assert {w.kind for w in outcome.warnings} == {"forbidden", "password"}
    assert _sent(harness) == []
    with pytest.raises(DeskError):
        desk.reply(alice, ticket_id, "   ")
    # confirmed: sent, and the transcript keeps a masked copy
    outcome = desk.reply(alice, ticket_id, "请核对手机号 13812345678", confirmed=True)
    assert outcome.sent
    assert _sent(harness) == ["请核对手机号 13812345678"]
    with harness.pipeline.store.engine.connect() as conn:
        stored = conn.execute(
            sa.select(messages.c.text).where(messages.c.agent_id == alice.id)
        ).scalar()
    assert stored is not None and "13812345678" not in stored


def test_transfer_to_a_queue_or_a_colleague_keeps_the_note(harness: Harness) -> None:
    alice = _agent(harness, "alice")
    bob = _agent(harness, "bob")
    desk = _desk(harness)
    ticket_id = _handoff(harness)
    first = desk.claim_next(alice)
    assert first is not None
    harness.clock.advance(timedelta(minutes=3))
    moved = desk.transfer(alice, ticket_id, queue="tech", note="路由器故障，请技术支持")
    assert (moved.queue, moved.status, moved.agent_id) == ("tech", TicketState.QUEUED, None)
    # the customer has waited for people since the handoff: the clocks do not restart
    assert moved.available_at == first.available_at
    claimed = desk.claim_next(bob)
    assert claimed is not None and claimed.id == ticket_id
    desk.transfer(bob, ticket_id, to_login="alice", note="back to you")
    view = desk.ticket(alice, ticket_id)
    assert view.mine and view.ticket.queue == "tech"
    notes = [e.data.get("note") for e in view.events if e.kind == "transferred"]
    assert notes == ["路由器故障，请技术支持", "back to you"]


def test_agent_assist_finds_the_question_before_the_request_for_a_human(harness: Harness) -> None:
    alice = _agent(harness, "alice")
    desk = _desk(harness)
    harness.say("发票怎么开啊")
    ticket_id = _handoff(harness)
    desk.claim_next(alice)
    suggestions = desk.assist(alice, ticket_id)
    assert suggestions and suggestions[0].faq_id == "invoice"
    assert suggestions[0].answer.startswith("在“我的订单”中")


def test_agent_assist_fills_the_hours_of_an_answer_as_the_bot_would(
    shop: Path, encoder: MemoEncoder, tmp_path: Path
) -> None:
    """Issue 20, defect 11: an agent inserting an answer written with {hours} sends the
    schedule's hours, not the placeholder."""
    faq = shop / "faq" / "shop.yaml"
    faq.write_text(
        faq.read_text(encoding="utf-8").replace("周一至周五 9:00-18:00", "{hours}"),
        encoding="utf-8",
    )
    harness = make_harness(load_config(shop / "config.toml"), encoder, tmp_path)
    alice = _agent(harness, "alice")
    desk = _desk(harness)
    harness.say("人工客服工作时间")
    ticket_id = _handoff(harness)
    desk.claim_next(alice)
    [hours] = [s for s in desk.assist(alice, ticket_id) if s.faq_id == "business-hours"]
    assert hours.answer == "人工客服工作时间为周一至周五 9:00–18:00。"
    harness.pipeline.store.close()


def test_the_console_version_moves_with_every_change(harness: Harness) -> None:
    alice = _agent(harness, "alice")
    desk = _desk(harness)
    before = desk.version()
    ticket_id = _handoff(harness)
    created = desk.version()
    assert created != before
    harness.clock.advance(timedelta(seconds=5))
    desk.claim_next(alice)
    claimed = desk.version()
    assert claimed != created
    harness.clock.advance(timedelta(seconds=5))
    harness.say("在吗")  # the customer's new line shows in the console
    assert desk.version() != claimed
    assert ticket_id


def test_two_workers_resolving_at_once_resolve_and_survey_once(
    config: Config, encoder: MemoEncoder, tmp_path: Path, postgres_url: str
) -> None:
    clock = FixedClock(at("2026-11-24 10:00"))
    pipeline = build_pipeline(config, clock, Outbox(), store_url=postgres_url, encoder=encoder)
    harness = Harness(pipeline, clock, pipeline.sender)  # type: ignore[arg-type]
    alice = _agent(harness, "alice", Role.SUPERVISOR)
    ticket_id = _handoff(harness)
    _desk(harness).claim_next(alice)
    desks = [
        Desk(config, Store(postgres_url), harness.clock, lambda: harness.pipeline.knowledge)
        for _ in range(4)
    ]
    start = threading.Barrier(len(desks))
    outcomes: list[str] = []

    def resolve(desk: Desk) -> None:
        start.wait()
        try:
            desk.resolve(alice, ticket_id)
            outcomes.append("resolved")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=resolve, args=(d,)) for d in desks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "conflict", "conflict", "resolved"]
    assert len([t for t in _sent(harness) if "1–5" in t]) == 1
    for desk in desks:
        desk.store.close()


def test_an_emergency_while_waiting_moves_to_the_urgent_line_with_its_clocks_running_now(
    harness: Harness,
) -> None:
    ticket_id = _handoff(harness, "a")
    harness.clock.set(at("2026-11-28 20:00"))  # Saturday evening: general is closed
    weekend = _handoff(harness, "b")
    ctx = harness.say("我的卡被盗刷了，紧急！", user="b")
    assert ctx.decision is not None and ctx.decision.queue == "urgent"
    view = _desk(harness).ticket(_agent(harness, "sam", Role.SUPERVISOR), weekend)
    assert view.ticket.queue == "urgent" and view.ticket.status == TicketState.QUEUED
    assert view.ticket.first_response_due == at("2026-11-28 20:01")
    assert ticket_id != weekend


def test_a_burst_of_emergencies_on_an_urgent_ticket_gets_one_reply(harness: Harness) -> None:
    # the flood guard lets urgent lines through; the bot answers the first of a burst on a
    # ticket already urgent, not every line of it, and answers again once it has calmed
    ticket_id = _handoff(harness, "a", "救命，家里着火了")
    assert "400-000-0000" in harness.replies[0]  # the handoff's own urgent reply
    replies = []
    for _ in range(6):
        harness.clock.advance(timedelta(seconds=2))
        ctx = harness.say("着火了！！快来人", user="a")
        assert ctx.decision is not None and ctx.decision.ticket_id == ticket_id
        replies.append(list(harness.replies))
    assert replies == [[]] * 6  # said seconds ago: not again on every line of the burst
    harness.clock.advance(timedelta(seconds=harness.pipeline.config.guard.flood_seconds + 1))
    last = harness.say("还是很多烟，着火了", user="a")
    assert last.decision is not None
    assert len(harness.replies) == 1, last.decision.reasons and "400-000-0000" in harness.replies[0]


def test_an_emergency_on_an_urgent_ticket_an_agent_has_says_who_is_on_it(
    harness: Harness,
) -> None:
    alice = _agent(harness, "alice", queues=("urgent",))
    desk = _desk(harness)
    ticket_id = _handoff(harness, "a", "救命，家里着火了")
    claimed = desk.claim_next(alice)
    assert claimed is not None and claimed.id == ticket_id
    harness.clock.advance(timedelta(minutes=2))
    ctx = harness.say("着火了！！快来人", user="a")
    assert ctx.decision is not None and ctx.decision.ticket_id == ticket_id
    [said] = harness.replies
    assert "Alice" in said, said


def test_a_customer_who_rates_the_next_morning_is_still_answering_the_survey(
    harness: Harness,
) -> None:
    alice, desk, ticket_id = _claimed(harness)
    desk.reply(alice, ticket_id, "已为您处理好了。")
    desk.resolve(alice, ticket_id)
    harness.clock.advance(timedelta(hours=15))  # long past conversation.idle_minutes
    ctx = harness.say("4分")
    assert ctx.decision is not None and ctx.decision.action == Action.REPLY
    assert desk.ticket(alice, ticket_id).csat == 4


def test_an_emergency_after_a_resolved_ticket_goes_to_the_urgent_line_not_the_old_agent(
    harness: Harness,
) -> None:
    alice, desk, ticket_id = _claimed(harness)
    desk.resolve(alice, ticket_id)
    harness.clock.advance(timedelta(minutes=10))
    ctx = harness.say("紧急！我的银行卡被盗刷了")
    assert ctx.decision is not None and ctx.decision.action == Action.HANDOFF
    assert ctx.decision.queue == "urgent" and ctx.decision.ticket_id != ticket_id


def test_complaining_about_the_wait_raises_a_ticket_to_high_never_urgent(harness: Harness) -> None:
    ticket_id = _handoff(harness, "a")
    for _ in range(3):
        harness.say("等了这么久还没人理，太过分了！！", user="a")
        assert harness.replies == ["非常抱歉让您久等了！已为您优先处理，客服会尽快回复您。"]
    sam = _agent(harness, "sam", Role.SUPERVISOR)
    assert _desk(harness).ticket(sam, ticket_id).ticket.priority == "high"


def test_asking_for_a_person_while_the_queue_is_closed_hears_when_it_opens(
    harness: Harness,
) -> None:
    harness.clock.set(at("2026-11-27 19:00"))  # Friday evening
    _handoff(harness, "a")
    harness.say("人工！", user="a")
    assert len(harness.replies) == 1 and "11月30日" in harness.replies[0]


def test_a_transfer_racing_the_customers_message_leaves_no_orphan_ticket(
    config: Config, encoder: MemoEncoder, tmp_path: Path, postgres_url: str
) -> None:
    """The desk takes the customer's lock, as the pipeline does: a customer's message at the
    moment of a transfer never writes back a state the transfer replaced."""
    clock = FixedClock(at("2026-11-24 10:00"))
    pipeline = build_pipeline(config, clock, Outbox(), store_url=postgres_url, encoder=encoder)
    harness = Harness(pipeline, clock, pipeline.sender)  # type: ignore[arg-type]
    alice = _agent(harness, "alice")
    desk = _desk(harness)
    for round_ in range(12):
        user = f"race{round_}"
        ticket_id = _handoff(harness, user)
        claimed = desk.claim(alice, ticket_id)
        assert claimed.id == ticket_id
        desk.reply(alice, ticket_id, "请问还有什么可以帮您？")  # awaiting_customer now
        start = threading.Barrier(2)

        def customer(n: int = round_, who: str = user, start: threading.Barrier = start) -> None:
            start.wait()
            harness.say(f"好的，第{n}个问题", user=who)

        def agent(
            n: int = round_, ticket: int = ticket_id, start: threading.Barrier = start
        ) -> None:
            start.wait()
            desk.transfer(alice, ticket, queue="after_sales", note=f"round {n}")

        threads = [threading.Thread(target=customer), threading.Thread(target=agent)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        view = desk.ticket(alice, ticket_id)
        assert (view.ticket.status, view.ticket.agent_id) == (TicketState.QUEUED, None), round_


def test_an_agents_reply_goes_to_the_chat_the_ticket_was_opened_in(harness: Harness) -> None:
    """A Telegram customer says hello in a group, then asks for a person in private: the ticket
    is the private chat's, and the agent's reply, the closing words and the survey go there;
    the group is another conversation, still the bot's."""
    alice = _agent(harness, "alice")
    desk = _desk(harness)
    group = "-100200"
    harness.say("你好", channel="telegram", chat=group)
    assert {m.chat_id for m in harness.outbox.sent} == {group}
    ctx = harness.say("转人工", channel="telegram")
    assert ctx.decision is not None and ctx.decision.ticket_id is not None
    assert {m.chat_id for m in harness.outbox.sent} == {"u1"}
    ticket_id = ctx.decision.ticket_id
    claimed = desk.claim_next(alice)
    assert claimed is not None and claimed.id == ticket_id

    desk.reply(alice, ticket_id, "您好，我是客服 Alice，请问有什么可以帮您？")
    sender = AsyncOutbox()
    dispatch_once(harness.pipeline, sender)
    assert [(m.chat_id, m.text) for m in sender.sent] == [
        ("u1", "您好，我是客服 Alice，请问有什么可以帮您？")
    ]

    ctx = harness.say("运费多少", channel="telegram", chat=group)  # the bot answers the group
    assert ctx.decision is not None and ctx.decision.action == Action.ANSWER
    assert [m.chat_id for m in harness.outbox.sent] == [group]

    # the ticket page shows both of the customer's conversations, this ticket's marked
    talks = desk.ticket(alice, ticket_id).conversations
    assert sorted((c.chat, c.current, c.tickets) for c in talks) == [
        (group, False, 0),
        ("u1", True, 1),
    ]

    desk.resolve(alice, ticket_id)
    sender = AsyncOutbox()
    dispatch_once(harness.pipeline, sender)
    assert [m.chat_id for m in sender.sent] == ["u1", "u1"]  # closing words, survey
    ctx = harness.say("5", channel="telegram")
    assert ctx.decision is not None and "csat answer 5" in ctx.decision.reasons[0]
    assert {m.chat_id for m in harness.outbox.sent} == {"u1"}
