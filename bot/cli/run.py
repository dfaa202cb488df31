"""`bot run`: one worker of the service. Start several on one PostgreSQL behind a load balancer
to scale out; they share the work through the database."""

from __future__ import annotations

import logging
import threading
import time

from aiohttp import web

from bot.content.config import Config
from bot.domain.clock import SystemClock

log = logging.getLogger("bot.run")


def serve(config: Config, host: str | None, port: int | None) -> int:
    from bot.understanding.encoders import MemoEncoder, make_encoder

    started = time.perf_counter()
    encoder = MemoEncoder(make_encoder(config.encoder), config.cache_dir)
    # The encoder reads its weights on first use (about a second); let it do so while the rest
    # of the bot is imported, which takes about as long.
    warming = threading.Thread(target=encoder.inner.encode, args=(["warm-up"],), daemon=True)
    warming.start()

    from adapters import channels_from_config
    from bot.assembly import build_pipeline, load_knowledge
    from bot.web.app import Parts, make_app

    channels = channels_from_config(config)  # a missing secret stops start-up here, not later
    warming.join()
    pipeline = build_pipeline(config, SystemClock(), encoder=encoder)
    app = make_app(Parts(pipeline, channels, learn=lambda: load_knowledge(config, encoder)))
    host = host or config.service.host
    port = port or config.service.port
    names = ", ".join(c.name for c in channels) or "none (enable one in [channels])"
    log.warning(
        "worker %s ready in %.1fs on http://%s:%d (channels: %s)",
        pipeline.worker,
        time.perf_counter() - started,
        host,
        port,
        names,
    )
    web.run_app(
        app,
        host=host,
        port=port,
        print=None,
        shutdown_timeout=config.service.drain_seconds,
        access_log=None,
    )
    pipeline.store.engine.dispose()
    return 0
