"""The console speaks one language at a time (issue 20, defect 8): queues by their configured
names, priorities and the history's values in the agent's language, refusals (403, 404) in that
language too, and the bot's internal English kept out of sight in the Chinese console. Checked
in headless Chromium on the real application, in zh and in en, by reading what is on screen."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.content.config import Config
from bot.domain.agent import Role
from bot.domain.messages import Inbound
from bot.pipeline.knowledge import Knowledge
from bot.understanding.encoders import MemoEncoder
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.support.console import PASSWORD, Console, open_console

NAMES = {
    "general": {"zh": "综合咨询", "en": "General"},
    "complaints": {"zh": "投诉", "en": "Complaints"},
    "after_sales": {"zh": "售后", "en": "After-sales"},
    "tech": {"zh": "技术支持", "en": "Tech support"},
    "urgent": {"zh": "紧急", "en": "Urgent"},
}
#: what must never be on screen: the queues' keys and the priorities' keys
RAW_KEYS = re.compile(r"after_sales|general|complaints|\btech\b|urgent|normal|\bhigh\b|\blow\b")
#: the desk's English refusals ("ticket 3 is in queue 'general', not one of yours")
ENGLISH = re.compile(r"[A-Za-z]{3,}(?: [A-Za-z']+){2,}")


@pytest.fixture
async def console(
    config: Config, encoder: MemoEncoder, shop_knowledge: Knowledge, tmp_path: Path
) -> AsyncIterator[Console]:
    for key, name in NAMES.items():
        config.queues[key].name = {"zh": name["zh"], "en": name["en"]}
    opened = await open_console(config, encoder, tmp_path, knowledge=shop_knowledge)
    opened.add_agent("sam", Role.SUPERVISOR)
    opened.add_agent("gina", queues=("general",))
    yield opened
    await opened.client.close()
    opened.pipeline.store.close()


@pytest.mark.browser
async def test_the_console_shows_no_raw_keys_in_zh_or_en(console: Console) -> None:
    require_browser()
    from playwright.async_api import Page, async_playwright, expect

    console.pipeline.handle(
        Inbound("webhook", "m1", "cust", "cust", "人工客服", console.clock.now())
    )
    (ticket,) = console.pipeline.store.tickets("general")
    base = str(console.client.make_url("")).rstrip("/")

    async def log_in(page: Page, login: str) -> None:
        await page.goto(f"{base}/console/login")
        await page.fill("input[name=login]", login)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("#login-button")
        await expect(page.locator("#logout")).to_be_visible()

    async def on_screen(page: Page) -> str:
        return await page.locator("body").inner_text()

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(locale="zh-CN")
            await log_in(page, "sam")
            await page.goto(f"{base}/console/tickets/{ticket.id}")
            await page.click("#claim")
            await page.select_option("select[name=target]", label="售后")
            await page.locator(".transfer button").click()
            await expect(page.locator(".flash")).to_have_text("工单已转接。")

            for path in ("/console/", f"/console/tickets/{ticket.id}", "/console/supervisor"):
                await page.goto(base + path)
                text = await on_screen(page)
                assert not RAW_KEYS.search(text), (path, RAW_KEYS.findall(text), text)
            await page.goto(f"{base}/console/tickets/{ticket.id}")
            await expect(page.locator("#ticket-queue")).to_have_text("售后")
            history = await page.locator("#history").inner_text()
            assert "售后" in history and "综合咨询" in history and "普通" in history
            # the bot's reasons are its own English: behind a label, folded away
            reason = page.locator("#transcript details.reason").first
            await expect(reason.locator("summary")).to_have_text("机器人处理: 转人工")
            assert not ENGLISH.search(await on_screen(page))

            await page.goto(f"{base}/console/tickets/99999")
            text = await on_screen(page)
            assert "找不到该页面或工单" in text and "no ticket" not in text
            await page.goto(f"{base}/console/no-such-page")
            text = await on_screen(page)
            assert "找不到该页面或工单" in text and "Not Found" not in text

            # an agent of the general queue only: the ticket is now another queue's
            other = await browser.new_page(locale="zh-CN")
            await log_in(other, "gina")
            answer = await other.goto(f"{base}/console/tickets/{ticket.id}")
            assert answer is not None and answer.status == 403
            text = await on_screen(other)
            assert "您的角色无权访问此页面或工单" in text
            assert not ENGLISH.search(text) and not RAW_KEYS.search(text), text

            await page.click("#switch-language")
            for path in ("/console/", f"/console/tickets/{ticket.id}", "/console/supervisor"):
                await page.goto(base + path)
                text = await on_screen(page)
                assert not RAW_KEYS.search(text), (path, RAW_KEYS.findall(text), text)
            await page.goto(f"{base}/console/tickets/{ticket.id}")
            await expect(page.locator("#ticket-queue")).to_have_text("After-sales")
            history = await page.locator("#history").inner_text()
            assert "After-sales" in history and "General" in history and "Normal" in history
            await page.goto(f"{base}/console/no-such-page")
            assert "No such page or ticket." in await on_screen(page)
        finally:
            await browser.close()
