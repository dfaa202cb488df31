"""The /metrics body: this worker's counters (or, in multiprocess mode, every local worker's,
summed) followed by the queue state from the database."""

from __future__ import annotations

import os

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess

from bot.domain.clock import Clock
from bot.store.database import Store
from bot.telemetry.collector import TicketCollector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Exposition:
    def __init__(self, store: Store, clock: Clock, queues: list[str]) -> None:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            self.workers = CollectorRegistry()
            multiprocess.MultiProcessCollector(self.workers)  # type: ignore[no-untyped-call]
        else:
            self.workers = REGISTRY
        self.cluster = CollectorRegistry(auto_describe=False)
        self.cluster.register(TicketCollector(store, clock, queues))

    def render(self) -> bytes:
        """Synchronous (reads the database): call it in the store's thread pool."""
        return generate_latest(self.workers) + generate_latest(self.cluster)
