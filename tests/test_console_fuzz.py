"""Every form and query string of the agents' console, fuzzed on the real application with a
logged-in supervisor: a page, a redirect or a 4xx with a message, never a 500; a POST without
the session's CSRF token is refused. The requests and the property are shared with
bench/fuzz.py (tests/support/fuzzing.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from bot.content.config import Config
from bot.domain.agent import Role
from bot.domain.messages import Inbound
from bot.pipeline.knowledge import Knowledge
from bot.understanding.encoders import MemoEncoder
from tests.support import fuzzing
from tests.support.console import CSRF, Console, open_console


async def logged_in(
    config: Config, encoder: MemoEncoder, tmp_path: Path, knowledge: Knowledge | None
) -> tuple[Console, str]:
    """The console with two handed-off tickets and a supervisor logged in; its CSRF token."""
    console = await open_console(config, encoder, tmp_path, knowledge=knowledge)
    console.add_agent("sam", Role.SUPERVISOR)
    console.add_agent("alice")
    for n, (user, text) in enumerate([("cust", "人工客服"), ("other", "我要投诉")], start=1):
        console.pipeline.handle(Inbound("webhook", f"m{n}", user, user, text, console.clock.now()))
    assert (await console.log_in("sam")).status == 303
    page = await console.client.get("/console/")
    found = CSRF.search(await page.text())
    assert found
    return console, found.group(1)


def test_console_forms_and_queries_never_fail(
    config: Config, encoder: MemoEncoder, shop_knowledge: Knowledge, tmp_path: Path
) -> None:
    loop = asyncio.new_event_loop()
    console, token = loop.run_until_complete(logged_in(config, encoder, tmp_path, shop_knowledge))

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(fuzzing.console_requests)
    def run(request: dict[str, object]) -> None:
        assert (
            loop.run_until_complete(fuzzing.console_property(console.client, token, request)) == []
        )

    try:
        run()
    finally:
        loop.run_until_complete(console.client.close())
        console.pipeline.store.close()
        loop.close()


@pytest.mark.parametrize(
    "path",
    [
        "/console/tickets/99999999999999999999",
        "/console/tickets/99999999999999999999/live",
        "/console/tickets/-99999999999999999999/assist",
        "/console/search?q=%2399999999999999999999",
        "/console/done?shown=99999999999999999999",
    ],
)
async def test_numbers_too_big_for_the_database_are_not_found(
    config: Config, encoder: MemoEncoder, shop_knowledge: Knowledge, tmp_path: Path, path: str
) -> None:
    console, _ = await logged_in(config, encoder, tmp_path, shop_knowledge)
    try:
        response = await console.client.get(path, allow_redirects=False)
        assert response.status < 500, await response.text()
    finally:
        await console.client.close()
        console.pipeline.store.close()
