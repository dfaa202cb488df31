"""The console for a full day's work (issue 20, "Operating it"): waits said as people say them
("2 天 3 小时", not `51:05:00`), `/` leading to the console, the resolved and closed lists,
search, a customer's earlier tickets beside the current one, and the opt-in notification of a
new ticket. On the real application and store; what a page shows is read in headless Chromium."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Locator, Page, async_playwright, expect

from bot.content.config import Config
from bot.domain.agent import Agent, Role
from bot.domain.messages import Inbound
from bot.pipeline.knowledge import Knowledge
from bot.store import tickets
from bot.understanding.encoders import MemoEncoder
from bot.web.console.durations import spoken
from bot.web.console.pages import PAGE
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.support.console import PASSWORD, Console, open_console

#: how long the browser waits for the live page to change (a busy 2-core machine)
LIVE_MS = 20_000


@pytest.fixture
async def console(
    config: Config, encoder: MemoEncoder, shop_knowledge: Knowledge, tmp_path: Path
) -> AsyncIterator[Console]:
    opened = await open_console(config, encoder, tmp_path, knowledge=shop_knowledge)
    opened.add_agent("sam", Role.SUPERVISOR)
    opened.add_agent("gina", queues=("general",))
    yield opened
    await opened.client.close()
    opened.pipeline.store.close()


def _customer_says(console: Console, user: str, text: str, n: int) -> int | None:
    """The customer's message through the pipeline; the ticket it opened, if it did."""
    ctx = console.pipeline.handle(
        Inbound("webhook", f"m{n}", user, user, text, console.clock.now())
    )
    return ctx.decision.ticket_id if ctx.decision is not None else None


async def _log_in(page: Page, base: str, login: str) -> None:
    await page.goto(f"{base}/console/login")
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("#login-button")
    await expect(page.locator("#logout")).to_be_visible()


async def _ids(lines: Locator) -> list[int]:
    """The ticket numbers of a list's lines, top to bottom."""
    return [int(x) for x in await lines.evaluate_all("ls => ls.map(l => l.dataset.ticket)")]


def _base(console: Console) -> str:
    return str(console.client.make_url("")).rstrip("/")


@pytest.mark.parametrize(
    ("seconds", "zh", "en"),
    [
        (0, "刚刚", "just now"),
        (59, "刚刚", "just now"),
        (60, "1 分钟", "1 min"),
        (5 * 60 + 59, "5 分钟", "5 min"),
        (3600, "1 小时", "1 h"),
        (3 * 3600 + 5 * 60, "3 小时 5 分钟", "3 h 5 min"),
        (2 * 86400, "2 天", "2 d"),
        (2 * 86400 + 3 * 3600 + 59 * 60, "2 天 3 小时", "2 d 3 h"),
        # the wait the issue saw as 1384:19:22
        (1384 * 3600 + 19 * 60 + 22, "57 天 16 小时", "57 d 16 h"),
    ],
)
def test_waits_are_said_in_days_hours_and_minutes(seconds: int, zh: str, en: str) -> None:
    assert spoken(seconds, "zh") == zh
    assert spoken(seconds, "en") == en


def test_under_a_minute_ahead_is_not_just_now() -> None:
    assert spoken(30, "zh", ahead=True) == "不到 1 分钟"
    assert spoken(30, "en", ahead=True) == "< 1 min"
    assert spoken(None, "en") == "–"


@pytest.mark.browser
async def test_the_oldest_wait_reads_in_days_and_hours_in_the_browser(console: Console) -> None:
    require_browser()

    _customer_says(console, "cust", "人工客服", 1)
    console.clock.advance(timedelta(days=2, hours=3, minutes=5))
    base = _base(console)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(locale="zh-CN")
            await _log_in(page, base, "sam")
            wait = page.locator('[data-queue="general"] .clock[data-wait]')
            # after the page's script has counted on for a moment, it still says it so
            await page.wait_for_timeout(1500)
            await expect(wait).to_have_text("2 天 3 小时")
            await page.goto(f"{base}/console/supervisor")
            await expect(page.locator(".clock[data-wait]").first).to_have_text("2 天 3 小时")
            await page.click("#switch-language")
            await page.goto(f"{base}/console/")
            await page.wait_for_timeout(1500)
            await expect(wait).to_have_text("2 d 3 h")
        finally:
            await browser.close()


