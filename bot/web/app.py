"""The aiohttp application of `bot run`: the door every request passes (body caps, slow
bodies, per-address rates: bot/web/limits.py), health checks, the channels' routes, the agents'
console (/console/), and the long-lived parts — thread pools, scheduler and its leadership,
dispatcher, channels, the console's live updates — each opened and closed in one place
(`cleanup_ctx`), in order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web

from bot.domain.messages import Outbound
from bot.hours.schedule import format_moment
from bot.jobs import scheduler
from bot.jobs.dispatch import Dispatcher
from bot.jobs.leader import Leadership
from bot.pipeline.knowledge import Knowledge
from bot.pipeline.runner import Pipeline
from bot.store.channel_store import ChannelStore
from bot.telemetry.exposition import CONTENT_TYPE, Exposition
from bot.understanding.compute import one_thread
from bot.web import console
from bot.web.channels import Channel, ChannelContext, OnDuty
from bot.web.limits import Door
from bot.web.rates import RateLimiter
from bot.web.service import MessageService

log = logging.getLogger("bot.web")


@dataclass
class Parts:
    """What `bot run` assembled, handed to the application."""

    pipeline: Pipeline
    channels: Sequence[Channel] = ()
    learn: Callable[[], Knowledge] | None = None
    run_scheduler: bool = True


SERVICE = web.AppKey("service", MessageService)
LEADERSHIP = web.AppKey("leadership", Leadership)
PARTS = web.AppKey("parts", Parts)


def make_app(parts: Parts) -> web.Application:
    config = parts.pipeline.config.service
    store_pool = ThreadPoolExecutor(
        config.threads, thread_name_prefix="store", initializer=one_thread
    )
    limiter = RateLimiter(parts.pipeline.store, parts.pipeline.clock, store_pool, config)
    door = Door(limiter, config.body_kib, config.body_timeout_seconds)
    # the door sets each route's own cap on its requests; this is only the ceiling
    ceiling = max(door.caps.cap(name) for name in type(door.caps).model_fields)
    app = web.Application(client_max_size=ceiling, middlewares=[door.middleware])
    app[PARTS] = parts
    reading_pool = ThreadPoolExecutor(1, thread_name_prefix="reading", initializer=one_thread)
    pipeline = parts.pipeline
    dispatcher = Dispatcher(
        pipeline.store,
        {channel.name: channel.sender for channel in parts.channels},
        pipeline.clock,
        pipeline.worker,
        store_pool,
        pipeline.config.handoff.reply_windows,
        pipeline.config.handoff.reply_quotas,
        lease=timedelta(seconds=config.send_lease_seconds),
    )
    service = MessageService(
        pipeline,
        store_pool,
        reading_pool,
        on_written=dispatcher.wake,
        batch_max=config.batch_max,
        batch_wait=config.batch_wait_ms / 1000,
    )
    app[SERVICE] = service
    app[LEADERSHIP] = Leadership(pipeline.store, pipeline.worker, pipeline.clock)

    def on_duty(language: str) -> OnDuty:
        """The default queue's people, as of now (the content read last)."""
        schedule = pipeline.knowledge.schedules.get(pipeline.config.front_schedule)
        now = pipeline.clock.now()
        if schedule is None or schedule.is_open(now):
            return OnDuty(True)
        back = schedule.next_open(now)
        return OnDuty(False, back, format_moment(back, language) if back else "")

    for channel in parts.channels:
        context = ChannelContext(
            messages=service,
            store=ChannelStore(pipeline.store, pipeline.clock, channel.name),
            clock=pipeline.clock,
            worker=pipeline.worker,
            public_url=config.public_url,
            welcome=pipeline.config.texts.welcome,
            store_pool=store_pool,
            config_path=pipeline.config.path,
            limits=limiter,
            on_duty=on_duty,
        )
        before = set(app.router.resources())
        channel.mount(app, context)
        mounted = [r for r in app.router.resources() if r not in before]
        door.channel_routes(mounted, channel.name, channel.platform_retries)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    console_parts = console.mount(app, pipeline, store_pool, wake=dispatcher.wake)
    exposition = Exposition(pipeline.store, pipeline.clock, list(pipeline.config.queues))

    async def metrics(request: web.Request) -> web.Response:
        """Prometheus: this worker's counters and the cluster's queues (read in the pool)."""
        body = await asyncio.get_running_loop().run_in_executor(store_pool, exposition.render)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    app.router.add_get("/metrics", metrics)

    async def pools(app: web.Application) -> AsyncIterator[None]:
        yield
        store_pool.shutdown(wait=True, cancel_futures=False)
        reading_pool.shutdown(wait=True)

    async def jobs(app: web.Application) -> AsyncIterator[None]:
        if not parts.run_scheduler:
            yield
            return
        loop = asyncio.get_running_loop()

        def written(_: Sequence[Outbound]) -> None:
            loop.call_soon_threadsafe(dispatcher.wake)

        leadership = app[LEADERSHIP]
        timed = await loop.run_in_executor(
            store_pool, lambda: scheduler.start(pipeline, leadership, parts.learn, written)
        )
        yield
        await loop.run_in_executor(store_pool, timed.shutdown)
        await loop.run_in_executor(store_pool, leadership.resign)

    async def sending(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(dispatcher.run())
        yield
        await dispatcher.finish(task, config.drain_seconds)

    async def channels(app: web.Application) -> AsyncIterator[None]:
        for channel in parts.channels:
            await channel.start()
        yield
        for channel in reversed(parts.channels):
            await channel.stop()

    # opened in this order, closed in the reverse: the dispatcher finishes sending before the
    # channels it sends through close; the console's key and live watcher need the store pool
    app.cleanup_ctx.extend([pools, console_parts, channels, jobs, sending])

    async def drain(app: web.Application) -> None:
        await service.drain(config.drain_seconds)

    app.on_shutdown.append(drain)
    return app


def make_runner(app: web.Application, drain_seconds: float) -> web.AppRunner:
    """How `bot run` serves the application (the tests serve it the same way): no access log,
    signals left to the caller, and a request whose client goes away runs to its end
    (aiohttp's default, unlike its test server, which cancels it), so the channel learns that
    its inline replies were not written and gives them back."""
    return web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=drain_seconds)


async def healthz(request: web.Request) -> web.Response:
    """Alive: the process answers."""
    return web.json_response({"alive": True})


async def readyz(request: web.Request) -> web.Response:
    """Ready for traffic: content learnt, database reachable, schema current, its file taking
    writes (SQLite: `storage`), not draining, and no channel stuck (a Telegram poller failing
    without moving); `troubles` says why."""
    app = request.app
    parts, service = app[PARTS], app[SERVICE]
    store = parts.pipeline.store
    loop = asyncio.get_running_loop()
    database = await loop.run_in_executor(None, store.reachable)
    schema = database and await loop.run_in_executor(None, store.schema_current)
    troubles = {c.name: t for c in parts.channels if (t := c.trouble()) is not None}
    stuck = bool(troubles)
    if store.trouble is not None:
        troubles["storage"] = store.trouble
    checks = {
        "encoder": parts.pipeline.knowledge is not None,
        "database": database,
        "schema": bool(schema),
        "storage": store.trouble is None,
        "accepting": service.accepting,
        "channels": not stuck,
    }
    body: dict[str, object] = {
        "ready": all(checks.values()),
        **checks,
        "troubles": troubles,
        "worker": parts.pipeline.worker,
        "leader": app[LEADERSHIP].is_leader,
        "in_flight": service.in_flight,
    }
    return web.json_response(body, status=200 if body["ready"] else 503)
