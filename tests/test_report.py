"""`bot report --week` on the known week (tests/support/metrics_history.py): the JSON's numbers and the
change against the week before, a page that needs nothing from outside and renders in headless
Chromium, and the scheduler's Monday job writing it once."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from bot.cli.main import main
from bot.content.config import load_config
from bot.jobs.leader import Leadership
from bot.jobs.scheduler import weekly_report_if_leading
from bot.understanding.encoders import MemoEncoder
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.support.metrics_history import History, build
from tests.support.shop import FIXTURE, at

pytestmark = pytest.mark.slow  # builds a week of service

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def week(encoder: MemoEncoder, tmp_path_factory: pytest.TempPathFactory) -> History:
    shop = tmp_path_factory.mktemp("report") / "shop"
    shutil.copytree(FIXTURE, shop, ignore=shutil.ignore_patterns("var"))
    return build(load_config(shop / "config.toml"), encoder)


def _report(history: History, out: Path, lang: str = "en") -> tuple[Path, dict]:  # type: ignore[type-arg]
    config = history.harness.pipeline.config
    args = ["--config", str(config.path), "report", "--week", "--at", "2026-11-26"]
    code = main([*args, "--out", str(out), "--lang", lang])
    assert code == 0
    html = out / "week-2026-11-23.html"
    return html, json.loads((out / "week-2026-11-23.json").read_text(encoding="utf-8"))


def test_the_report_json_has_the_hand_counted_numbers_and_the_change(
    week: History, tmp_path: Path
) -> None:
    _, report = _report(week, tmp_path)
    assert report["week"] == {"start": "2026-11-23", "end": "2026-11-29", "zone": "Asia/Shanghai"}
    summary = report["summary"]
    assert summary["customer_messages"] == 192 and summary["tickets"] == 5
    assert summary["containment"] == {"rate": 0.9524, "contained": 120, "with_customer_text": 126}
    assert summary["csat"] == {"rate": 0.6667, "mean": 3.6667, "answers": 3}
    change = report["change"]
    # 192 messages against 8: 23 times more (+2,300%)
    assert change["customer_messages"] == {
        "now": 192,
        "before": 8,
        "change": 23.0,
        "kind": "relative",
        "lower_is_better": False,
    }
    # containment 120/126 against 5/6, in points
    assert change["containment"]["change"] == pytest.approx(120 / 126 - 5 / 6, abs=1e-4)
    assert change["aht_mean"]["change"] == pytest.approx((556 - 240) / 240, abs=1e-4)
    assert [d["customer_messages"] for d in report["days"]] == [0, 158, 21, 3, 0, 10, 0]
    assert [d["csat"]["mean"] for d in report["days"]] == [None, 3.5, None, 4.0, None, None, None]
    grid = report["volume_by_hour"]
    assert sum(map(sum, grid)) == 192
    assert grid[1][10] == 120  # Tuesday 10:00–10:59: f00–f59, two messages each
    assert grid[5][20] == 10  # Saturday 20:00: n00–n09
    assert report["frt_histogram"]["bot"] == [
        ["<1s", 144],
        ["1–2s", 12],
        ["2–5s", 36],
        ["5–10s", 0],
        ["10–30s", 0],
        ["≥30s", 0],
    ]
    # business hours, buckets [0, 60) [60, 120) [120, 300) [300, 900) …: 50 | – | 120, 180, 240 | 660
    assert [n for _, n in report["frt_histogram"]["human"]] == [1, 0, 3, 1, 0, 0]
    assert report["top_faq"][:2] == [
        {"faq_id": "invoice", "question": "怎么开发票", "answers": 60},
        {"faq_id": "shipping-time", "question": "多久能发货？", "answers": 60},
    ] or report["top_faq"][:2] == [
        {"faq_id": "shipping-time", "question": "多久能发货？", "answers": 60},
        {"faq_id": "invoice", "question": "怎么开发票", "answers": 60},
    ]
    # grouped by the bot's encoder as `bot faq gaps` does: ten customers (n00–n09) asking one
    # thing, in one wording (so no further examples)
    assert report["unanswered"] == [{"label": "月亮上有兔子吗", "count": 10, "examples": []}]
    assert [(b["ticket"], b["breach"], b["agent"]) for b in report["breaches"]] == [
        (week.tickets["h1"], "first_response", "Alice")
    ]
    agents = {a["agent"]: a for a in report["by_agent"]}
    assert agents["Alice"]["tickets"] == 3 and agents["Bob"]["csat"]["mean"] == 3.0
    assert report["by_queue"]["complaints"]["tickets"] == 1
    assert report["by_channel"]["wechat"]["conversations"] == 126
    if os.environ.get("BOT_SCREENSHOTS") == "1":
        (ROOT / "docs" / "report-example.json").write_text(
            json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )


def test_clusters_from_elsewhere_replace_the_simple_grouping(week: History) -> None:
    from bot.metrics.periods import week_of
    from bot.metrics.weekly import week_report

    pipeline = week.harness.pipeline
    schedules = pipeline.knowledge.schedules
    with pipeline.store.engine.connect() as conn:
        report = week_report(
            conn,
            pipeline.config,
            schedules,
            week_of(at("2026-11-25 00:00").date(), schedules["default"].zone),
            at("2026-11-30 09:30"),
            clusters=[("闲聊", 37, ["月亮上有兔子吗"])],
        )
    assert report["unanswered"] == [{"label": "闲聊", "count": 37, "examples": ["月亮上有兔子吗"]}]


def test_the_page_is_self_contained_with_labels_in_either_language(
    week: History, tmp_path: Path
) -> None:
    html, _ = _report(week, tmp_path / "zh", "zh")
    page = html.read_text(encoding="utf-8")
    assert "客服周报" in page and "机器人独立解决率" in page and "▲" in page
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert "src=" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert page.count("<svg") >= 6
    english, _ = _report(week, tmp_path / "en", "en")
    assert "Weekly service report" in english.read_text(encoding="utf-8")


def test_the_leader_writes_last_weeks_report_once_after_monday_nine(
    week: History, tmp_path: Path
) -> None:
    pipeline = week.harness.pipeline
    config = pipeline.config
    config.reports.dir = str(tmp_path / "reports")
    leader = cast(Leadership, SimpleNamespace(is_leader=True))
    follower = cast(Leadership, SimpleNamespace(is_leader=False))
    saved = pipeline.clock.now()
    try:
        pipeline.clock.set(at("2026-11-30 08:59"))  # type: ignore[attr-defined]
        assert weekly_report_if_leading(pipeline, leader) is None
        pipeline.clock.set(at("2026-11-30 09:00"))  # type: ignore[attr-defined]
        assert weekly_report_if_leading(pipeline, follower) is None
        written = weekly_report_if_leading(pipeline, leader)
        assert written == tmp_path / "reports" / "week-2026-11-23.html"
        assert (tmp_path / "reports" / "week-2026-11-23.json").exists()
        stamp = written.stat().st_mtime_ns
        pipeline.clock.set(at("2026-12-02 15:00"))  # type: ignore[attr-defined]
        assert weekly_report_if_leading(pipeline, leader) is None  # already there
        assert written.stat().st_mtime_ns == stamp
    finally:
        pipeline.clock.set(saved)  # type: ignore[attr-defined]
        config.reports.dir = "var/reports"


@pytest.mark.browser
def test_the_report_renders_in_headless_chromium(week: History, tmp_path: Path) -> None:
    require_browser()
    from playwright.sync_api import sync_playwright

    html, _ = _report(week, tmp_path, "zh")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(html.as_uri())
            assert page.locator("h1").inner_text() == "客服周报"
            assert page.locator("svg").count() >= 6
            assert page.locator(".card").count() == 16
            heat = page.locator("svg[aria-label='咨询量：星期 × 小时'] rect").count()
            assert heat == 7 * 24
            assert [u for u in requests if not u.startswith("file:")] == []
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            if os.environ.get("BOT_SCREENSHOTS") == "1":
                shutil.copy(shot, ROOT / "docs" / "report.png")
        finally:
            browser.close()