async def test_the_root_address_leads_to_the_console(console: Console) -> None:
    answer = await console.client.get("/", allow_redirects=False)
    assert answer.status == 302
    assert answer.headers["Location"] == "/console/"
    # followed, a logged-out browser lands on the console's login page
    followed = await console.client.get("/")
    assert followed.status == 200 and followed.url.path == "/console/login"


@pytest.mark.browser
async def test_resolved_and_closed_lists_newest_first_with_more(console: Console) -> None:
    require_browser()
    desk = console.desk()
    sam = console.add_agent("rita", Role.SUPERVISOR)
    general = []
    for n in range(PAGE + 2):
        ticket = _customer_says(console, f"g{n}", "人工客服", n)
        assert ticket is not None
        general.append(ticket)
    complaint = _customer_says(console, "angry", "我要投诉你们", 100)
    assert complaint is not None
    for ticket in [*general, complaint]:
        console.clock.advance(timedelta(minutes=1))
        desk.claim(sam, ticket)
        desk.resolve(sam, ticket)
    # the first one resolved passes the reopen time and closes
    first_done = console.clock.now() - timedelta(minutes=len(general))
    with console.pipeline.store.transaction() as tx:
        closed = tickets.close_resolved(tx, first_done + timedelta(seconds=30), console.clock.now())
    assert closed == 1
    base = _base(console)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(locale="zh-CN")
            await _log_in(page, base, "gina")
            await page.click("#nav-done")
            await expect(page.locator("#tab-resolved")).to_have_attribute("aria-current", "page")
            lines = page.locator("#done-tickets [data-ticket]")
            await expect(lines).to_have_count(PAGE)
            # newest first: the last resolved general ticket on top; gina works general only,
            # so the complaint (resolved last) is not hers to see
            assert await _ids(lines) == general[::-1][:PAGE]
            await page.click("#more")
            await expect(lines).to_have_count(PAGE + 1)
            await expect(page.locator("#more")).to_have_count(0)
            assert await _ids(lines) == general[:0:-1]
            await page.click("#tab-closed")
            await expect(lines).to_have_count(1)
            await expect(lines.first).to_have_attribute("data-ticket", str(general[0]))
            await expect(lines.first.locator(".status")).to_have_text("已关闭")

            boss = await browser.new_page(locale="en-US")
            await _log_in(boss, base, "sam")
            await boss.goto(f"{base}/console/done?status=resolved")
            first = boss.locator("#done-tickets [data-ticket]").first
            await expect(first).to_have_attribute("data-ticket", str(complaint))
            await expect(first.locator(".status")).to_have_text("resolved")
        finally:
            await browser.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def either(
    request: pytest.FixtureRequest,
    config: Config,
    encoder: MemoEncoder,
    shop_knowledge: Knowledge,
    tmp_path: Path,
) -> AsyncIterator[Console]:
    """The console on SQLite and on PostgreSQL."""
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    opened = await open_console(config, encoder, tmp_path, store_url=url, knowledge=shop_knowledge)
    yield opened
    await opened.client.close()
    opened.pipeline.store.close()


def _search_scene(console: Console) -> dict[str, int]:
    """Three customers' tickets: one with a literal `%`, one with a phone number (stored
    masked), and a complaint in a queue agents of `general` do not work."""
    found = {}
    for n, (user, first, then) in enumerate(
        [
            ("Alice_01", "人工客服", "订单 ABC-100% 没到"),
            ("bob", "人工客服", "电话 13812345678 请回电"),
            ("carol", "我要投诉你们", "abc 还是没到"),
        ]
    ):
        ticket = _customer_says(console, user, first, 10 * n)
        assert ticket is not None, user
        _customer_says(console, user, then, 10 * n + 1)
        found[user] = ticket
    return found


