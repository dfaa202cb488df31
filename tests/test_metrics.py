"""Every metric against numbers worked out by hand from the known week in
tests/support/metrics_history.py (its docstring is the plan the numbers come from), plus the pure
arithmetic on values written out here."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.content.config import Config, load_config
from bot.hours.schedule import load_schedules
from bot.metrics.arithmetic import (
    csat,
    distribution,
    handling_spells,
    nps,
    open_seconds,
    percentile,
    rate,
)
from bot.metrics.figures import Figures, figures, group_identical
from bot.metrics.periods import day_of, week_of
from bot.metrics.weekly import load, settings_for
from bot.store.metric_reads import TicketEventFact
from bot.understanding.encoders import MemoEncoder
from tests.support.metrics_history import History, build
from tests.support.shop import FIXTURE, SHANGHAI, at

WEEK = week_of(date(2026, 11, 25), SHANGHAI)
NOW = at("2026-11-30 09:30")


@pytest.fixture(scope="module")
def week(encoder: MemoEncoder, tmp_path_factory: pytest.TempPathFactory) -> History:
    shop = tmp_path_factory.mktemp("metrics") / "shop"
    shutil.copytree(FIXTURE, shop, ignore=shutil.ignore_patterns("var"))
    return build(load_config(shop / "config.toml"), encoder)


def _figures(history: History, period=WEEK, **only: object) -> Figures:  # type: ignore[no-untyped-def]
    pipeline = history.harness.pipeline
    settings = settings_for(pipeline.config, pipeline.knowledge.schedules, NOW)
    with pipeline.store.engine.connect() as conn:
        facts = load(conn, period, settings.reopen_window)
    return figures(facts.only(**only) if only else facts, period, settings)  # type: ignore[arg-type]


def _check_week(f: Figures) -> None:
    # 60×2 FAQ on Tuesday + 20 on Wednesday + h1 4 (转人工, 5, 10, reopen) + h2 3 + g 10 + b 20
    # + h3 1 + h4 1 + h5 3 + n 10
    assert f.customer_messages == 192
    assert f.after_hours_messages == 31  # b 20 + h3 1 + n 10
    # every message got a bot reply: 12 each sent after 1, 2, 3, 4 s, the other 144 at once;
    # sorted, ranks 145–156 are 1 s, 157–168 2 s, 169–180 3 s: p90 = rank ceil(172.8) = 173
    assert (f.frt_bot.count, f.frt_bot.median, f.frt_bot.p90) == (192, 0.0, 3.0)
    assert f.frt_bot.mean == pytest.approx(120 / 192)
    # f 60 + f 20 (Wednesday) + h1 2 (13:10 is a new one) + h2 + g 10 + b 20 + h3 + h4 + h5 + n 10
    assert f.conversations == 126
    assert (f.engaged_conversations, f.contained_conversations) == (126, 120)
    assert f.containment == pytest.approx(120 / 126)
    assert (f.customers, f.repeat_customers) == (105, 21)  # f00–f19 and h1 came twice
    assert f.complaint_rate == pytest.approx(1 / 126)
    # h1's reopening does not make it two tickets
    assert (f.tickets, f.reopened_tickets, f.reopenings, f.complaint_tickets) == (5, 1, 1, 1)
    # the human's first reply, never the bot's acknowledgement at 11:00: h1 11:00→11:03 180 s,
    # h2 50 s, h3 09:00 (released)→09:04 240 s, h4 Wed 17:55→Thu 09:06 54,660 s, h5 120 s
    assert f.frt_human.count == 5
    assert (f.frt_human.median, f.frt_human.p90) == (180.0, 54660.0)
    assert f.frt_human.mean == pytest.approx((180 + 50 + 240 + 54660 + 120) / 5)
    # business hours: h4 counts 17:55–18:00 and 09:00–09:06, 660 s
    assert (f.frt_human_business.median, f.frt_human_business.p90) == (180.0, 660.0)
    assert f.frt_human_business.mean == pytest.approx((180 + 50 + 240 + 660 + 120) / 5)
    assert f.frt_agents == f.frt_human_business
    # handling: h1 11:02→11:10 + 13:10→13:20 = 1,080 s; h2 320; h3 540; h4 660; h5 180
    assert f.resolved_tickets == 5
    assert (f.aht.median, f.aht.p90, f.aht.mean) == (540.0, 1080.0, 556.0)
    assert (f.fcr_counted, f.fcr_resolved) == (5, 4)  # h1 reopened
    assert sorted(f.csat_scores) == [2, 4, 5] and sorted(f.nps_scores) == [3, 8, 10]
    assert f.csat == pytest.approx(2 / 3) and f.csat_mean == pytest.approx(11 / 3)
    assert f.nps == 0  # one promoter (10), one detractor (3), one passive (8)
    # SLA: h1 due 11:02 answered 11:03 ✗, h2 ✓, h3 due 09:02 answered 09:04 ✗, h4 ✗, h5 due
    # 10:02 answered 10:02 ✓
    assert (f.sla_counted, f.sla_met) == (5, 2)
    assert (f.transfer_counted, f.transfer_met) == (5, 4)  # h4 claimed the next morning
    assert f.breaches == 1  # the care job marked h1 at 11:02:30


def test_every_figure_of_the_week_matches_the_hand_count(week: History) -> None:
    _check_week(_figures(week))


def test_the_week_before_and_each_day(week: History) -> None:
    before = _figures(week, WEEK.before())
    assert before.customer_messages == 8  # p0–p4, and p9's 转人工, 3, 7
    assert (before.conversations, before.contained_conversations) == (6, 5)
    assert (before.frt_human.median, before.aht.mean) == (120.0, 240.0)
    assert before.csat_scores == (3,) and before.nps_scores == (7,) and before.nps == 0
    days = {d.start.date().isoformat(): _figures(week, d) for d in WEEK.days()}
    assert len(days) == 7
    assert {k: d.customer_messages for k, d in days.items()} == {
        "2026-11-23": 0,
        "2026-11-24": 158,  # f 120, h1 4, h2 3, g 10, b 20, h3 1
        "2026-11-25": 21,  # f 20, h4 1
        "2026-11-26": 3,  # h5
        "2026-11-27": 0,
        "2026-11-28": 10,  # n
        "2026-11-29": 0,
    }
    tuesday = days["2026-11-24"]
    assert tuesday.csat_scores == (5, 2) and tuesday.nps == 0  # 10 and 3
    assert tuesday.after_hours_messages == 21  # b 20, h3 1
    assert days["2026-11-26"].nps == 0 and days["2026-11-26"].csat_mean == 4
    # h4 was answered on Thursday: its first response counts there
    assert days["2026-11-26"].frt_human.count == 2


def test_per_channel_queue_and_agent(week: History) -> None:
    assert _figures(week, channel="wechat").customer_messages == 192
    assert _figures(week, channel="telegram").customer_messages == 0
    complaints = _figures(week, queue="complaints")
    assert (complaints.tickets, complaints.frt_human.median, complaints.aht.mean) == (1, 50, 320)
    assert complaints.customer_messages == 0  # messages have no queue
    alice = _figures(week, agent_id=week.alice.id)
    assert alice.tickets == 3 and alice.aht.mean == pytest.approx((1080 + 540 + 660) / 3)
    assert alice.csat_scores == (5,) and (alice.fcr_counted, alice.fcr_resolved) == (3, 2)
    bob = _figures(week, agent_id=week.bob.id)
    assert bob.tickets == 2 and bob.frt_human.median == 85  # 50 and 120
    assert bob.csat_mean == 3 and bob.nps == -50  # 3 and 8: one detractor of two


def test_without_business_hours_agents_are_held_to_the_wall_clock(week: History) -> None:
    pipeline = week.harness.pipeline
    pipeline.config.reports.business_hours = False
    try:
        f = _figures(week)
    finally:
        pipeline.config.reports.business_hours = True
    assert f.frt_agents == f.frt_human and f.frt_agents.p90 == 54660


def test_bot_lines_never_count_as_a_human_first_response(week: History) -> None:
    """h1 got the bot's handoff acknowledgement at 11:00 and the care job's apology; its first
    response is Alice's reply at 11:03."""
    from bot.store.schema import messages

    with week.harness.pipeline.store.engine.connect() as conn:
        bot_lines = conn.execute(
            sa.select(sa.func.count()).where(
                messages.c.user_id == "h1",
                messages.c.direction == "out",
                messages.c.agent_id.is_(None),
                messages.c.at < at("2026-11-24 11:03"),
            )
        ).scalar()
    assert bot_lines and bot_lines >= 1
    h1 = _figures(week, period=day_of(date(2026, 11, 24), SHANGHAI), agent_id=week.alice.id)
    assert (h1.frt_human.count, h1.frt_human.median) == (1, 180.0)


