"""Follow-ups read in context: a short line after the customer's previous one, on a small hotel
FAQ written here (a trade none of the dev deployments is in)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bot.assembly import build_pipeline
from bot.content.config import Config, load_config
from bot.domain.conversation import CustomerLine
from bot.domain.messages import Action, Inbound
from bot.pipeline.ahead import LONGEST, LastLines
from bot.pipeline.context import Context
from bot.pipeline.followup import elliptical
from bot.pipeline.knowledge import Knowledge, Reading
from bot.understanding.encoders import MemoEncoder
from bot.understanding.faq import FaqIndex
from tests.support.harness import Harness, make_harness
from tests.support.shop import at

HOTEL_FAQ = """\
- id: breakfast
  questions:
    - 酒店早餐几点开始
    - 早餐时间是几点到几点
    - 早饭在哪里吃
    - What time is breakfast served?
  answer:
    zh: 早餐在二楼餐厅，工作日 6:30-10:00，周末 7:00-11:00。
    en: Breakfast is on the second floor, 6:30-10:00 on weekdays and 7:00-11:00 at weekends.

- id: breakfast-price
  questions:
    - 早餐多少钱
    - 早餐要另外付费吗
    - 不含早的房间吃早饭怎么收费
    - How much is breakfast?
  answer:
    zh: 含早房型免费；不含早的房型每位 68 元，儿童半价。
    en: Breakfast is included in breakfast rates; otherwise it is 68 yuan a person, children half.

- id: airport-shuttle
  questions:
    - 你们有机场接送服务吗
    - 可以安排接机吗
    - 去机场有班车吗
    - Do you run an airport shuttle?
  answer:
    zh: 机场班车每小时一班，请提前一天在前台预约。
    en: The airport shuttle runs hourly; book it at the front desk a day ahead.

- id: parking
  questions:
    - 酒店有停车场吗
    - 停车要收费吗
    - 开车来车停哪里
    - Is there parking at the hotel?
  answer:
    zh: 地下停车场对住客免费。
    en: The underground car park is free for guests.

- id: pets
  questions:
    - 可以带宠物入住吗
    - 狗能带进房间吗
    - 酒店接待宠物吗
    - Can I bring my dog?
  answer:
    zh: 十公斤以下的宠物可以入住，每晚加收 100 元清洁费。
    en: Pets under 10 kg are welcome for a cleaning fee of 100 yuan a night.

- id: late-checkout
  questions:
    - 可以延迟退房吗
    - 退房时间能晚一点吗
    - 最晚几点退房
    - Can I check out late?
  answer:
    zh: 退房时间为中午 12 点，可免费延迟至 14 点。
    en: Check-out is at noon; you may stay until 2 pm free of charge.
