"""The web chat in a real browser (headless Debian Chromium driven by Playwright): a shop's page
on one loopback origin embeds the widget from the service on another; the visitor asks a FAQ
question and gets the answer, picks a suggestion by button, asks for a person; an agent in a
second browser context, logged into the console, sees it live and replies, and the visitor sees
the reply without reloading; the agent resolves and the visitor answers the CSAT with a button;
a reload keeps the history; HTML in a message or an answer is shown as text; a phone-sized
viewport in English, on a page wider than the phone; the after-hours header under an injected
clock.

Screenshots go to test-output/webchat/ (ignored by git); with BOT_SCREENSHOTS=1 the widget and
the console are also saved side by side as docs/webchat.png for the README, and the phone and
after-hours views as docs/webchat-phone.png and docs/webchat-after-hours.png. Without
/usr/bin/chromium the test skips and says why, except under CI=true.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiohttp import web
from playwright.async_api import Browser, ConsoleMessage

from adapters.webchat import WebchatChannel
from bot.assembly import build_pipeline
from bot.content.config import WebchatChannelConfig, load_config
from bot.domain.agent import Role
from bot.pipeline.runner import Pipeline
from bot.store import agents
from bot.store.schema import messages, tickets
from bot.understanding.encoders import MemoEncoder
from bot.web.app import Parts, make_app
from bot.web.auth import hash_password
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.support.service import serve
from tests.support.shop import at, pin_thresholds

ROOT = Path(__file__).parent.parent
OUTPUT = ROOT / "test-output" / "webchat"
SECRET = "webchat-browser-secret-not-real-012345"
PASSWORD = "a long test password"
LIVE_MS = 20_000

SHOP_PAGE = """<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><title>青木小店</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body {{ font-family: serif; background: #fbf7ef; }} h1 {{ color: #1d6f5f; }}</style>
</head><body><h1>青木小店</h1><p>手工茶具，全场满 99 元包邮。</p>
<p style="width: 420px">（一行比手机屏幕还宽的促销横幅：很多店铺的页面都有）</p>
<script src="{bot}/webchat/widget.js" data-site="main" async></script>
</body></html>"""

#: an answer a shop wrote with HTML and a `javascript:` link in it: shown as text
POINTS_FAQ = """\
- id: points
  questions:
    - 积分怎么用
    - 会员积分可以抵现吗
    - How do I use my points?
  answer:
    zh: '积分说明<script>window.pwned=1</script><a href="javascript:window.pwned=1">点这里</a>
      javascript:window.pwned=1 https://shop.example.test/points'
    en: 'Points <script>window.pwned=1</script> javascript:window.pwned=1
      https://shop.example.test/points'
"""


class RunningClock:
    """Runs in real time from a chosen moment, jumps when told (to after hours), and stands
    still when told (a moment a slow machine must not carry past)."""

    def __init__(self, start: datetime) -> None:
        self._start, self._t0 = start, time.monotonic()
        self._still: datetime | None = None

    def now(self) -> datetime:
        if self._still is not None:
            return self._still
        return self._start + timedelta(seconds=time.monotonic() - self._t0)

    def set(self, at: datetime, *, still: bool = False) -> None:
        self._start, self._t0 = at, time.monotonic()
        self._still = at if still else None


@dataclass
class Scene:
    bot: str
    shop: str
    pipeline: Pipeline
    clock: RunningClock
    channel: WebchatChannel


async def side_by_side(browser: Browser, shots: list[bytes], name: str) -> None:
    """The screenshots next to each other, as one image in docs/ (drawn by the browser: no
    imaging library needed)."""
    images = "".join(
        f'<img src="data:image/png;base64,{base64.b64encode(shot).decode()}">' for shot in shots
    )
    page = await browser.new_page(viewport={"width": 2400, "height": 900})
    await page.set_content(
        "<body style='margin:0;display:flex;gap:16px;align-items:flex-start;"
        f"background:#fff;width:max-content'>{images}</body>"
    )
    await page.locator("body").screenshot(path=str(ROOT / "docs" / name))
    await page.close()


async def _no_icon(request: web.Request) -> web.Response:
    return web.Response(status=204)


@pytest.fixture
async def scene(shop: Path, encoder: MemoEncoder, tmp_path: Path) -> AsyncIterator[Scene]:
    # thresholds pinned so that a misspelt question is offered as suggestions
    path = pin_thresholds(shop)
    (shop / "faq" / "points.yaml").write_text(POINTS_FAQ, encoding="utf-8")
    config = load_config(path)
    bot: dict[str, str] = {}

    async def shop_page(request: web.Request) -> web.Response:
        return web.Response(text=SHOP_PAGE.format(bot=bot["url"]), content_type="text/html")

    shop_app = web.Application()
    shop_app.router.add_get("/", shop_page)
    shop_app.router.add_get("/favicon.ico", _no_icon)
    shop_runner, shop_url = await serve(shop_app)
    # a Tuesday morning: the queues are open
    clock = RunningClock(at("2026-11-24 10:00"))
    pipeline = build_pipeline(
        config, clock, store_url=f"sqlite:///{tmp_path}/webchat.sqlite3", encoder=encoder
    )
    with pipeline.store.transaction() as tx:
        agents.add(tx, "mei", "王美", Role.AGENT, hash_password(PASSWORD), clock.now())
    channel = WebchatChannel(WebchatChannelConfig(enabled=True, allowed_origins=[shop_url]), SECRET)
    bot_runner, bot_url = await serve(make_app(Parts(pipeline, [channel], run_scheduler=False)))
    bot["url"] = bot_url
    yield Scene(bot_url, shop_url, pipeline, clock, channel)
    await bot_runner.cleanup()
    await shop_runner.cleanup()
    pipeline.store.close()


@pytest.mark.browser
async def test_a_visitor_chats_with_the_bot_and_an_agent_in_the_browser(scene: Scene) -> None:
    require_browser()
    from playwright.async_api import FrameLocator, Page, async_playwright, expect

    OUTPUT.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    keep = os.environ.get("BOT_SCREENSHOTS") == "1"

    def watched(page: Page) -> Page:
        # a script refused by the Content-Security-Policy, or one that throws, fails the test
        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                errors.append(message.text)

        page.on("console", on_console)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "response",
            lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )
        return page

    async def shot(page: Page, name: str, docs: str = "") -> None:
        await page.screenshot(path=str(OUTPUT / f"{name}.png"))
        if keep and docs:  # the phone and after-hours views, for docs/channels.md
            await page.screenshot(path=str(ROOT / "docs" / docs))

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            visitor_context = await browser.new_context(
                viewport={"width": 1100, "height": 760}, locale="zh-CN"
            )
            page = watched(await visitor_context.new_page())
            agent_context = await browser.new_context(
                viewport={"width": 1280, "height": 860}, locale="zh-CN"
            )
            console = watched(await agent_context.new_page())

            # the agent is at work in the console
            await console.goto(f"{scene.bot}/console/")
            await console.fill("input[name=login]", "mei")
            await console.fill("input[name=password]", PASSWORD)
            await console.click("#login-button")
            await expect(console.locator("#live-dot.on")).to_be_attached(timeout=LIVE_MS)

            # the shop's page, on another origin, embeds the widget
            await page.goto(f"{scene.shop}/")
            launcher = page.locator("#bot-webchat-launcher")
            await expect(launcher).to_be_visible()
            await launcher.click()
            panel: FrameLocator = page.frame_locator("#bot-webchat-panel")
            await expect(panel.locator("#title")).to_have_text("在线客服", timeout=LIVE_MS)
            await expect(panel.locator("#duty")).to_have_text("客服在线")
            await expect(panel.locator(".msg.out.greeting")).to_be_visible()

            async def ask(text: str) -> None:
                await panel.locator("#text").fill(text)
                await panel.locator("#text").press("Enter")

            answers = panel.locator(".msg.out")

            # a misspelt one: suggestions as buttons; picking one answers it
            await ask("发漂怎么开")
            suggestion = panel.locator(".choices button", has_text="怎么开发票").last
            await expect(suggestion).to_be_visible(timeout=LIVE_MS)
            await shot(page, "1-suggestions")
            await suggestion.click()
            await expect(answers.last).to_contain_text("申请发票", timeout=LIVE_MS)
            await expect(suggestion).to_be_disabled()

            # a FAQ question, answered live
            await ask("运费多少")
            await expect(answers.last).to_contain_text("订单满 99 元包邮", timeout=LIVE_MS)
            await expect(panel.locator(".msg.in").first).to_have_text("发漂怎么开")

            # a person: the agent sees it live, replies, and the visitor sees it unreloaded
            await ask("转人工")
            await expect(console.locator("#queued-tickets li.line")).to_have_count(
                1, timeout=LIVE_MS
            )
            await console.click("#claim-next")
            await expect(console.locator("#ticket-status")).to_have_text("已分配")
            await expect(console.locator("#transcript")).to_contain_text("转人工")
            # the suggestion the visitor picked reads there as in the panel, not as "1" alone
            await expect(console.locator("#transcript")).to_contain_text("1 · 怎么开发票")
            reply = (
                "您好，我是小美。<b>订单</b>请看 https://shop.example.test/o/1 javascript:alert(1)"
                "<script>window.pwned=1</script>"
            )
            await console.fill("#reply-text", reply)
            await console.click("#send")
            await expect(console.locator(".flash")).to_have_text("回复已发送。")
            agent_line = answers.filter(has_text="我是小美")
            await expect(agent_line).to_have_count(1, timeout=LIVE_MS)
            await expect(agent_line).to_contain_text("<b>订单</b>")
            await expect(agent_line).to_contain_text("<script>window.pwned=1</script>")
            await expect(agent_line.locator("b, script")).to_have_count(0)
            await expect(agent_line.locator("a")).to_have_count(1)
            await expect(agent_line.locator("a")).to_have_attribute(
                "href", "https://shop.example.test/o/1"
            )
            await shot(page, "2-agent-reply")
            if keep:
                await side_by_side(
                    browser, [await page.screenshot(), await console.screenshot()], "webchat.png"
                )

            # resolved: the CSAT question comes with 1–5 buttons; the visitor taps 5
            await console.click("#resolve")
            await expect(console.locator(".flash")).to_contain_text("工单已解决")
            score = panel.locator(".choices.scores button", has_text="5")
            await expect(score).to_be_visible(timeout=LIVE_MS)
            await score.click()
            await expect(console.locator("#csat .csat-score")).to_have_text(
                "5 / 5", timeout=LIVE_MS
            )
            with scene.pipeline.store.engine.connect() as conn:
                assert conn.execute(tickets.select()).one().csat == 5
            await shot(page, "3-csat")

            # a reload keeps the conversation
            lines = await panel.locator(".msg").count()
            await page.reload()
            await page.locator("#bot-webchat-launcher").click()
            panel = page.frame_locator("#bot-webchat-panel")
            await expect(panel.locator(".msg.out").filter(has_text="我是小美")).to_have_count(
                1, timeout=LIVE_MS
            )
            await expect(panel.locator(".msg.in").first).to_have_text("发漂怎么开")
            # the suggestion picked reads as itself, not as the number that was sent
            await expect(panel.locator(".msg.in").nth(1)).to_have_text("怎么开发票")
            assert await panel.locator(".msg").count() >= lines - 1  # no greeting now
            # HTML from the visitor is shown as text, and only http(s) addresses are links
            await ask(
                '<script>window.pwned=1</script><img src=x onerror="window.pwned=1"> '
                "javascript:window.pwned=1 https://shop.example.test/orders"
            )
            mine = panel.locator(".msg.in").last
            await expect(mine).to_contain_text("<script>window.pwned=1</script>")
            await expect(mine.locator("script, img")).to_have_count(0)
            await expect(mine.locator("a")).to_have_count(1)
            await expect(mine.locator("a")).to_have_attribute(
                "href", "https://shop.example.test/orders"
            )
            # and from the shop's own answers: a FAQ answer written with HTML
            await ask("积分怎么用")
            points = answers.filter(has_text="积分说明")
            await expect(points).to_have_count(1, timeout=LIVE_MS)
            await expect(points).to_contain_text(
                '<script>window.pwned=1</script><a href="javascript:window.pwned=1">点这里</a>'
            )
            await expect(points.locator("script, img")).to_have_count(0)
            await expect(points.locator("a")).to_have_count(1)
            await expect(points.locator("a")).to_have_attribute(
                "href", "https://shop.example.test/points"
            )

            assert await page.evaluate("window.pwned") is None

            # a phone, in English
            phone_context = await browser.new_context(
                viewport={"width": 390, "height": 844}, locale="en-US", is_mobile=True
            )
            phone = watched(await phone_context.new_page())
            await phone.goto(f"{scene.shop}/")
            corner = await phone.locator("#bot-webchat-launcher").bounding_box()
            assert corner is not None and corner["x"] + corner["width"] <= 390, corner
            assert corner["y"] + corner["height"] <= 844, corner
            await phone.locator("#bot-webchat-launcher").click()
            small = phone.frame_locator("#bot-webchat-panel")
            await expect(small.locator("#title")).to_have_text("Chat with us", timeout=LIVE_MS)
            await expect(small.locator("#text")).to_have_attribute("placeholder", "Type a message…")
            # the page is wider than the phone: the panel still fills the screen, not the page
            box = await phone.locator("#bot-webchat-panel").bounding_box()
            assert box is not None
            assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 390, 844), box
            await small.locator("#text").fill("How do I get an invoice?")
            await small.locator("#text").press("Enter")
            await expect(small.locator(".msg.out").last).to_contain_text(
                "Request invoice", timeout=LIVE_MS
            )
            await shot(phone, "4-phone-english", "webchat-phone.png")

            # after hours: the header says when people are back (the agent went home first: 13
            # hours on, their console session has ended)
            await agent_context.close()
            scene.clock.set(at("2026-11-24 23:00"))
            await phone.reload()
            await phone.locator("#bot-webchat-launcher").click()
            small = phone.frame_locator("#bot-webchat-panel")
            await expect(small.locator("#duty")).to_have_text(
                "Our team is away — back Wed 25 Nov, 9:00", timeout=LIVE_MS
            )
            await shot(phone, "5-after-hours", "webchat-after-hours.png")
        finally:
            await browser.close()
    assert errors == []


@pytest.mark.browser
async def test_a_site_not_allowed_cannot_frame_the_panel(scene: Scene) -> None:
    require_browser()
    from playwright.async_api import async_playwright

    other = web.Application()

    async def other_page(request: web.Request) -> web.Response:
        return web.Response(text=SHOP_PAGE.format(bot=scene.bot), content_type="text/html")

    other.router.add_get("/", other_page)
    runner, other_url = await serve(other)
    # `localhost` is another origin than 127.0.0.1, and not on the list
    other_url = other_url.replace("127.0.0.1", "localhost")
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page()
                refused: list[str] = []
                page.on("console", lambda m: refused.append(m.text))
                await page.goto(f"{other_url}/")
                await page.locator("#bot-webchat-launcher").click()
                frame = page.frame_locator("#bot-webchat-panel")
                await page.wait_for_timeout(1500)
                assert await frame.locator("#title").count() == 0
                assert any("frame-ancestors" in text for text in refused), refused
            finally:
                await browser.close()
    finally:
        await runner.cleanup()


@pytest.mark.browser
async def test_a_message_over_the_rate_limit_is_sent_again_and_kept(scene: Scene) -> None:
    require_browser()
    from playwright.async_api import Route, async_playwright, expect

    scene.channel.config.per_visitor_per_minute = 2
    refused, answered_late = asyncio.Event(), asyncio.Event()
    late = 0

    async def hold_acceptances(route: Route) -> None:
        # the accepted messages hear 202 only after the third heard 429: the order a busy
        # server gives, where acceptance waits on the pipeline and a refusal is immediate
        nonlocal late
        if route.request.method != "POST":
            await route.continue_()
            return
        response = await route.fetch()
        if response.status == 429:
            await route.fulfill(response=response)
            refused.set()
            return
        await refused.wait()
        await route.fulfill(response=response)
        late += 1
        if late == 2:  # both messages before the refused one (a resend comes seconds later)
            answered_late.set()

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(locale="zh-CN")
            await page.context.route(lambda url: url.endswith("/messages"), hold_acceptances)
            await page.goto(f"{scene.shop}/")
            await page.locator("#bot-webchat-launcher").click()
            panel = page.frame_locator("#bot-webchat-panel")
            await expect(panel.locator("#title")).to_have_text("在线客服", timeout=LIVE_MS)
            # late in a minute: the refusal's Retry-After is several seconds. The clock
            # stands still until the refusal, or a loaded machine typing slowly would carry
            # the three messages into the next minute, where none is refused
            scene.clock.set(at("2026-11-24 10:00:52"), still=True)
            for text in ("运费多少", "多久能发货", "怎么开发票"):
                await panel.locator("#text").fill(text)
                await panel.locator("#text").press("Enter")
            await asyncio.wait_for(answered_late.wait(), timeout=LIVE_MS / 1000)
            scene.clock.set(at("2026-11-24 10:00:58"))  # runs again: the resend is in time
            # the other messages' acceptance does not hide the notice of the one still waiting
            await expect(panel.locator("#notice")).to_contain_text("秒后自动重发")
            # sent again once the minute is over: stored, answered, nothing lost or doubled
            await expect(panel.locator(".msg.out").filter(has_text="申请发票")).to_have_count(
                1, timeout=LIVE_MS
            )
            await expect(panel.locator(".msg.in.pending, .msg.in.failed")).to_have_count(0)
            await expect(panel.locator("#notice")).to_be_hidden()
            with scene.pipeline.store.engine.connect() as conn:
                texts = conn.execute(
                    sa.select(messages.c.text).where(
                        messages.c.channel == "webchat", messages.c.direction == "in"
                    )
                ).scalars()
                assert sorted(texts) == sorted(["运费多少", "多久能发货", "怎么开发票"])
        finally:
            await browser.close()
