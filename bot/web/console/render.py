"""Templates (Jinja2 through aiohttp-jinja2, autoescaped) and what every page is given: the
words in the agent's language, the CSRF token, the agent, and times in the team's time zone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.content.config import pick
from bot.domain.agent import Role
from bot.web.console.durations import UNITS, spoken
from bot.web.console.i18n import preferred, translate
from bot.web.console.parts import AGENT, SESSION, console_of
from bot.web.console.sessions import Session


def setup(app: web.Application) -> None:
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("bot.web.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        default_helpers=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def language_of(request: web.Request) -> str:
    session = request.get(SESSION)
    if isinstance(session, Session) and session.language:
        return session.language
    return preferred(request.headers.get("Accept-Language"))


def render(
    request: web.Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> web.Response:
    """A page or a fragment, with what every template may use."""
    return aiohttp_jinja2.render_template(
        template, request, {**page_context(request), **(context or {})}, status=status
    )


#: history values that name a queue, or a priority (bot.humans.views.TicketEvent.data)
QUEUE_DATA = frozenset({"queue", "from_queue", "queue_from", "queue_to", "to"})
PRIORITY_DATA = frozenset({"priority", "priority_from", "priority_to"})
#: history values that are the bot's or the scheduler's own words, translated by key
WORD_DATA = frozenset({"reason", "breach"})


def page_context(request: web.Request) -> dict[str, Any]:
    language = language_of(request)
    session = request.get(SESSION)
    agent = request.get(AGENT)
    console = console_of(request)
    zone = console.zone
    now = console.pipeline.clock.now()

    def t(key: str) -> str:
        return translate(language, key)

    def queue_name(queue: str) -> str:
        return console.config.queue_name(queue, language)

    def shown(key: str, value: object) -> str:
        """A value in a ticket's history as agents read it: queues by their names, priorities
        and the bot's reasons in the agent's language (a transfer's `to` may be an agent)."""
        text = str(value)
        if key in QUEUE_DATA:
            return queue_name(text)
        if key in PRIORITY_DATA:
            return t(f"priority_{text}")
        if key in WORD_DATA:
            return t(f"{key}_{'_'.join(text.split())}")
        return text

    def duration(seconds: float | None, ahead: bool = False) -> str:
        """A wait or an age as agents say it ("2 天 3 小时", "5 min"); `ahead` for a deadline
        or a measured length, which under a minute is "under a minute", not "just now"."""
        return spoken(seconds, language, ahead=ahead)

    def local(moment: datetime | None) -> str:
        """HH:MM today, otherwise MM-DD HH:MM, in the team's time zone."""
        if moment is None:
            return "–"
        shown = moment.astimezone(zone)
        if shown.date() == now.astimezone(zone).date():
            return shown.strftime("%H:%M")
        return shown.strftime("%m-%d %H:%M")

    def until(moment: datetime | None) -> str:
        """Seconds from now to `moment` (negative: past), for the clocks the page's script
        counts on from the time it received them, whatever the browser's own clock says."""
        return "" if moment is None else f"{(moment - now).total_seconds():.0f}"

    return {
        "t": t,
        "brand_name": pick(console.config.brand.name, language),
        "brand_logo": bool(console.config.brand.logo),
        "queue_name": queue_name,
        "shown": shown,
        "until": until,
        "path": request.path_qs,
        "lang": language,
        "local": local,
        "duration": duration,
        "units": UNITS.get(language, UNITS["en"]),
        "agent": agent,
        "is_supervisor": agent is not None and agent.role.may(Role.SUPERVISOR),
        "csrf": session.csrf if isinstance(session, Session) else "",
        # called by the page layout only, so a fragment's request never eats a message
        "flashes": session.take_flashes if isinstance(session, Session) else list,
    }