"""


@pytest.fixture
def hotel(shop: Path, encoder: MemoEncoder, tmp_path: Path) -> Harness:
    (shop / "faq" / "shop.yaml").write_text(HOTEL_FAQ, encoding="utf-8")
    return make_harness(load_config(shop / "config.toml"), encoder, tmp_path)


def _context_reasons(reasons: list[str]) -> list[str]:
    return [r for r in reasons if r.startswith("read with the previous line")]


def test_a_follow_up_reaches_the_entry_through_the_previous_line(hotel: Harness) -> None:
    first = hotel.say("早餐几点开始供应", when="2026-11-24 10:00")
    assert first.decision is not None and first.decision.faq_id == "breakfast", first.decision
    # alone, the line does not name breakfast well enough to be answered with it
    [alone] = hotel.pipeline.read(["那周末呢"])
    answer = hotel.pipeline.knowledge.faq.thresholds.answer
    assert not (alone.matches[0].entry.id == "breakfast" and alone.matches[0].score >= answer)
    ctx = hotel.say("那周末呢", when="2026-11-24 10:01")
    assert ctx.decision is not None
    assert ctx.decision.action == Action.ANSWER and ctx.decision.faq_id == "breakfast", ctx.decision
    [reason] = _context_reasons(ctx.decision.reasons)
    assert "(faq breakfast)" in reason and "早餐几点开始供应" in reason


def test_a_follow_up_that_moves_on_reaches_the_neighbouring_entry(hotel: Harness) -> None:
    # read alone, "is it free?" is the parking entry's "停车要收费吗"; read as "previous line +
    # message" it leans back to the breakfast hours asked first. Scored on both, the price
    # of breakfast comes first, and the message alone has it among its first three.
    hotel.say("早餐几点开始供应", when="2026-11-24 10:00")
    alone, joined = hotel.pipeline.read(["是免费的吗", "早餐几点开始供应 是免费的吗"])
    assert alone.matches[0].entry.id == "parking"
    assert joined.matches[0].entry.id == "breakfast"
    ctx = hotel.say("是免费的吗", when="2026-11-24 10:01")
    assert ctx.decision is not None
    assert ctx.decision.action == Action.ANSWER, ctx.decision
    assert ctx.decision.faq_id == "breakfast-price", ctx.decision
    [reason] = _context_reasons(ctx.decision.reasons)
    assert "among the message's own first" in reason
    assert ctx.thin_answer  # answered on context: the reply names the question
    assert "answered on the previous line's context: the reply names the question" in (
        ctx.decision.reasons
    )


def test_a_follow_up_the_joined_text_is_clearly_surer_of(hotel: Harness) -> None:
    # alone, "小孩呢" ("and children?") is nearest pets, far below the answer threshold, and
    # breakfast is not among its first three; read with the breakfast question, breakfast
    # leads by far
    hotel.say("早餐几点开始供应", when="2026-11-24 10:00")
    [alone] = hotel.pipeline.read(["小孩呢"])
    assert "breakfast" not in [m.entry.id for m in alone.matches[:3]]
    assert alone.matches[0].score < hotel.pipeline.knowledge.faq.thresholds.answer
    ctx = hotel.say("小孩呢", when="2026-11-24 10:01")
    assert ctx.decision is not None and ctx.decision.faq_id == "breakfast", ctx.decision
    [reason] = _context_reasons(ctx.decision.reasons)
    assert "previous line + message; alone: " in reason


def test_a_reading_taken_in_context_is_the_whole_joined_reading(hotel: Harness) -> None:
    # in context, only the FAQ half of "previous line + message" is read at first; when it is
    # taken, the rest (intent, acts, closeness to what no shop answers) is the joined text's,
    # as a reading of it in one go gives
    hotel.say("早餐几点开始供应", when="2026-11-24 10:00")
    [whole] = hotel.pipeline.read(["早餐几点开始供应 小孩呢"])
    [alone] = hotel.pipeline.read(["小孩呢"])
    assert whole.acts != alone.acts
    ctx = hotel.say("小孩呢", when="2026-11-24 10:01")
    assert ctx.decision is not None and _context_reasons(ctx.decision.reasons)
    # (read in one encoder batch with the message alone: equal to the last few digits)
    assert ctx.acts == pytest.approx(whole.acts, abs=1e-5)
    assert ctx.outside == pytest.approx(whole.outside, abs=1e-5)
    assert ctx.guess is not None and whole.guess is not None
    assert (ctx.guess.intent, ctx.guess.best) == (whole.guess.intent, whole.guess.best)
    assert ctx.guess.score == pytest.approx(whole.guess.score, abs=1e-5)
    [scored] = hotel.pipeline.knowledge.score(["早餐几点开始供应 小孩呢"], k=3)
    assert scored.guess is None and not scored.acts
    [finished] = hotel.pipeline.knowledge.finish(["早餐几点开始供应 小孩呢"], [scored])
    assert finished == whole


def _reordered(knowledge: Knowledge, config: Config, approximate_above: int = 0) -> Knowledge:
    """The same FAQ with its entries in the opposite order, as a reload may bring (and with
    `approximate_above`, an approximate index past that many phrasings)."""
    old = knowledge.faq
    faq = FaqIndex(
        list(reversed(old.entries)),
        old._encoder,
        config.faq.dense_weight,
        approximate_above or config.faq.approximate_above,
        config.faq.answer_weight,
        config.faq.answer_mix,
    )
    faq.thresholds = old.thresholds
    return replace(knowledge, faq=faq)


def test_a_reload_between_arrival_and_reading_keeps_the_follow_up(hotel: Harness) -> None:
    # the message is handled with the content it arrived under; a reload that reorders the
    # FAQ before it is read must not pair its scores with the other order's entries
    hotel.say("早餐几点开始供应", when="2026-11-24 10:00")
    pipeline = hotel.pipeline
    ctx = pipeline.accept(
        Inbound("wechat", "m-reload", "u1", "u1", "是免费的吗", at("2026-11-24 10:01"))
    )
    arrived = pipeline.knowledge
    pipeline.knowledge = _reordered(arrived, pipeline.config)
    [reading] = pipeline.read([ctx.text])
    pipeline.knowledge = arrived
    pipeline.decide(ctx, reading)
    assert ctx.decision is not None and ctx.decision.faq_id == "breakfast-price", ctx.decision
    assert _context_reasons(ctx.decision.reasons)


def _decided(ctx: Context) -> tuple[object, ...]:
    decision = ctx.decision
    assert decision is not None
    return decision.action, decision.faq_id, decision.reasons, ctx.followup, ctx.followup_agrees


def test_a_follow_up_scored_before_the_lock_is_decided_as_under_it(hotel: Harness) -> None:
    # the worker remembers the customer's previous line, so "previous line + message" is
    # scored in the reading thread with the other customers' messages; under the lock the
    # message is decided as it is when nothing was remembered (scored there instead)
    hotel.say("早餐几点开始供应", when="2026-11-24 10:00")
    ctx = hotel.say("是免费的吗", when="2026-11-24 10:01")
    assert ctx.ahead is not None and ctx.ahead.text == "早餐几点开始供应 是免费的吗"
    assert ctx.ahead.fits(ctx.ahead.text, hotel.pipeline.knowledge)

    hotel.say("早餐几点开始供应", user="u2", when="2026-11-24 10:00")
    hotel.pipeline.last_lines = LastLines()  # a worker started since: nothing remembered
    under_lock = hotel.say("是免费的吗", user="u2", when="2026-11-24 10:01")
    assert under_lock.ahead is None
    assert _decided(ctx) == _decided(under_lock)
    assert ctx.decision is not None and ctx.decision.faq_id == "breakfast-price"


def test_lines_remembered_per_conversation_newest_first_and_bounded() -> None:
    last = LastLines(size=2)
    when = at("2026-11-24 10:00")
    for n, key in enumerate([("wechat", "a", "a"), ("wechat", "b", "b"), ("wechat", "a", "a")]):
        last.remember(key, CustomerLine(f"line {n}", when))
    assert [line.text for line in last.lines(("wechat", "a", "a"))] == ["line 2", "line 0"]
    last.remember(("wechat", "c", "c"), CustomerLine("line 3", when))
    assert last.lines(("wechat", "b", "b")) == ()  # the least recently decided is forgotten
    assert [line.text for line in last.lines(("wechat", "a", "a"))] == ["line 2", "line 0"]
    # a long line is not kept, and what came before it is no longer the previous line
    last.remember(("wechat", "a", "a"), CustomerLine("长" * (LONGEST + 1), when))
    assert last.lines(("wechat", "a", "a")) == ()
    last.remember(("wechat", "a", "a"), CustomerLine("line 4", when))
    assert [line.text for line in last.lines(("wechat", "a", "a"))] == ["line 4"]


def test_lines_remembered_are_bounded_by_their_characters_too() -> None:
    # many customers sending long lines: the oldest conversations go to keep the total
    last = LastLines(size=100, chars=1000)
    when = at("2026-11-24 10:00")
    for n in range(10):
        last.remember(("wechat", f"u{n}", f"u{n}"), CustomerLine(str(n) * 250, when))
    kept = [n for n in range(10) if last.lines(("wechat", f"u{n}", f"u{n}"))]
    assert kept == [6, 7, 8, 9]
    last.remember(("wechat", "u9", "u9"), CustomerLine("short", when))  # 255 in u9 now
    assert [n for n in range(10) if last.lines(("wechat", f"u{n}", f"u{n}"))] == [7, 8, 9]


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_a_guess_from_a_line_another_worker_overtook_is_not_used(
    hotel: Harness,
    encoder: MemoEncoder,
    tmp_path: Path,
    database: str,
    request: pytest.FixtureRequest,
) -> None:
    # two workers on one database: worker A decided the customer's first line, worker B their
    # second, so A's guess of the follow-up's context is the first line; the lock's own
    # reading (the second line) decides, as on a worker that remembered nothing
    url = (
        f"sqlite:///{tmp_path}/workers.sqlite3"
        if database == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    a, b, c = (
        Harness(
            build_pipeline(
                hotel.pipeline.config,
                hotel.clock,
                hotel.outbox,
                store_url=url,
                encoder=encoder,
                knowledge=hotel.pipeline.knowledge,
            ),
            hotel.clock,
            hotel.outbox,
        )
        for _ in range(3)
    )
    try:
        a.say("早餐几点开始供应", when="2026-11-24 10:00", external_id="a1")
        b.say("请问酒店可以带宠物一起入住吗", when="2026-11-24 10:01", external_id="b1")
        ctx = a.say("小孩呢", when="2026-11-24 10:02", external_id="a2")
        assert ctx.ahead is not None and ctx.ahead.text == "早餐几点开始供应 小孩呢"  # the guess
        assert ctx.followup is not None and "请问酒店可以带宠物一起入住吗" in ctx.followup, (
            ctx.followup
        )
        assert "早餐" not in ctx.followup

        c.say("早餐几点开始供应", user="u2", when="2026-11-24 10:00")
        c.say("请问酒店可以带宠物一起入住吗", user="u2", when="2026-11-24 10:01")
        c.pipeline.last_lines = LastLines()
        alone = c.say("小孩呢", user="u2", when="2026-11-24 10:02")
        assert alone.ahead is None
        assert _decided(ctx) == _decided(alone)
    finally:
        for worker in (a, b, c):
            worker.pipeline.store.close()


def test_on_an_approximate_index_a_follow_up_is_scored_on_every_entry(hotel: Harness) -> None:
    # past `approximate_above` phrasings the graph scores only the entries it finds near a
    # text; in context every entry is scored, as on an exact index
    knowledge = _reordered(hotel.pipeline.knowledge, hotel.pipeline.config, approximate_above=5)
    assert knowledge.faq.approximate
    entries = len(knowledge.faq.entries)
    assert knowledge.context_depth(3) == entries
    [partial] = knowledge.score(["小孩呢"], k=1)
    whole = knowledge.own_scores("小孩呢", partial, 3)
    assert whole is not partial  # scored again, looking for every entry
    assert whole.scores is not None and (whole.scores.dense > 0).all()
    assert len(whole.matches) == 3
    exact = _reordered(hotel.pipeline.knowledge, hotel.pipeline.config)
    [read] = exact.score(["小孩呢"], k=3)
    assert exact.own_scores("小孩呢", read, 3) is read  # exact already: kept as it is


def test_a_follow_up_whose_context_cannot_be_read_is_decided_on_its_own(
    hotel: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the shop's intent model fails on "previous line + message": the message is answered as
    # it would be alone, not with the error reply, and says nothing of context
    hotel.say("早餐几点开始供应", when="2026-11-24 10:00")
    knowledge = hotel.pipeline.knowledge
    expected = hotel.pipeline.decide(
        hotel.pipeline.accept(
            Inbound("wechat", "m-alone", "u2", "u2", "小孩呢", at("2026-11-24 10:01"))
        ),
        hotel.pipeline.read(["小孩呢"])[0],
    )
    probabilities = knowledge.classifier.probabilities

    def failing(texts: Sequence[str], vectors: np.ndarray) -> np.ndarray:
        if any(" " in text for text in texts):
            raise RuntimeError("the model broke on a joined text")
        return probabilities(texts, vectors)

    monkeypatch.setattr(knowledge.classifier, "probabilities", failing)
    ctx = hotel.say("小孩呢", when="2026-11-24 10:01")
    assert ctx.decision is not None and expected.decision is not None
    assert ctx.followup is None and not ctx.followup_agrees
    assert not _context_reasons(ctx.decision.reasons)
    assert ctx.decision.action == expected.decision.action
    assert ctx.decision.faq_id == expected.decision.faq_id


def test_a_question_answered_on_its_own_keeps_its_reading(hotel: Harness) -> None:
    # "and the dog?" after breakfast is the pets entry on its own, clearly: the breakfast
    # question before it does not pull it back
    hotel.say("早餐几点开始供应", when="2026-11-24 10:00")
    [alone] = hotel.pipeline.read(["那狗能带进房间吗"])
    assert alone.matches[0].entry.id == "pets"
    ctx = hotel.say("那狗能带进房间吗", when="2026-11-24 10:01")
    assert ctx.decision is not None and ctx.decision.faq_id == "pets", ctx.decision
    assert not ctx.thin_answer


def test_names_are_the_message_own_not_the_previous_line(hotel: Harness) -> None:
    # joined with a Chinese line, "crowded" would be an unknown Latin word in a Chinese
    # sentence, which reads as a name (Notion的团队版); the message alone names nothing
    hotel.say("早餐几点开始供应", when="2026-11-24 10:00")
    [joined] = hotel.pipeline.read(["早餐几点开始供应 is it crowded?"])
    assert joined.others == ("crowded",)
    ctx = hotel.say("is it crowded?", when="2026-11-24 10:01")
    assert ctx.decision is not None and _context_reasons(ctx.decision.reasons)
    assert not ctx.others
    assert not [r for r in ctx.decision.reasons if r.startswith("names ")], ctx.decision.reasons


def test_a_name_in_a_follow_up_is_a_detail_of_the_question_it_continues(hotel: Harness) -> None:
    # alone, a place the hotel's content never names reads as someone else's question; after
    # the shuttle question the customer asks about the shuttle, to that place
    alone = hotel.say("and does it go to Hongqiao?", user="u2", when="2026-11-24 10:00")
    assert alone.decision is not None and alone.decision.action != Action.ANSWER, alone.decision
    assert alone.others == ("Hongqiao",)
    first = hotel.say("Do you run an airport shuttle?", when="2026-11-24 10:00")
    assert first.decision is not None and first.decision.faq_id == "airport-shuttle"
    ctx = hotel.say("and does it go to Hongqiao?", when="2026-11-24 10:01")
    assert ctx.decision is not None and ctx.decision.action == Action.ANSWER, ctx.decision
    assert ctx.decision.faq_id == "airport-shuttle"
    assert any(r.startswith("continues the previous line's question") for r in ctx.decision.reasons)
    # a known company is someone else's, continued or not
    other = hotel.say("and does it go to Uber HQ?", when="2026-11-24 10:02")
    assert other.decision is not None and other.decision.action != Action.ANSWER, other.decision
    assert other.others == ("Uber", "HQ")


def test_a_continued_question_read_alone_after_a_failure_is_not_continued(
    hotel: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # read in context, "and does it go to Hongqiao?" continues the shuttle question; when the
    # rest of that reading cannot be had, the message is decided on its own reading, which
    # does not reach the shuttle outright: its name counts again
    hotel.say("Do you run an airport shuttle?", when="2026-11-24 10:00")
    finish = Knowledge.finish

    def failing(
        knowledge: Knowledge, texts: Sequence[str], readings: Sequence[Reading]
    ) -> list[Reading]:
        if any("shuttle" in text and "Hongqiao" in text for text in texts):
            raise RuntimeError("the intent model broke on the line read in context")
        return finish(knowledge, texts, readings)

    monkeypatch.setattr(Knowledge, "finish", failing)
    ctx = hotel.say("and does it go to Hongqiao?", when="2026-11-24 10:01")
    assert ctx.decision is not None and ctx.continues_entry is None
    assert not any(r.startswith("continues") for r in ctx.decision.reasons), ctx.decision.reasons
    assert any(r.startswith("names Hongqiao") for r in ctx.decision.reasons)


def test_a_new_topic_in_a_full_sentence_is_read_alone(hotel: Harness) -> None:
    hotel.say("早餐几点开始供应", when="2026-11-24 10:00")
    ctx = hotel.say("请问你们酒店可以带狗一起入住吗，需要额外付费吗", when="2026-11-24 10:02")
    assert ctx.decision is not None and ctx.decision.faq_id == "pets", ctx.decision
    assert not _context_reasons(ctx.decision.reasons)


def test_a_follow_up_after_the_idle_window_is_read_alone(hotel: Harness) -> None:
    hotel.say("早餐几点开始供应", when="2026-11-24 10:00")
    assert hotel.pipeline.config.conversation.idle_minutes < 60
    ctx = hotel.say("那周末呢", when="2026-11-24 11:00")
    assert ctx.decision is not None
    assert not _context_reasons(ctx.decision.reasons)
    assert ctx.decision.faq_id != "breakfast"


def test_another_customers_line_is_not_context(hotel: Harness) -> None:
    hotel.say("早餐几点开始供应", user="a", when="2026-11-24 10:00")
    ctx = hotel.say("那周末呢", user="b", when="2026-11-24 10:01")
    assert ctx.decision is not None and not _context_reasons(ctx.decision.reasons)


@pytest.mark.parametrize(
    "text",
    ["那周末呢", "and the tandem?", "还有儿童座椅吗", "what about a bigger frame", "它能折叠吗"],
)
def test_elliptical_lines(text: str) -> None:
    assert elliptical(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "我上周在你们店买的山地车刹车片磨损得很厉害需要更换",
        "Can I rent an electric bike for the whole weekend and return it on Monday morning?",
    ],
)
def test_full_sentences_stand_alone(text: str) -> None:
    assert elliptical(text) is None
