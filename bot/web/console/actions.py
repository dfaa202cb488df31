"""What agents do: claim, check and send a reply, transfer, resolve. Each is a POST (the guard
has checked its CSRF token), one desk call in the store pool, then a redirect to the page that
shows the result (so a reload never sends twice)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from bot.domain.agent import Agent
from bot.humans.desk import MAX_NOTE, MAX_REPLY, Desk
from bot.humans.views import ReplyWarning
from bot.web.console.guard import see_other
from bot.web.console.pages import ticket_context, ticket_id_of
from bot.web.console.parts import agent_of, console_of, session_of
from bot.web.console.render import render


async def claim_next(request: web.Request) -> web.Response:
    console, agent = console_of(request), agent_of(request)
    claimed = await console.run(console.desk.claim_next, agent)
    if claimed is None:
        session_of(request).flash("nothing_to_claim")
        return see_other("/console/")
    session_of(request).flash("claimed")
    return _to_ticket(claimed.id)


async def claim(request: web.Request) -> web.Response:
    return await _on_ticket(request, Desk.claim, "claimed")


async def resolve(request: web.Request) -> web.Response:
    return await _on_ticket(request, Desk.resolve, "resolved")


async def check(request: web.Request) -> web.Response:
    """The draft's warnings while the agent types (forbidden phrases, password requests)."""
    console = console_of(request)
    text = str((await request.post()).get("text", ""))[:MAX_REPLY]
    warnings = await console.run(console.desk.check_reply, text) if text.strip() else []
    return render(request, "_warnings.html", {"warnings": warnings, "held": False})


async def reply(request: web.Request) -> web.Response:
    """Send, unless the desk finds something to warn about: then the page comes back with the
    draft and the warnings, and only a second, explicit "send anyway" sends it."""
    console, agent = console_of(request), agent_of(request)
    ticket_id = ticket_id_of(request)
    form = await request.post()
    text = str(form.get("text", "")).strip()
    if not text:
        session_of(request).flash("reply_empty")
        return _to_ticket(ticket_id)
    if len(text) > MAX_REPLY:
        # never cut an agent's words silently: the draft comes back with the reason
        too_long = [ReplyWarning("too_long", f"{len(text)} / {MAX_REPLY}")]
        context = await ticket_context(console, agent, ticket_id, text, too_long)
        context["held"] = False
        return render(request, "ticket.html", context, status=400)
    confirmed = form.get("confirmed") == "1"
    outcome = await console.run(console.desk.reply, agent, ticket_id, text, confirmed=confirmed)
    if not outcome.sent:
        context = await ticket_context(console, agent, ticket_id, text, outcome.warnings)
        return render(request, "ticket.html", context)
    session_of(request).flash("reply_sent")
    return _to_ticket(ticket_id)


async def transfer(request: web.Request) -> web.Response:
    console, agent = console_of(request), agent_of(request)
    ticket_id = ticket_id_of(request)
    form = await request.post()
    kind, _, target = str(form.get("target", "")).partition(":")
    note = str(form.get("note", "")).strip()[:MAX_NOTE]
    if not target or kind not in ("queue", "agent"):
        session_of(request).flash("transfer_target_missing")
        return _to_ticket(ticket_id)
    await console.run(
        console.desk.transfer,
        agent,
        ticket_id,
        queue=target if kind == "queue" else None,
        to_login=target if kind == "agent" else None,
        note=note,
    )
    session_of(request).flash("transferred")
    return see_other("/console/")


async def _on_ticket(
    request: web.Request, act: Callable[[Desk, Agent, int], object], flash: str
) -> web.Response:
    """An action that needs nothing from the form but the ticket (claim, resolve): the
    ticket's page then shows the result."""
    console, agent = console_of(request), agent_of(request)
    ticket_id = ticket_id_of(request)
    await console.run(act, console.desk, agent, ticket_id)
    session_of(request).flash(flash)
    return _to_ticket(ticket_id)


def _to_ticket(ticket_id: int) -> web.Response:
    return see_other(f"/console/tickets/{ticket_id}")