async def test_search_by_words_and_customer_id_as_stored(either: Console) -> None:
    gina = either.add_agent("gina", queues=("general",))
    sam = either.add_agent("sam", Role.SUPERVISOR)
    desk = either.desk()
    scene = _search_scene(either)

    def found(agent: Agent, words: str) -> set[int]:
        return {line.id for line in desk.search(agent, words)}

    alice, bob, carol = scene["Alice_01"], scene["bob"], scene["carol"]
    assert found(sam, "abc-100%") == {alice}  # case-insensitive, `%` as itself
    assert found(sam, "abc") == {alice, carol}
    assert found(gina, "abc") == {alice}  # the complaint is not hers to see
    assert found(sam, "10%") == set()  # not "1, anything, 0"
    assert found(sam, "ABC_100") == set()  # `_` is not "any one character"
    assert found(sam, "ALICE") == {alice}  # the customer's id
    assert found(sam, "ice_0") == {alice}
    assert found(sam, "ice%1") == set()
    # the customer as the console shows them, `channel:id`, as the box's 客户 ID asks
    assert found(sam, "webhook:Alice_01") == {alice}
    assert found(sam, " WEBHOOK:bob ") == {bob}
    assert found(gina, "webhook:carol") == set()  # not hers to see
    assert found(sam, "webchat:bob") == set()  # another channel's bob
    assert found(sam, "webhook:") == set()
    long_id = "visitor-0123456789abcdef"
    frank = _customer_says(either, long_id, "人工客服", 60)
    assert frank is not None
    shown = {line.id: line.customer for line in desk.search(sam, long_id)}
    assert shown[frank].endswith("…")  # cut short, and still found as shown
    assert found(sam, shown[frank]) == {frank}
    # the phone number is stored masked; looking for it finds the masked form
    assert found(sam, "13812345678") == {bob}
    # finding 5 of issue 20's trial: an ID number with a wrong check digit is stored masked
    # because the customer said it was one; typed in full it finds that masked form, and an
    # order number of the same shape stored as it was typed is found as typed
    dave = _customer_says(either, "dave", "人工客服", 40)
    assert dave is not None
    _customer_says(either, "dave", "身份证号 110105195306120027", 41)
    erin = _customer_says(either, "erin", "人工客服", 50)
    assert erin is not None
    _customer_says(either, "erin", "订单号 420106199001019999 还没发货", 51)
    assert found(sam, "110105195306120027") == {dave}
    assert found(sam, "420106199001019999") == {erin}
    assert found(sam, "   ") == set()
    assert desk.ticket_number(sam, f"#{carol}") == carol
    assert desk.ticket_number(sam, str(bob)) == bob
    assert desk.ticket_number(gina, f"#{carol}") is None  # exists, but not hers
    assert desk.ticket_number(sam, "#99999") is None


@pytest.mark.browser
async def test_the_search_box_opens_a_number_and_lists_words(console: Console) -> None:
    require_browser()
    scene = _search_scene(console)
    base = _base(console)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(locale="zh-CN")
            await _log_in(page, base, "gina")
            await page.fill("#search", f"#{scene['bob']}")
            await page.press("#search", "Enter")
            await expect(page).to_have_url(f"{base}/console/tickets/{scene['bob']}")
            await page.fill("#search", "abc")
            await page.press("#search", "Enter")
            results = page.locator("#search-results [data-ticket]")
            await expect(results).to_have_count(1)
            assert await _ids(results) == [scene["Alice_01"]]
            await expect(page.locator("#search")).to_have_value("abc")
            # a number gina may not see opens nothing and lists nothing
            await page.fill("#search", f"#{scene['carol']}")
            await page.press("#search", "Enter")
            await expect(page.locator("#no-results")).to_be_visible()
            await expect(page).to_have_url(re.compile(r"/console/search\?q="))
        finally:
            await browser.close()


