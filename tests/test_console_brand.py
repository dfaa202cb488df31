"""The console wears the shop's brand from config.toml (issue 20, defect 10): its name, logo and
colour, and a session cookie named by configuration, with the Content-Security-Policy as strict
as before (the colour arrives in a served stylesheet, never an inline style). Checked in headless
Chromium on the real application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.assembly import check
from bot.content.config import Config, load_config
from bot.pipeline.knowledge import Knowledge
from bot.understanding.encoders import MemoEncoder
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.support.console import PASSWORD, Console, open_console

BRAND = """
[brand]
name = { zh = "山川杂货", en = "Shanchuan Goods" }
logo = "brand/logo.svg"
colour = "#c8102e"
"""
LOGO = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">'
    '<rect width="40" height="20" fill="#c8102e"/></svg>'
)


def _branded(shop: Path, brand: str = BRAND, cookie: str = "shanchuan_console") -> Path:
    """The fixture shop's config.toml with a brand, a logo file and a cookie name."""
    (shop / "brand").mkdir(exist_ok=True)
    (shop / "brand" / "logo.svg").write_text(LOGO, encoding="utf-8")
    path = shop / "config.toml"
    original = shop / "config.unbranded.toml"
    if not original.exists():
        original.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    text = original.read_text(encoding="utf-8")
    path.write_text(f'{text}\n[console]\ncookie = "{cookie}"\n{brand}', encoding="utf-8")
    return path


@pytest.fixture
async def console(
    shop: Path, encoder: MemoEncoder, shop_knowledge: Knowledge, tmp_path: Path
) -> AsyncIterator[Console]:
    config: Config = load_config(_branded(shop))
    opened = await open_console(config, encoder, tmp_path, knowledge=shop_knowledge)
    opened.add_agent("mei")
    yield opened
    await opened.client.close()
    opened.pipeline.store.close()


@pytest.mark.browser
async def test_the_configured_name_logo_and_colour_show(console: Console) -> None:
    require_browser()
    from playwright.async_api import async_playwright, expect

    base = str(console.client.make_url("")).rstrip("/")
    errors: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(locale="zh-CN")
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            response = await page.goto(f"{base}/console/login")
            assert response is not None
            policy = response.headers["content-security-policy"]
            assert "style-src 'self';" in policy and "unsafe-inline" not in policy
            await expect(page.locator("#brand .brand-name")).to_have_text("山川杂货")
            await expect(page).to_have_title("客服登录 · 山川杂货")
            header = page.locator("header.top")
            colour = await header.evaluate("e => getComputedStyle(e).backgroundColor")
            assert colour == "rgb(200, 16, 46)"
            ink = await header.locator(".brand").evaluate("e => getComputedStyle(e).color")
            assert ink == "rgb(255, 255, 255)"  # white reads better on this red
            logo = page.locator("#brand img.brand-logo")
            assert await logo.evaluate("e => e.complete && e.naturalWidth") == 40
            assert "青木" not in await page.content()

            await page.fill("input[name=login]", "mei")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("#login-button")
            await expect(page.locator("#logout")).to_be_visible()
            names = {c["name"] for c in await page.context.cookies()}
            assert names == {"shanchuan_console"}

            english = await browser.new_page(locale="en-US")
            await english.goto(f"{base}/console/login")
            await expect(english.locator("#brand .brand-name")).to_have_text("Shanchuan Goods")
        finally:
            await browser.close()
    assert errors == []


def test_a_bad_brand_is_refused_with_its_key(shop: Path) -> None:
    path = _branded(shop, BRAND.replace("#c8102e", "red; } body { x: y").replace("brand/", "nope/"))
    messages = " | ".join(p.message for p in check(path))
    assert "brand.colour" in messages and "#rrggbb" in messages
    path = _branded(shop, BRAND.replace("brand/", "nope/"), cookie="bad cookie")
    messages = " | ".join(p.message for p in check(path))
    assert "console.cookie" in messages
    path = _branded(shop, BRAND.replace("brand/", "nope/"))
    [problem] = check(path)
    assert "brand.logo: no file" in problem.message and "nope/logo.svg" in problem.message
