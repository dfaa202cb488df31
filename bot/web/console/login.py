"""Logging in and out, and the language toggle.

Every refusal (unknown login, wrong password, disabled, locked) gets the same words and status;
the log keeps the real reason. The password check (argon2, deliberately slow) runs in the store
pool, never on the event loop."""

from __future__ import annotations

import logging
from datetime import timedelta

from aiohttp import web

from bot.web.auth import LoginRefused, authenticate
from bot.web.console.guard import see_other
from bot.web.console.i18n import LANGUAGES
from bot.web.console.parts import console_of, session_of
from bot.web.console.render import render

log = logging.getLogger("bot.web.console")

#: longest login and password read from the form (anything longer is refused unchecked)
MAX_FIELD = 256


async def login_page(request: web.Request) -> web.Response:
    if session_of(request).agent_id is not None:
        return see_other("/console/")
    return render(request, "login.html", {"refused": False, "login": ""})


async def login_post(request: web.Request) -> web.Response:
    console = console_of(request)
    form = await request.post()
    login = str(form.get("login", "")).strip()[:MAX_FIELD]
    password = str(form.get("password", ""))
    settings = console.config.console
    try:
        if not login or not password or len(password) > MAX_FIELD:
            raise LoginRefused("empty or oversized login form")
        agent = await console.run(
            authenticate,
            console.pipeline.store,
            login,
            password,
            console.pipeline.clock.now(),
            settings.lockout_failures,
            timedelta(minutes=settings.lockout_minutes),
        )
    except LoginRefused as refused:
        log.info("console login refused: %s (from %s)", refused.reason, request.remote)
        return render(request, "login.html", {"refused": True, "login": login}, status=401)
    session_of(request).log_in(agent.id)
    await console.run(console.desk.seen, agent)
    log.info("console: %s logged in", agent.login)
    return see_other("/console/")


async def logout(request: web.Request) -> web.Response:
    session = session_of(request)
    if session.agent_id is not None:
        await console_of(request).run(console_of(request).desk.away, session.agent_id)
    session.log_out()
    session.flash("logged_out")
    return see_other("/console/login")


async def language(request: web.Request) -> web.Response:
    """Switch zh/en; back to the page the toggle was on (only a console path)."""
    form = await request.post()
    chosen = str(form.get("lang", ""))
    if chosen in LANGUAGES:
        session_of(request).language = chosen
    back = str(form.get("next", ""))
    return see_other(back if back.startswith("/console/") and "//" not in back else "/console/")