@pytest.mark.browser
async def test_a_ticket_shows_the_customers_other_tickets(console: Console) -> None:
    require_browser()
    desk = console.desk()
    sam = console.add_agent("rita", Role.SUPERVISOR)
    first = _customer_says(console, "dora", "人工客服", 1)
    assert first is not None
    desk.claim(sam, first)
    desk.resolve(sam, first)
    _customer_says(console, "dora", "5", 2)  # her satisfaction with the first
    console.clock.advance(timedelta(hours=1))
    complaint = _customer_says(console, "dora", "我要投诉你们", 3)
    assert complaint is not None
    desk.claim(sam, complaint)
    desk.resolve(sam, complaint)
    console.clock.advance(timedelta(days=2))
    current = _customer_says(console, "dora", "人工客服", 4)
    assert current is not None and len({first, complaint, current}) == 3
    _customer_says(console, "eve", "人工客服", 5)  # another customer: never listed
    base = _base(console)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(locale="zh-CN")
            await _log_in(page, base, "sam")
            await page.goto(f"{base}/console/tickets/{current}")
            rows = page.locator("#earlier-tickets [data-ticket]")
            assert await _ids(rows) == [complaint, first]  # the latest first
            older = page.locator(f'#earlier-tickets [data-ticket="{first}"]')
            await expect(older.locator(".csat-cell")).to_have_text("5 / 5")
            await expect(older.locator(".status")).to_have_text("已解决")
            await expect(
                page.locator(f'#earlier-tickets [data-ticket="{complaint}"]')
            ).to_contain_text("complaints")  # the queue (no display name set here)
            await expect(page.locator("#conversations li").first).to_be_visible()
            await older.locator("a").click()
            await expect(page).to_have_url(f"{base}/console/tickets/{first}")

            other = await browser.new_page(locale="zh-CN")
            await _log_in(other, base, "gina")
            await other.goto(f"{base}/console/tickets/{current}")
            # the complaint is another queue's: gina does not see it listed
            assert await _ids(other.locator("#earlier-tickets [data-ticket]")) == [first]
        finally:
            await browser.close()


@pytest.mark.browser
async def test_a_new_ticket_rings_only_with_alerts_turned_on(console: Console) -> None:
    require_browser()
    base = _base(console)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            on = await browser.new_context(locale="zh-CN")
            await on.grant_permissions(["notifications"], origin=base)
            page = await on.new_page()
            await _log_in(page, base, "gina")
            toggle = page.locator("#notify-toggle")
            await expect(toggle).to_have_attribute("aria-pressed", "false")
            await toggle.click()
            await expect(toggle).to_have_attribute("aria-pressed", "true")
            await expect(toggle).to_have_text("新工单提醒：开")
            await page.reload()  # kept in the browser
            await expect(toggle).to_have_attribute("aria-pressed", "true")

            off = await browser.new_context(locale="zh-CN")
            await off.grant_permissions(["notifications"], origin=base)
            quiet = await off.new_page()
            await _log_in(quiet, base, "sam")
            for shown in (page, quiet):
                await expect(shown.locator("#live-dot.on")).to_be_visible(timeout=LIVE_MS)
                # the page knows the tickets waiting already: only a later one rings
                await expect(shown.locator("body")).to_have_attribute(
                    "data-alerts-ready", "true", timeout=LIVE_MS
                )

            # another queue's ticket is not gina's to hear of
            elsewhere = _customer_says(console, "gus", "我要投诉你们", 1)
            assert elsewhere is not None
            await expect(quiet.locator(f'[data-ticket="{elsewhere}"]')).to_be_visible(
                timeout=LIVE_MS
            )
            await page.wait_for_timeout(1500)
            assert await page.locator("body").get_attribute("data-alerts") is None

            ticket = _customer_says(console, "fay", "人工客服", 2)
            assert ticket is not None
            await expect(page.locator("body")).to_have_attribute(
                "data-alerts", "1", timeout=LIVE_MS
            )
            await expect(page.locator("body")).to_have_attribute("data-notifications", "1")
            # the agent without alerts sees the ticket arrive, and nothing rings
            await expect(quiet.locator(f'#queued-tickets [data-ticket="{ticket}"]')).to_be_visible(
                timeout=LIVE_MS
            )
            await quiet.wait_for_timeout(1500)
            assert await quiet.locator("body").get_attribute("data-alerts") is None
            # a change that brings no new ticket rings nothing more
            console.desk().claim(console.add_agent("hal"), ticket)
            await expect(page.locator(f'#queued-tickets [data-ticket="{ticket}"]')).to_have_count(
                0, timeout=LIVE_MS
            )
            await page.wait_for_timeout(1500)
            await expect(page.locator("body")).to_have_attribute("data-alerts", "1")
            # the sound is the console's own file, no other site's
            sound = await page.request.get(f"{base}/console/static/new-ticket.wav")
            assert sound.ok and (await sound.body()).startswith(b"RIFF")
        finally:
            await browser.close()
