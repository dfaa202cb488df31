"""Queue state for Prometheus, read from the database when scraped: the same figures from
whichever worker is asked, because they are the cluster's, not the worker's."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from bot.domain.clock import Clock
from bot.store import ticket_reads
from bot.store.database import Store


class TicketCollector(Collector):
    def __init__(self, store: Store, clock: Clock, queues: list[str]) -> None:
        self.store = store
        self.clock = clock
        self.queues = queues

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        now = self.clock.now()
        with self.store.engine.connect() as conn:
            counts = ticket_reads.queue_counts(conn, now)
            breaches = ticket_reads.breaches_by_queue(conn)
        depth = GaugeMetricFamily(
            "bot_queue_depth", "Open tickets per queue and state", labels=["queue", "status"]
        )
        oldest = GaugeMetricFamily(
            "bot_oldest_waiting_seconds",
            "How long the oldest ticket ready for agents has waited",
            labels=["queue"],
        )
        late = GaugeMetricFamily(
            "bot_sla_breached_open", "Open tickets past a deadline not met", labels=["queue"]
        )
        total = CounterMetricFamily(
            "bot_sla_breaches", "Tickets escalated for a missed SLA deadline", labels=["queue"]
        )
        for queue in self.queues:
            c = counts.get(queue, ticket_reads.QueueCounts())
            # public label values, kept for dashboards: "waiting" is TicketState.QUEUE_CLOSED,
            # "assigned" counts assigned and awaiting_customer
            depth.add_metric([queue, "waiting"], c.queue_closed)
            depth.add_metric([queue, "queued"], c.queued)
            depth.add_metric([queue, "assigned"], c.assigned)
            waited = (now - c.oldest_available).total_seconds() if c.oldest_available else 0.0
            oldest.add_metric([queue], max(0.0, waited))
            late.add_metric([queue], c.breached)
            total.add_metric([queue], breaches.get(queue, 0))
        yield from (depth, oldest, late, total)
