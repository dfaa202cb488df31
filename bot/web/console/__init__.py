"""The agents' web console, served by `bot run` under /console/: login, queues, claim next,
tickets with transcript and agent assist, reply, transfer, resolve, the supervisor view, and
live updates across workers.

It is built only on `bot.humans.desk.Desk` and its view values: the console never reads
ticket tables itself. Desk calls are synchronous and run in the application's store pool.

(Its modules are imported as `import bot.web.console.pages as pages`: `from bot.web.console
import pages` here would read as the package importing itself to tests/test_layers.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from datetime import timedelta
from pathlib import Path

from aiohttp import web

import bot.web.console.actions as actions
import bot.web.console.brand as brand
import bot.web.console.events as events
import bot.web.console.login as login
import bot.web.console.pages as pages
import bot.web.console.render as render
from bot.humans.desk import Desk
from bot.pipeline.runner import Pipeline
from bot.web.console.guard import guard, on_prepare
from bot.web.console.live import DeskWatch
from bot.web.console.parts import CONSOLE, Console
from bot.web.console.sessions import Sessions, session_key

STATIC = Path(__file__).parent / "static"

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def mount(
    app: web.Application,
    pipeline: Pipeline,
    pool: Executor,
    wake: Callable[[], None] | None = None,
) -> CleanupContext:
    """Add the console to `app` under /console/. Returns the cleanup context that opens its
    long-lived parts (the session key, the live watcher); the caller orders it among the
    application's others (after the store pool opens, before it closes). `wake` is called on
    the event loop after an agent's reply or a survey question is written (the dispatcher
    sends it at once rather than at its next look)."""
    desk = Desk(
        pipeline.config, pipeline.store, pipeline.clock, knowledge=lambda: pipeline.knowledge
    )
    url = pipeline.store.engine.url
    watch = DeskWatch(
        desk.version, pool, listen_url=url if url.get_backend_name() == "postgresql" else None
    )
    console = Console(pipeline, desk, pool, watch)
    sub = web.Application(middlewares=[guard])
    sub[CONSOLE] = console
    render.setup(sub)
    sub.on_response_prepare.append(on_prepare)
    _routes(sub.router)
    app.router.add_get("/console", _to_console)
    app.router.add_get("/", _root_to_console)
    app.add_subapp("/console", sub)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        if wake is not None:
            woken = wake

            def written() -> None:  # the desk writes in the store pool's threads
                loop.call_soon_threadsafe(woken)

            desk.on_written = written
        key = await loop.run_in_executor(pool, session_key, pipeline.store, pipeline.clock)
        config = pipeline.config
        console.sessions = Sessions(
            key,
            pipeline.clock,
            timedelta(hours=config.console.session_hours),
            secure=config.service.public_url.startswith("https://"),
            cookie=config.console.cookie,
        )
        watch.start()
        yield
        await watch.close()

    async def end_streams(app: web.Application) -> None:
        """Open event streams end first, so shutting down does not wait for them."""
        await watch.close()

    app.on_shutdown.append(end_streams)
    return lifetime


def _routes(router: web.UrlDispatcher) -> None:
    router.add_get("/", pages.overview, name="overview")
    router.add_get("/login", login.login_page, name="login")
    router.add_post("/login", login.login_post, name="login_post")
    router.add_post("/logout", login.logout, name="logout")
    router.add_post("/language", login.language, name="language")
    router.add_get("/events", events.events, name="events")
    router.add_get("/fragments/overview", pages.overview_fragment, name="overview_fragment")
    router.add_get("/fragments/waiting", pages.waiting, name="waiting")
    router.add_post("/claim-next", actions.claim_next, name="claim_next")
    router.add_get("/done", pages.done, name="done")
    router.add_get("/search", pages.search, name="search")
    router.add_get("/tickets/{ticket}", pages.ticket, name="ticket")
    router.add_get("/tickets/{ticket}/live", pages.ticket_fragment, name="ticket_fragment")
    router.add_get("/tickets/{ticket}/assist", pages.assist, name="assist")
    router.add_post("/tickets/{ticket}/claim", actions.claim, name="claim")
    router.add_post("/tickets/{ticket}/check", actions.check, name="check")
    router.add_post("/tickets/{ticket}/reply", actions.reply, name="reply")
    router.add_post("/tickets/{ticket}/transfer", actions.transfer, name="transfer")
    router.add_post("/tickets/{ticket}/resolve", actions.resolve, name="resolve")
    router.add_get("/supervisor", pages.supervisor, name="supervisor")
    router.add_get("/fragments/supervisor", pages.supervisor_fragment, name="supervisor_fragment")
    router.add_get("/reports/{stem}", pages.report, name="report")
    router.add_static("/static/", STATIC, name="static", append_version=False)
    router.add_get("/brand.css", brand.stylesheet, name="brand_css")
    router.add_get("/brand/logo", brand.logo, name="brand_logo")


async def _to_console(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("/console/")


async def _root_to_console(request: web.Request) -> web.Response:
    """The service's address alone leads to the console (302: the root may serve something
    else one day, so browsers must not remember it)."""
    raise web.HTTPFound("/console/")
