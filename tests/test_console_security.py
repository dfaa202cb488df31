"""The console's door, tried the way an attacker would: wrong passwords (and the lock after
them), POSTs without or with a wrong CSRF token, forged and tampered session cookies, a session
of an agent since disabled or idle too long, an agent on the supervisor page or on another
queue's ticket. The real application (`make_app`) on a real SQLite store; agents made the way
`bot agents add` makes them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import ClientResponse
from cryptography.fernet import Fernet

from bot.content.config import Config
from bot.domain.agent import Role
from bot.domain.clock import FixedClock
from bot.domain.messages import Inbound
from bot.pipeline.knowledge import Knowledge
from bot.store.database import Store
from bot.understanding.encoders import MemoEncoder
from bot.web.console.sessions import COOKIE, SECRET_ENV, session_key
from tests.support.console import CSRF, PASSWORD, Console, open_console
from tests.support.shop import at


@pytest.fixture
async def console(
    config: Config, encoder: MemoEncoder, shop_knowledge: Knowledge, tmp_path: Path
) -> AsyncIterator[Console]:
    opened = await open_console(config, encoder, tmp_path, knowledge=shop_knowledge)
    yield opened
    await opened.client.close()
    opened.pipeline.store.close()


def _login_location(response: ClientResponse) -> bool:
    return response.status == 303 and response.headers["Location"] == "/console/login"


async def test_wrong_password_refused_then_locked(console: Console) -> None:
    console.add_agent("alice")
    unknown = await console.log_in("nobody", "whatever it is")
    wrong = await console.log_in("alice", "not the password")
    assert unknown.status == wrong.status == 401
    # one message for every refusal: a guesser cannot tell a login that exists
    unknown_text, wrong_text = await unknown.text(), await wrong.text()
    assert 'id="login-refused"' in wrong_text
    assert _refusal(unknown_text) == _refusal(wrong_text)
    assert COOKIE not in {m.key for m in wrong.cookies.values()} or "agent" not in wrong_text

    limit = console.pipeline.config.console.lockout_failures
    for _ in range(limit - 1):
        assert (await console.log_in("alice", "still not it")).status == 401
    locked = await console.log_in("alice", PASSWORD)  # the right password, too late
    assert locked.status == 401
    assert _refusal(await locked.text()) == _refusal(wrong_text)
    assert (await console.client.get("/console/", allow_redirects=False)).status == 303

    console.clock.set(console.clock.now() + timedelta(minutes=16))
    assert (await console.log_in("alice", PASSWORD)).status == 303


def _refusal(page: str) -> str:
    found = re.search(r'id="login-refused">([^<]*)<', page)
    assert found, page[:500]
    return found.group(1)


async def test_every_post_needs_the_sessions_csrf_token(console: Console) -> None:
    console.add_agent("alice")
    # the login form itself
    no_token = await console.client.post(
        "/console/login", data={"login": "alice", "password": PASSWORD}, allow_redirects=False
    )
    assert no_token.status == 403
    assert (await console.log_in("alice")).status == 303
    token = await console.csrf("/console/")

    posts = ["/console/claim-next", "/console/logout", "/console/tickets/1/resolve"]
    for path in posts:
        missing = await console.client.post(path, data={}, allow_redirects=False)
        wrong = await console.client.post(
            path, data={"csrf": token[:-2] + "xx"}, allow_redirects=False
        )
        wrong_header = await console.client.post(
            path, headers={"X-CSRF-Token": "forged"}, allow_redirects=False
        )
        assert (missing.status, wrong.status, wrong_header.status) == (403, 403, 403), path
    # a token from another session (another browser) does not open this one
    jar = aiohttp.CookieJar(unsafe=True)
    async with (
        aiohttp.ClientSession(cookie_jar=jar) as other,
        other.get(console.client.make_url("/console/login")) as stranger,
    ):
        stranger_token = CSRF.search(await stranger.text())
    assert stranger_token
    refused = await console.client.post(
        "/console/logout", data={"csrf": stranger_token.group(1)}, allow_redirects=False
    )
    assert refused.status == 403
    # still logged in after all that; the right token (form or header) works
    assert (await console.client.get("/console/login", allow_redirects=False)).status == 303
    out = await console.client.post(
        "/console/logout", headers={"X-CSRF-Token": token}, allow_redirects=False
    )
    assert _login_location(out)
    assert _login_location(await console.client.get("/console/", allow_redirects=False))


async def test_forged_or_tampered_session_cookie_is_refused(console: Console) -> None:
    console.add_agent("root", Role.ADMIN)
    assert (await console.log_in("root")).status == 303
    genuine = console.cookie()

    tampered = genuine[:40] + ("A" if genuine[40] != "A" else "B") + genuine[41:]
    # the same claim, encrypted with a key that is not the cluster's
    forged = Fernet(Fernet.generate_key()).encrypt(b'{"agent":1,"csrf":"x"}').decode()
    for cookie in (tampered, forged, "not-a-session", ""):
        console.set_cookie(cookie)
        assert _login_location(await console.client.get("/console/", allow_redirects=False))
        assert _login_location(
            await console.client.get("/console/supervisor", allow_redirects=False)
        )
        stream = await console.client.get("/console/events", allow_redirects=False)
        assert stream.status == 401
        fragment = await console.client.get(
            "/console/fragments/overview", headers={"HX-Request": "true"}, allow_redirects=False
        )
        assert fragment.status == 401 and fragment.headers["HX-Redirect"] == "/console/login"

    console.set_cookie(genuine)
    assert (await console.client.get("/console/login", allow_redirects=False)).status == 303


async def test_session_cookie_is_httponly_lax_and_expires_when_idle(console: Console) -> None:
    console.add_agent("alice")
    response = await console.log_in("alice")
    header = response.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/console/" in header
    assert "Secure" not in header  # service.public_url is not https in the fixture shop
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")

    hours = console.pipeline.config.console.session_hours
    console.clock.set(console.clock.now() + timedelta(hours=hours - 1))
    assert (await console.client.get("/console/login", allow_redirects=False)).status == 303
    # that request re-issued the cookie: the idle time counts from it
    console.clock.set(console.clock.now() + timedelta(hours=hours - 1))
    assert (await console.client.get("/console/login", allow_redirects=False)).status == 303
    console.clock.set(console.clock.now() + timedelta(hours=hours, seconds=1))
    assert (await console.client.get("/console/login", allow_redirects=False)).status == 200


async def test_disabled_agents_session_stops_working(console: Console) -> None:
    console.add_agent("alice")
    assert (await console.log_in("alice")).status == 303
    assert (await console.client.get("/console/", allow_redirects=False)).status == 200
    console.set_active("alice", False)
    assert _login_location(await console.client.get("/console/", allow_redirects=False))
    # and enabling again does not bring the old session back: it was ended
    console.set_active("alice", True)
    assert _login_location(await console.client.get("/console/", allow_redirects=False))


async def test_supervisor_page_is_refused_to_agents(console: Console) -> None:
    console.add_agent("alice")
    console.add_agent("sam", Role.SUPERVISOR)
    assert (await console.log_in("alice")).status == 303
    assert (await console.client.get("/console/supervisor")).status == 403
    assert (await console.client.get("/console/fragments/supervisor")).status == 403
    assert 'id="nav-supervisor"' not in await (await console.client.get("/console/")).text()

    token = await console.csrf("/console/")
    await console.client.post("/console/logout", data={"csrf": token})
    assert (await console.log_in("sam")).status == 303
    page = await console.client.get("/console/supervisor")
    assert page.status == 200, await page.text()


async def test_another_queues_ticket_needs_the_role(console: Console) -> None:
    """An agent who works only `general` cannot open a complaint's ticket; a supervisor can."""
    console.add_agent("alice", queues=("general",))
    console.add_agent("sam", Role.SUPERVISOR)
    console.pipeline.handle(
        Inbound("webhook", "m1", "cust", "cust", "我要投诉，你们太过分了", console.clock.now())
    )
    (ticket,) = console.pipeline.store.tickets("complaints")
    assert (await console.log_in("alice")).status == 303
    refused = await console.client.get(f"/console/tickets/{ticket.id}")
    assert refused.status == 403
    assert "太过分" not in await refused.text()
    claim = await console.client.post(
        f"/console/tickets/{ticket.id}/claim", data={"csrf": await console.csrf("/console/")}
    )
    assert claim.status == 403

    await console.client.post("/console/logout", data={"csrf": await console.csrf("/console/")})
    assert (await console.log_in("sam")).status == 303
    allowed = await console.client.get(f"/console/tickets/{ticket.id}")
    assert allowed.status == 200
    assert "太过分" in await allowed.text()


async def test_cookie_is_secure_behind_https(
    config: Config, encoder: MemoEncoder, shop_knowledge: Knowledge, tmp_path: Path
) -> None:
    config.service.public_url = "https://support.example.com"
    console = await open_console(config, encoder, tmp_path, knowledge=shop_knowledge)
    try:
        page = await console.client.get("/console/login")
        assert "; Secure" in page.headers["Set-Cookie"]
    finally:
        await console.client.close()
        console.pipeline.store.close()


def test_session_key_is_made_once_for_every_worker(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers starting together agree on one key (insert-if-absent); BOT_CONSOLE_SECRET, when
    set, is used instead of it."""
    monkeypatch.delenv(SECRET_ENV, raising=False)
    clock = FixedClock(at("2026-11-24 10:00"))
    with ThreadPoolExecutor(4) as pool:
        keys = set(pool.map(lambda _: session_key(store, clock), range(8)))
    assert len(keys) == 1
    (key,) = keys
    Fernet(key)  # a valid key
    assert session_key(store, clock) == key

    monkeypatch.setenv(SECRET_ENV, "our own secret")
    own = session_key(store, clock)
    assert own != key and own == session_key(store, clock)
    Fernet(own)
