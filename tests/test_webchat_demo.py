"""`bot demo` as a newcomer runs it: the installed command prints the sample shop page's address
and the console's with a one-time password; the page embeds the web chat from the service on the
next port, which lets that page frame its panel; the password logs in; SIGTERM stops both; and
nothing of it is written to the shop's own storage."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import aiohttp
import pytest

from bot.cli.demo import closed_line
from bot.content.config import load_config
from bot.hours.schedule import read_schedules
from tests.support.service import bot_command, free_port, ready
from tests.support.shop import FIXTURE, at

pytestmark = pytest.mark.warm_content

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def two_free_ports() -> int:
    """A free port whose next one is free too (the shop page's, and the service's)."""
    while True:
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


async def _started(shop: Path) -> tuple[subprocess.Popen[bytes], int, list[str]]:
    """`bot demo` on a free pair of ports, once its service answers /readyz: the process, the
    shop page's port and the first three lines it printed. Another test's connection can take
    the second port between choosing it and binding it; the demo then stops with "address
    already in use", and is started again on another pair."""
    env = {key: value for key, value in os.environ.items() if key != "BOT_WEBCHAT_SECRET"}
    loop = asyncio.get_running_loop()
    for _ in range(3):
        port = two_free_ports()
        demo = subprocess.Popen(
            [bot_command(), "--config", str(shop / "config.toml"), "demo", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert demo.stderr is not None
        lines = [
            (await loop.run_in_executor(None, demo.stderr.readline)).decode() for _ in range(3)
        ]
        # a request times out: whatever else holds the port may not answer
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            deadline = loop.time() + 120
            while demo.poll() is None and loop.time() < deadline:
                try:
                    await ready(http, port + 1, 1)
                    return demo, port, lines
                except (AssertionError, TimeoutError):
                    continue
        if demo.poll() is None:
            demo.kill()
            raise AssertionError(f"bot demo on port {port + 1} not ready in 120s")
        rest = demo.stderr.read().decode()
        assert "address already in use" in rest, rest[-3000:]
    raise AssertionError("bot demo found no free pair of ports in three tries")


async def test_bot_demo_serves_a_shop_page_with_the_chat_and_a_console_login(shop: Path) -> None:
    demo, port, (first, storage, second) = await _started(shop)
    assert demo.stderr is not None
    loop = asyncio.get_running_loop()
    try:
        assert f"{shop / 'var' / 'demo.sqlite3'} (not storage.url)" in storage
        shop_url, bot_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"
        assert f"a sample shop page with the web chat at {shop_url}/" in first
        found = re.search(rf"{bot_url}/console/\s+login demo, password (\S+)", second)
        assert found, second
        password = found.group(1)
        # the console keeps its CSRF token in a cookie: accept it from an IP address, as browsers do
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(f"{shop_url}/") as page:
                assert page.status == 200
                assert f'<script src="{bot_url}/webchat/widget.js"' in await page.text()
            async with http.get(f"{bot_url}/webchat/widget.js") as widget:
                assert widget.status == 200
            async with http.get(f"{bot_url}/webchat/panel") as panel:
                assert shop_url in panel.headers["Content-Security-Policy"]
            async with http.post(
                f"{bot_url}/webchat/visitor", json={}, headers={"Origin": shop_url}
            ) as visitor:
                assert visitor.status == 200
                assert visitor.headers["Access-Control-Allow-Origin"] == shop_url
            async with http.get(f"{bot_url}/console/login") as login:
                token = CSRF.search(await login.text())
            assert token
            async with http.post(
                f"{bot_url}/console/login",
                data={"login": "demo", "password": password, "csrf": token.group(1)},
                allow_redirects=False,
            ) as logged_in:
                assert logged_in.status in (302, 303), await logged_in.text()
                assert logged_in.headers["Location"].endswith("/console/")
        demo.send_signal(signal.SIGTERM)
        assert await loop.run_in_executor(None, demo.wait, 30) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
    rest = demo.stderr.read().decode()
    assert "Traceback" not in rest, rest[-3000:]
    assert "sample shop page: " + f"http://127.0.0.1:{port}/" in rest
    # the demo agent and its password live in the demo's own database only
    assert not (shop / "var" / "bot.sqlite3").exists()


def test_out_of_hours_the_demo_says_to_claim_the_ticket_itself() -> None:
    # the demo prints this at start when the default queue is closed (the wall clock decides,
    # so the line is tested here, and the demo above only where it is open or closed)
    config = load_config(FIXTURE / "config.toml")
    schedules, _ = read_schedules(config.resolve(config.content.schedules))
    schedule = schedules[config.front_schedule]
    line = closed_line("general", schedule, at("2026-11-24 23:00"))
    assert line is not None
    assert "the general queue is closed now (opens Wed 25 Nov, 9:00)" in line
    assert "领取下一个 (Claim next) finds none" in line
    assert "open the ticket under 排队中的工单 (Tickets waiting) and press 领取 (Claim)" in line
    assert "\n" not in line
    assert closed_line("general", schedule, at("2026-11-24 10:00")) is None