@pytest.mark.slow
def test_the_same_history_on_postgresql(
    config: Config, encoder: MemoEncoder, postgres_url: str
) -> None:
    history = build(config, encoder, postgres_url)
    try:
        _check_week(_figures(history))
    finally:
        history.harness.pipeline.store.close()


# --- the arithmetic on values written out here ------------------------------------------------


def test_distribution_median_and_nearest_rank_p90() -> None:
    d = distribution([10, 1, 7, 3])
    assert (d.count, d.median, d.p90, d.mean) == (4, 5.0, 10.0, 5.25)
    assert percentile(list(range(1, 11)), 90) == 9  # rank 9 of 10
    assert distribution([]).median is None and rate(0, 0) is None and rate(1, 4) == 0.25


def test_csat_and_nps() -> None:
    assert csat([5, 4, 3, 1]) == (0.5, 3.25)
    assert nps([10, 9, 8, 7, 6, 0]) == pytest.approx(100 * (2 - 2) / 6)
    assert nps([10, 10, 9, 3]) == 50
    assert csat([]) == (None, None) and nps([]) is None


def test_closed_time_is_not_held_against_agents() -> None:
    default = load_schedules(FIXTURE / "schedules")["default"]
    # Friday 17:50 → Monday 09:10: 10 minutes on Friday, 10 on Monday
    assert open_seconds(default, at("2026-11-27 17:50"), at("2026-11-30 09:10")) == 1200
    # written at night, answered at 09:05: five minutes
    assert open_seconds(default, at("2026-11-24 23:00"), at("2026-11-25 09:05")) == 300
    assert open_seconds(default, at("2026-11-24 10:00"), at("2026-11-24 10:02")) == 120
    # 2026-12-31 closes at 15:00; 2027-01-01 is a holiday
    assert open_seconds(default, at("2026-12-31 14:00"), at("2027-01-04 09:01")) == 3660


