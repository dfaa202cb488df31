"""The console in a real browser (headless Debian Chromium driven by Playwright) against the
real service on 127.0.0.1: a customer writes through the webhook channel, an agent sees the
ticket appear without reloading, claims it, inserts the agent-assist answer, sends it (the
customer receives it at a loopback delivery server), resolves, and sees the customer's
satisfaction score on the ticket.

Screenshots go to test-output/console/ (ignored by git); with BOT_SCREENSHOTS=1 the ticket page
is also saved as docs/console.png for the README. Without /usr/bin/chromium the test skips and
says why, except under CI=true, where .ci/run installs it and the test must run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import ConsoleMessage

from adapters.webhook import WebhookChannel
from bot.assembly import build_pipeline
from bot.content.config import CannedReply, Config, WebhookChannelConfig
from bot.domain.agent import Role
from bot.domain.clock import ShiftedClock
from bot.store import agents
from bot.understanding.encoders import MemoEncoder
from bot.web.app import Parts, make_app
from bot.web.auth import hash_password
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.support.service import serve
from tests.support.shop import at

ROOT = Path(__file__).parent.parent
OUTPUT = ROOT / "test-output" / "console"
SECRET = "browser-test-secret"
PASSWORD = "a long test password"
#: how long the browser waits for the live page to change (a busy 2-core machine)
LIVE_MS = 20_000


class Customer:
    """The webhook channel's other end: sends the customer's messages, records the bot's and the
    agent's replies as they are delivered."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.app = web.Application()
        self.app.router.add_post("/deliver", self._deliver)
        self._ids = 0

    async def _deliver(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {SECRET}":
            return web.Response(status=401)
        self.received.append(await request.json())
        return web.json_response({"ok": True})

    async def say(self, session: aiohttp.ClientSession, bot_url: str, text: str) -> None:
        self._ids += 1
        async with session.post(
            f"{bot_url}/channels/webhook/messages",
            json={"id": f"c{self._ids}", "user": "customer-1", "text": text},
            headers={"Authorization": f"Bearer {SECRET}"},
        ) as response:
            assert response.status == 200, await response.text()

    async def receives(self, check: Callable[[str], bool], seconds: float = 20) -> str:
        for _ in range(int(seconds / 0.1)):
            for item in self.received:
                if check(item["text"]):
                    return str(item["text"])
            await asyncio.sleep(0.1)
        raise AssertionError(f"not delivered; the customer got: {self.received}")


@dataclass
class Service:
    url: str
    customer: Customer


@pytest.fixture
async def service(config: Config, encoder: MemoEncoder, tmp_path: Path) -> AsyncIterator[Service]:
    config.console.canned = [
        CannedReply(
            title="问候", text={"zh": "您好，我是客服小美，很高兴为您服务。", "en": "Hi, I'm Mei."}
        ),
        CannedReply(
            title="结束语", text={"zh": "请问还有其他可以帮您的吗？", "en": "Anything else?"}
        ),
    ]
    customer = Customer()
    receiver, receiver_url = await serve(customer.app)
    # a Tuesday morning, running on in real time: the queues are open whenever the test runs
    clock = ShiftedClock(at("2026-11-24 10:00"))
    pipeline = build_pipeline(
        config, clock, store_url=f"sqlite:///{tmp_path}/browser.sqlite3", encoder=encoder
    )
    with pipeline.store.transaction() as tx:
        agents.add(tx, "mei", "王美", Role.AGENT, hash_password(PASSWORD), clock.now())
    channel = WebhookChannel(
        WebhookChannelConfig(enabled=True, deliver_url=f"{receiver_url}/deliver"), SECRET
    )
    runner, url = await serve(make_app(Parts(pipeline, [channel], run_scheduler=False)))
    yield Service(url, customer)
    await runner.cleanup()
    await receiver.cleanup()
    pipeline.store.close()


@pytest.mark.browser
async def test_agent_answers_a_customer_live_in_the_browser(service: Service) -> None:
    require_browser()
    from playwright.async_api import Page, async_playwright, expect

    OUTPUT.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []

    async def shot(page: Page, name: str) -> None:
        await page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)

    async with aiohttp.ClientSession() as http, async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 860}, locale="zh-CN")

            # a script refused by the Content-Security-Policy, or one that throws, fails the test
            def on_console(message: ConsoleMessage) -> None:
                if message.type == "error":
                    errors.append(message.text)

            page.on("console", on_console)
            page.on("pageerror", lambda e: errors.append(str(e)))

            await page.goto(f"{service.url}/console/")
            await expect(page).to_have_url(f"{service.url}/console/login")
            await page.fill("input[name=login]", "mei")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("#login-button")
            await expect(page.locator("#claim-next")).to_be_visible()
            await expect(page.locator("#live-dot.on")).to_be_attached(timeout=LIVE_MS)
            await shot(page, "1-queues-empty")

            # the customer asks for a human, then asks their question while they wait
            await service.customer.say(http, service.url, "人工客服")
            queued = page.locator("#queued-tickets li.line")
            await expect(queued).to_have_count(1, timeout=LIVE_MS)  # live: no reload
            await shot(page, "2-ticket-arrived")
            await service.customer.say(http, service.url, "运费多少")

            await page.click("#claim-next")
            await expect(page.locator("#ticket-status")).to_have_text("已分配")
            await expect(page.locator("#transcript")).to_contain_text("运费多少", timeout=LIVE_MS)
            await page.locator(".canned button", has_text="问候").click()
            suggestion = page.locator("#assist .suggestion").first
            await expect(suggestion).to_contain_text("99", timeout=LIVE_MS)
            await suggestion.locator("button.insert").click()
            answer = await page.locator("#reply-text").input_value()
            assert (
                answer
                == "您好，我是客服小美，很高兴为您服务。\n订单满 99 元包邮，不满收取 8 元运费。"
            )
            await shot(page, "3-assist-inserted")
            if os.environ.get("BOT_SCREENSHOTS") == "1":
                await page.screenshot(path=str(ROOT / "docs" / "console.png"))

            await page.click("#send")
            await expect(page.locator(".flash")).to_have_text("回复已发送。")
            await service.customer.receives(lambda text: "99 元包邮" in text)
            await expect(page.locator("#transcript .msg.agent")).to_contain_text("99 元包邮")

            delivered = len(service.customer.received)
            await page.click("#resolve")
            await expect(page.locator(".flash")).to_contain_text("工单已解决")
            # the satisfaction question reaches the customer, who answers it
            for _ in range(200):
                if len(service.customer.received) > delivered:
                    break
                await asyncio.sleep(0.1)
            assert len(service.customer.received) > delivered, "no satisfaction question"
            await service.customer.say(http, service.url, "5")
            await expect(page.locator("#csat .csat-score")).to_have_text("5 / 5", timeout=LIVE_MS)
            await shot(page, "4-resolved-with-csat")

            # the same console on a phone, in English
            phone = await browser.new_page(
                viewport={"width": 390, "height": 844}, locale="en-US", is_mobile=True
            )
            cookies: Any = await page.context.cookies()  # Cookie and SetCookieParam: same keys
            await phone.context.add_cookies(cookies)
            await phone.goto(page.url)
            await expect(phone.locator("#ticket-status")).to_be_visible()
            await phone.screenshot(path=str(OUTPUT / "5-phone.png"), full_page=True)
        finally:
            await browser.close()
    assert errors == []
