"""The pages agents look at: their queues and tickets, one ticket, the supervisor's view. Each
page has a fragment of the parts that change, which the page fetches again when the live
stream says the desk moved (htmx), so a typed reply is never lost to a refresh."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.domain.agent import Agent, Role
from bot.domain.ticket import TicketState
from bot.humans.desk import Forbidden
from bot.metrics.writer import latest, page_of
from bot.web.console.parts import Console, agent_of, console_of
from bot.web.console.render import render

#: a report page: its inline styles and SVG, nothing else (no script, nothing fetched)
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


async def overview(request: web.Request) -> web.Response:
    console, agent = console_of(request), agent_of(request)
    await console.run(console.desk.seen, agent)
    return render(request, "overview.html", await _overview(console, agent))


async def overview_fragment(request: web.Request) -> web.Response:
    console, agent = console_of(request), agent_of(request)
    return render(request, "_overview.html", await _overview(console, agent))


async def _overview(console: Console, agent: Agent) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        desk = console.desk
        return {
            "queues": desk.overview(agent),
            "mine": desk.mine(agent),
            "queued": desk.queued(agent),
        }

    return await console.run(read)


#: the done lists: a tab each, newest first, `PAGE` (a screenful) at a time
DONE = {"resolved": TicketState.RESOLVED, "closed": TicketState.CLOSED}
PAGE = 20


async def done(request: web.Request) -> web.Response:
    """Resolved or closed tickets (?status=), the last done first; "more" shows the next
    page below the ones already shown (?shown=)."""
    console, agent = console_of(request), agent_of(request)
    tab = request.query.get("status", "resolved")
    if tab not in DONE:
        raise web.HTTPNotFound()
    shown = _count(request.query.get("shown", "0"))
    lines, more = await console.run(console.desk.done, agent, DONE[tab], 0, shown + PAGE)
    return render(
        request,
        "done.html",
        {"tab": tab, "tabs": list(DONE), "lines": lines, "more": more, "next": shown + PAGE},
    )


async def search(request: web.Request) -> web.Response:
    """The header's one box: a ticket number (`#123`, `123`) opens that ticket; anything else
    lists the tickets whose customer id or messages hold it."""
    console, agent = console_of(request), agent_of(request)
    words = request.query.get("q", "").strip()[:200]
    number = await console.run(console.desk.ticket_number, agent, words) if words else None
    if number is not None:
        raise web.HTTPSeeOther(f"/console/tickets/{number}")
    lines = await console.run(console.desk.search, agent, words)
    return render(request, "search.html", {"words": words, "lines": lines})


def _count(text: str) -> int:
    try:
        return min(max(int(text), 0), 10_000)
    except ValueError:
        return 0


async def waiting(request: web.Request) -> web.Response:
    """The queued tickets of the agent's queues, as ids (JSON): the page's script compares them
    after each live change and, when the agent turned it on, rings for a new one."""
    console, agent = console_of(request), agent_of(request)
    lines = await console.run(console.desk.queued, agent)
    return web.json_response({"queued": [line.id for line in lines if line.status == "queued"]})


async def ticket(request: web.Request) -> web.Response:
    console, agent = console_of(request), agent_of(request)
    ticket_id = ticket_id_of(request)
    await console.run(console.desk.seen, agent)
    return render(request, "ticket.html", await ticket_context(console, agent, ticket_id))


async def ticket_fragment(request: web.Request) -> web.Response:
    console, agent = console_of(request), agent_of(request)
    view = await console.run(console.desk.ticket, agent, ticket_id_of(request))
    return render(request, "_ticket_live.html", {"view": view})


async def ticket_context(
    console: Console,
    agent: Agent,
    ticket_id: int,
    draft: str = "",
    warnings: list[Any] | None = None,
) -> dict[str, Any]:
    """A ticket page's values; `draft` and `warnings` when a reply was held back."""

    def read() -> dict[str, Any]:
        view = console.desk.ticket(agent, ticket_id)
        return {
            "view": view,
            "canned": console.desk.canned(view.language),
            "draft": draft,
            "warnings": warnings or [],
            "held": bool(warnings),
        }

    return await console.run(read)


async def assist(request: web.Request) -> web.Response:
    """Loaded after the page (it runs the encoder), so the transcript shows at once."""
    console, agent = console_of(request), agent_of(request)
    suggestions = await console.run(console.desk.assist, agent, ticket_id_of(request))
    return render(request, "_assist.html", {"suggestions": suggestions})


async def supervisor(request: web.Request) -> web.Response:
    console, agent = console_of(request), agent_of(request)
    _supervisors_only(agent)
    await console.run(console.desk.seen, agent)

    def read() -> dict[str, Any]:
        return {"view": console.desk.supervisor(agent), "report": latest(console.config)}

    return render(request, "supervisor.html", await console.run(read))


async def report(request: web.Request) -> web.Response:
    """A weekly report page (supervisors and admins), as written by `bot report` or the Monday
    job. It needs nothing from outside; its own inline styles are all it may use."""
    console, agent = console_of(request), agent_of(request)
    _supervisors_only(agent)
    path = await console.run(page_of, console.desk.config, request.match_info["stem"])
    if path is None:
        raise web.HTTPNotFound()
    body = await console.run(path.read_bytes)
    return web.Response(
        body=body,
        content_type="text/html",
        charset="utf-8",
        headers={"Content-Security-Policy": REPORT_CSP},
    )


async def supervisor_fragment(request: web.Request) -> web.Response:
    console, agent = console_of(request), agent_of(request)
    _supervisors_only(agent)
    view = await console.run(console.desk.supervisor, agent)
    return render(request, "_supervisor.html", {"view": view})


def _supervisors_only(agent: Agent) -> None:
    if not agent.role.may(Role.SUPERVISOR):
        raise Forbidden("the supervisor view is for supervisors and admins")


def ticket_id_of(request: web.Request) -> int:
    """The ticket number in the path; anything else, or a number past what the database's
    integers hold (SQLite raised OverflowError: a 500), is not found."""
    raw = request.match_info["ticket"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound()
    return int(raw)
