"""What agents do in the console, through the real application and Desk on SQLite (no
browser): a reply with a forbidden phrase is held until "send anyway", a ticket someone else
took answers 409, a transfer keeps its note in the history, the language toggle, and every
ticket text escaped."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.content.config import Config, load_config
from bot.domain.agent import Role
from bot.domain.messages import Inbound
from bot.pipeline.knowledge import Knowledge
from bot.understanding.encoders import MemoEncoder
from tests.support.console import CSRF, Console, open_console
from tests.support.shop import pin_thresholds


@pytest.fixture
async def console(
    config: Config, encoder: MemoEncoder, shop_knowledge: Knowledge, tmp_path: Path
) -> AsyncIterator[Console]:
    opened = await open_console(config, encoder, tmp_path, knowledge=shop_knowledge)
    opened.add_agent("alice")
    opened.add_agent("bob")
    opened.add_agent("sam", Role.SUPERVISOR)
    yield opened
    await opened.client.close()
    opened.pipeline.store.close()


def _customer_says(console: Console, text: str, n: int = 1) -> None:
    console.pipeline.handle(Inbound("webhook", f"m{n}", "cust", "cust", text, console.clock.now()))


async def _token(console: Console) -> str:
    page = await console.client.get("/console/")
    found = CSRF.search(await page.text())
    assert found
    return found.group(1)


def _transcript(page: str) -> str:
    found = re.search(r'<ol class="messages" id="transcript">(.*?)</ol>', page, re.S)
    assert found, page[:300]
    return found.group(1)


async def test_a_forbidden_phrase_is_held_until_send_anyway(console: Console) -> None:
    _customer_says(console, "人工客服")
    assert (await console.log_in("alice")).status == 303
    token = await _token(console)
    claimed = await console.client.post(
        "/console/claim-next", data={"csrf": token}, allow_redirects=False
    )
    assert claimed.status == 303
    ticket_page = claimed.headers["Location"]
    ticket_id = ticket_page.rsplit("/", 1)[1]

    # while typing: the warnings, from the script's request (header token)
    check = await console.client.post(
        f"/console/tickets/{ticket_id}/check",
        data={"text": "这个我也不知道"},
        headers={"X-CSRF-Token": token, "HX-Request": "true"},
    )
    assert check.status == 200 and "<mark>不知道</mark>" in await check.text()

    held = await console.client.post(
        f"/console/tickets/{ticket_id}/reply",
        data={"csrf": token, "text": "这个我也不知道"},
        allow_redirects=False,
    )
    page = await held.text()
    assert held.status == 200 and 'id="reply-held"' in page and 'id="send-anyway"' in page
    assert "这个我也不知道</textarea>" in page  # the draft is kept
    assert "这个我也不知道" not in _transcript(await (await console.client.get(ticket_page)).text())

    sent = await console.client.post(
        f"/console/tickets/{ticket_id}/reply",
        data={"csrf": token, "text": "这个我也不知道", "confirmed": "1"},
        allow_redirects=False,
    )
    assert sent.status == 303
    after = await (await console.client.get(ticket_page)).text()
    assert "这个我也不知道" in _transcript(after)
    assert "回复已发送。" in after

    # too long: nothing is sent and nothing is cut; the draft comes back with the reason
    long = "很长的回复" * 900
    refused = await console.client.post(
        f"/console/tickets/{ticket_id}/reply", data={"csrf": token, "text": long}
    )
    page = await refused.text()
    assert refused.status == 400 and "4500 / 4000" in page and f"{long}</textarea>" in page
    assert 'id="send-anyway"' not in page


async def test_someone_elses_ticket_and_a_transfer_with_a_note(console: Console) -> None:
    _customer_says(console, "人工客服")
    (ticket,) = console.pipeline.store.tickets("general")
    assert (await console.log_in("alice")).status == 303
    alice_token = await _token(console)
    assert (
        await console.client.post(
            f"/console/tickets/{ticket.id}/claim", data={"csrf": alice_token}, allow_redirects=False
        )
    ).status == 303
    await console.client.post("/console/logout", data={"csrf": alice_token})

    assert (await console.log_in("bob")).status == 303
    late = await console.client.post(
        f"/console/tickets/{ticket.id}/claim", data={"csrf": await _token(console)}
    )
    assert late.status == 409
    assert "工单状态已变化" in await late.text()
    await console.client.post("/console/logout", data={"csrf": await _token(console)})

    assert (await console.log_in("alice")).status == 303
    moved = await console.client.post(
        f"/console/tickets/{ticket.id}/transfer",
        data={
            "csrf": await _token(console),
            "target": "queue:complaints",
            "note": "客户情绪激动 <b>请优先</b>",
        },
        allow_redirects=False,
    )
    assert moved.status == 303 and moved.headers["Location"] == "/console/"
    await console.client.post("/console/logout", data={"csrf": await _token(console)})

    assert (await console.log_in("sam")).status == 303
    page = await (await console.client.get(f"/console/tickets/{ticket.id}")).text()
    assert "客户情绪激动 &lt;b&gt;请优先&lt;/b&gt;" in page  # the note, escaped
    assert "<b>请优先</b>" not in page


async def test_customer_text_is_escaped(console: Console) -> None:
    _customer_says(console, "人工客服")
    _customer_says(console, "<img src=x onerror=alert(1)> 在吗", 2)
    (ticket,) = console.pipeline.store.tickets("general")
    assert (await console.log_in("sam")).status == 303
    for path in ("/console/", f"/console/tickets/{ticket.id}"):
        page = await (await console.client.get(path)).text()
        assert "<img src=x" not in page
    page = await (await console.client.get(f"/console/tickets/{ticket.id}")).text()
    assert "&lt;img src=x onerror=alert(1)&gt; 在吗" in page


async def test_language_follows_the_browser_then_the_toggle(console: Console) -> None:
    english = await console.client.get("/console/login", headers={"Accept-Language": "en-US"})
    assert "Agent login" in await english.text()
    chinese = await console.client.get(
        "/console/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
    )
    assert "客服登录" in await chinese.text()

    token = CSRF.search(await chinese.text())
    assert token
    switched = await console.client.post(
        "/console/language",
        data={"csrf": token.group(1), "lang": "en", "next": "//evil.example/"},
        allow_redirects=False,
    )
    assert switched.status == 303 and switched.headers["Location"] == "/console/"
    chosen = await console.client.get("/console/login", headers={"Accept-Language": "zh-CN"})
    assert "Agent login" in await chosen.text()


async def test_the_supervisor_page_shows_last_weeks_figures_and_links_the_report(
    console: Console,
) -> None:
    from bot.metrics.periods import week_of
    from bot.metrics.writer import write_week

    _customer_says(console, "人工客服")
    pipeline = console.pipeline
    schedules = pipeline.knowledge.schedules
    zone = schedules["default"].zone
    week = week_of(console.clock.now().astimezone(zone).date(), zone)
    write_week(pipeline.config, pipeline.store, schedules, week, console.clock.now())

    assert (await console.log_in("sam")).status == 303
    page = await (await console.client.get("/console/supervisor")).text()
    stem = f"week-{week.start.date().isoformat()}"
    assert f'href="/console/reports/{stem}"' in page
    assert "客户消息</dt><dd>1</dd>" in page  # the week's one customer message
    report = await console.client.get(f"/console/reports/{stem}")
    assert report.status == 200 and "<svg" in await report.text()
    assert "script-src" not in report.headers["Content-Security-Policy"]
    assert (await console.client.get("/console/reports/..%2Fconsole")).status == 404
    assert (await console.client.get("/console/reports/week-2001-01-01")).status == 404

    token = await _token(console)
    await console.client.post("/console/logout", data={"csrf": token})
    assert (await console.log_in("alice")).status == 303
    assert (await console.client.get(f"/console/reports/{stem}")).status == 403


async def test_the_clock_on_a_waiting_ticket_says_what_it_counts(console: Console) -> None:
    """Finding 4 of issue 20's trial: the number on each row of the queue had no label; it is
    the time left to the first-response deadline but read as the customer's wait."""
    _customer_says(console, "人工客服")
    assert (await console.log_in("alice")).status == 303
    for language, label in (("zh-CN", "首响时限"), ("en-US", "Reply due")):
        page = await console.client.get("/console/", headers={"Accept-Language": language})
        row = re.search(
            r'<li class="line[^"]*" data-ticket="\d+">(.*?)</li>', await page.text(), re.S
        )
        assert row, language
        side = row.group(1).split('class="line-side"', 1)[1]
        assert re.search(
            rf'<span class="due-label">{label}</span><span class="clock" [^>]*data-left="', side
        ), side


async def test_a_suggestion_picked_by_its_number_reads_as_the_question_picked(
    shop: Path, encoder: MemoEncoder, tmp_path: Path
) -> None:
    # the web chat's button sends the number and shows the question; the console showed "1"
    config = load_config(pin_thresholds(shop))
    console = await open_console(config, encoder, tmp_path)
    try:
        console.add_agent("sam", Role.SUPERVISOR)
        _customer_says(console, "发漂怎么开")
        _customer_says(console, "1", 2)
        _customer_says(console, "人工客服", 3)
        (ticket,) = console.pipeline.store.tickets("general")
        assert (await console.log_in("sam")).status == 303
        page = await (await console.client.get(f"/console/tickets/{ticket.id}")).text()
        lines = re.findall(
            r'<li class="msg customer">\s*<div class="bubble">(.*?)</div>', _transcript(page), re.S
        )
        assert [re.sub(r"<[^>]+>", "", line) for line in lines] == [
            "发漂怎么开",
            "1 · 怎么开发票",
            "人工客服",
        ]
    finally:
        await console.client.close()
        console.pipeline.store.close()
