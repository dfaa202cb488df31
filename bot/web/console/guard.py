"""The console's door: every request gets its session; every POST must carry the session's
CSRF token (form field `csrf` or header `X-CSRF-Token`); every page but login needs an agent
who is still active; refusals from the desk become the matching status page. Every response
leaves with a self-only Content-Security-Policy and the session cookie, when it changed."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.humans.desk import DeskError
from bot.web.auth import current_agent
from bot.web.console.parts import AGENT, SESSION, console_of, session_of
from bot.web.console.render import render

log = logging.getLogger("bot.web.console")

#: route names anyone may reach without logging in
PUBLIC = frozenset({"login", "login_post", "language", "static"})
#: files every page (the login page too) loads: no session, no agent
ASSETS = frozenset({"static", "brand_css", "brand_logo"})

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def see_other(location: str) -> web.Response:
    """A redirect after a POST (or to the login page), returned rather than raised so the
    session cookie travels with it."""
    return web.Response(status=303, headers={"Location": location})


def is_htmx(request: web.Request) -> bool:
    return request.headers.get("HX-Request") == "true"


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    console = console_of(request)
    assert console.sessions is not None, "the console starts with the application"
    route = request.match_info.route.name
    if route in ASSETS:
        return await handler(request)
    session = console.sessions.load(request)
    request[SESSION] = session
    if request.method == "POST" and not await _csrf_ok(request):
        log.info("console: POST %s refused: missing or wrong CSRF token", request.path)
        return error_page(request, 403, "csrf_refused")
    if route not in PUBLIC:
        agent_id = session.agent_id
        agent = None
        if agent_id is not None:
            agent = await console.run(current_agent, console.pipeline.store, agent_id)
        if agent is None:
            if agent_id is not None:
                session.log_out()
            if is_htmx(request) or route == "events":
                return web.Response(status=401, headers={"HX-Redirect": "/console/login"})
            return see_other("/console/login")
        request[AGENT] = agent
    try:
        return await handler(request)
    except DeskError as exc:
        return error_page(request, exc.status, _PAGES.get(exc.status, "error"), str(exc))
    except (web.HTTPNotFound, web.HTTPForbidden, web.HTTPMethodNotAllowed) as exc:
        # aiohttp's own "404: Not Found" is English text on a blank page
        return error_page(request, exc.status, _PAGES.get(exc.status, "error"))


#: the words for a refusal's status, in the agent's language
_PAGES = {400: "bad_request", 403: "forbidden_page", 404: "not_found", 409: "conflict"}


async def _csrf_ok(request: web.Request) -> bool:
    session = session_of(request)
    expected = session.data.get("csrf")
    sent = request.headers.get("X-CSRF-Token")
    if sent is None and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        value = (await request.post()).get("csrf")
        sent = value if isinstance(value, str) else None
    return (
        isinstance(expected, str)
        and isinstance(sent, str)
        and hmac.compare_digest(sent.encode(), expected.encode())
    )


def error_page(request: web.Request, status: int, key: str, detail: str = "") -> web.Response:
    """The refusal in the agent's language. `detail` is the desk's own English sentence, shown
    in the English console only (the translated `key` says the same in every language)."""
    template = "_error.html" if is_htmx(request) else "error.html"
    return render(request, template, {"key": key, "detail": detail, "status": status}, status)


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Headers every console response carries, and the session cookie when it changed."""
    # a page may bring a stricter policy of its own (a weekly report)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    if request.match_info.route.name != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    session = request.get(SESSION)
    if session is None:  # refused at the service's door (bot/web/limits.py), before the guard
        return
    sessions = console_of(request).sessions
    if sessions is not None:
        sessions.save(response, session)