def test_handling_is_summed_over_every_resolution() -> None:
    t0 = datetime(2026, 11, 24, 2, 0, tzinfo=SHANGHAI)

    def e(kind: str, minutes: int, agent: int | None = None, **data: object) -> TicketEventFact:
        return TicketEventFact(kind, t0 + timedelta(minutes=minutes), agent, dict(data))

    events = [
        e("created", 0),
        e("claimed", 2, 1),
        e("replied", 3, 1),
        e("resolved", 10, 1),
        e("reopened", 60, to="general"),  # back to the queue: the spell starts at the claim
        e("claimed", 70, 2),
        e("resolved", 75, 2),
        e("reopened", 100, to="Alice"),  # straight back to its agent
        e("resolved", 104, 1),
    ]
    spells = handling_spells(events, {"general", "tech"})
    assert [(s.seconds, s.agent_id) for s in spells] == [(480, 1), (300, 2), (240, 1)]
    assert handling_spells([e("created", 0), e("resolved", 5, 3)], {"general"}) == []


def test_unanswered_questions_grouped_by_identical_text() -> None:
    clusters = group_identical(
        ["有优惠券吗", "能开专票吗", "有优惠券吗 ", "有优惠券吗", "能开专票吗", "x"]
    )
    assert [(label, n) for label, n, _ in clusters] == [
        ("有优惠券吗", 3),
        ("能开专票吗", 2),
        ("x", 1),
    ]
