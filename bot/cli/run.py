"""`bot run`: one worker of the service. Start several on one PostgreSQL behind a load balancer
to scale out; they share the work through the database.

Shutting down (SIGTERM or Ctrl-C): new messages get 503 and /readyz turns 503, so a load
balancer moves on; the messages in flight finish; the listener closes; the dispatcher sends what
is due and gives back what it holds; then the process exits.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from bot.content.config import Config
from bot.content.problems import Problem, ProblemsError, line_of_key
from bot.domain.clock import SystemClock


@dataclass(frozen=True)
class Site:
    """A small site served beside the service, on its own port."""

    name: str
    app: web.Application
    port: int


def serve(
    config: Config,
    host: str | None,
    port: int | None,
    also: Sequence[Site] = (),
) -> int:
    """Serve until SIGTERM or Ctrl-C. `also`: other small sites served beside it on the same
    host (`bot demo`'s sample shop page), started after it and stopped before it."""
    from bot.understanding.encoders import MemoEncoder, make_encoder

    started = time.perf_counter()
    encoder = MemoEncoder(make_encoder(config.encoder), config.cache_dir)
    # The encoder reads its weights on first use (about a second); let it do so while the rest
    # of the bot is imported, which takes about as long.
    warming = threading.Thread(target=encoder.inner.encode, args=(["warm-up"],), daemon=True)
    warming.start()

    from adapters import channels_from_config
    from bot.assembly import build_pipeline, channel_problems, load_knowledge
    from bot.jobs.heap import freeze_startup
    from bot.web.app import SERVICE, Parts, make_app, make_runner

    problems = channel_problems(config)
    if problems:
        raise ProblemsError(problems)
    channels = channels_from_config(config)
    from bot.cli.progress import LEARNING, step

    with step(LEARNING, sys.stderr):
        warming.join()
        pipeline = build_pipeline(config, SystemClock(), encoder=encoder)
    app = make_app(Parts(pipeline, channels, learn=lambda: load_knowledge(config, encoder)))
    freeze_startup()  # bot.jobs.heap: what start-up built stays out of the collector's sweeps
    host = host or config.service.host
    port = port or config.service.port
    names = ", ".join(c.name for c in channels) or "none (enable one in [channels])"

    async def main() -> int:
        runner = make_runner(app, config.service.drain_seconds)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            raise ProblemsError(
                [
                    Problem(
                        config.path,
                        line_of_key(config.path, "service.port"),
                        f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                        "stop whatever uses that port, or choose another with --port or "
                        "service.port",
                    )
                ]
            ) from exc
        print(
            f"bot run: worker {pipeline.worker} listening on http://{host}:{port} "
            f"(channels: {names}; ready in {time.perf_counter() - started:.1f}s)",
            file=sys.stderr,
            flush=True,
        )
        beside = []
        for site in also:
            extra = web.AppRunner(site.app, access_log=None, handle_signals=False)
            await extra.setup()
            beside.append(extra)
            try:
                await web.TCPSite(extra, host, site.port).start()
            except OSError as exc:
                for opened in beside:
                    await opened.cleanup()
                await runner.cleanup()
                raise ProblemsError(
                    [
                        Problem(
                            config.path,
                            line_of_key(config.path, "service.port"),
                            f"cannot listen on {host}:{site.port} for the {site.name}: "
                            f"{exc.strerror or exc}",
                            "stop whatever uses that port, or choose another with --port",
                        )
                    ]
                ) from exc
        print(
            f"  agents' console: {_console_address(config, host, port)}",
            file=sys.stderr,
            flush=True,
        )
        for site in also:
            print(f"  {site.name}: http://{host}:{site.port}/", file=sys.stderr, flush=True)
        public = config.service.public_url or f"https://<your public address, proxied to {port}>"
        for channel in channels:
            print(f"  {channel.name}: {channel.describe(public)}", file=sys.stderr, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        service = app[SERVICE]
        print(
            f"bot run: stopping; finishing {service.in_flight} message(s) in flight",
            file=sys.stderr,
            flush=True,
        )
        await service.drain(config.service.drain_seconds)
        for extra in beside:
            await extra.cleanup()
        await runner.cleanup()
        print("bot run: stopped", file=sys.stderr, flush=True)
        return 0

    try:
        return asyncio.run(main())
    finally:
        pipeline.store.close()


def _console_address(config: Config, host: str, port: int) -> str:
    """Where agents open the console: through `service.public_url` when it is set (https
    behind a proxy), with this worker's own address beside it for a check on the machine."""
    local = f"http://{host}:{port}/console/"
    public = config.service.public_url.rstrip("/")
    return f"{public}/console/ (this worker: {local})" if public else local
