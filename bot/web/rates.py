"""Rate limits against abuse, counted in the database so they hold across workers: POSTs per
client address (`service.per_ip_per_minute`) and messages per channel customer
(`service.per_customer_per_minute`), each in fixed one-minute windows.

These are HTTP limits set far above a person's pace, against scripts and floods of forged or
replayed requests; a customer who merely writes fast is answered by the flood guard
(`steps.flood`, `[guard]`), politely, long before.

The client's address is the connection's peer, unless the peer is one of
`service.trusted_proxies` (nginx on the same host, by default): then it is the right-most
address of X-Forwarded-For that is not a trusted proxy, which is the address nginx saw
(`$proxy_add_x_forwarded_for` appends it); whatever the client itself wrote to the left of it
is never believed.

Requests that arrive together are counted together (one statement, one commit). Counting never
holds a request up for long: a count the database has not made within
`COUNT_WAIT` lets the request through (fail open), so a busy database (SQLite's one writer held
by a long transaction) does not make a platform's push miss its wait.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import math
import time
from collections.abc import Sequence
from concurrent.futures import Executor

from aiohttp import web

from bot.content.config import ServiceConfig
from bot.domain.clock import Clock
from bot.pipeline.batching import MicroBatcher
from bot.store import rate_limits
from bot.store.database import Store
from bot.telemetry.instruments import REQUESTS_REFUSED

log = logging.getLogger("bot.web")

WINDOW = 60
#: how often a worker deletes the windows nobody counts in any more
PRUNE_EVERY = 60.0
#: how long a request waits for its count; past it the request is let through (a limit
#: against abuse must not make a platform's push miss its few seconds when the database is busy)
COUNT_WAIT = 0.5

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RateLimiter:
    """Counts requests per key and minute in the store (in the store pool, never on the event
    loop) and says when a key is over its limit."""

    def __init__(self, store: Store, clock: Clock, pool: Executor, config: ServiceConfig) -> None:
        self._store = store
        self._clock = clock
        self._pool = pool
        self.per_ip = config.per_ip_per_minute
        self.per_customer = config.per_customer_per_minute
        self._trusted: list[Network] = [
            ipaddress.ip_network(entry, strict=False) for entry in config.trusted_proxies
        ]
        self._pruned = 0.0
        #: requests arriving together are counted in one statement and one commit
        self._counting: MicroBatcher[tuple[str, int], int] = MicroBatcher(
            self._count_many, pool, 256
        )

    # --- who is asking ------------------------------------------------------------------------

    def client_address(self, request: web.Request) -> str:
        """The address the request came from, through the trusted proxies only."""
        peer = request.remote or ""
        if not self._trusted_peer(peer):
            return peer
        hops = [
            hop.strip()
            for header in request.headers.getall("X-Forwarded-For", [])
            for hop in header.split(",")
        ]
        for hop in reversed(hops):
            if not self._trusted_peer(hop):
                return hop if _address(hop) is not None else peer
        return hops[0] if hops else peer

    def _trusted_peer(self, text: str) -> bool:
        address = _address(text)
        return address is not None and any(address in network for network in self._trusted)

    # --- counting -----------------------------------------------------------------------------

    async def ip_over(self, request: web.Request, route: str) -> float | None:
        """Count one POST from the request's client; the seconds to wait when over the limit."""
        if not self.per_ip:
            return None
        address = self.client_address(request)
        wait = await self._over(f"ip:{address}", self.per_ip)
        if wait is not None:
            log.warning(
                "%s: %s over %d requests a minute, refused for %.0fs",
                route,
                address,
                self.per_ip,
                wait,
            )
            REQUESTS_REFUSED.labels(route, "ip_rate").inc()
        return wait

    async def customer_over(self, channel: str, user: str) -> float | None:
        """Count one message of a channel's customer; the seconds to wait when over the limit."""
        if not self.per_customer:
            return None
        digest = hashlib.sha256(f"{channel}\x1f{user}".encode()).hexdigest()[:40]
        wait = await self._over(f"customer:{digest}", self.per_customer)
        if wait is not None:
            log.warning(
                "%s: customer %s over %d messages a minute, dropped for %.0fs",
                channel,
                user[:64],
                self.per_customer,
                wait,
            )
            REQUESTS_REFUSED.labels(channel, "customer_rate").inc()
        return wait

    async def channel_over(
        self, channel: str, key: str, per_minute: int, reason: str
    ) -> float | None:
        """Count one request under a channel's own limit (the web chat's per visitor and per
        address); the seconds to wait when over `per_minute` (logged, counted as `reason`)."""
        if not per_minute:
            return None
        digest = hashlib.sha256(f"{channel}\x1f{key}".encode()).hexdigest()[:40]
        wait = await self._over(f"{channel}:{digest}", per_minute)
        if wait is not None:
            log.warning(
                "%s: %s over %d a minute, refused for %.0fs", channel, reason, per_minute, wait
            )
            REQUESTS_REFUSED.labels(channel, reason).inc()
        return wait

    def refused(self, route: str, reason: str) -> None:
        REQUESTS_REFUSED.labels(route, reason).inc()

    async def _over(self, key: str, limit: int) -> float | None:
        now = self._clock.now().timestamp()
        window = int(now) // WINDOW * WINDOW
        counting = asyncio.ensure_future(self._counting.submit((key, window)))
        counting.add_done_callback(_retrieve)
        try:
            count = await asyncio.wait_for(asyncio.shield(counting), COUNT_WAIT)
        except TimeoutError:
            # the database is busy (SQLite's one writer held): the request goes on, counted
            # once the write gets through, rather than eating into the platform's wait
            log.debug("rate of %s not counted within %.1fs: let through", key, COUNT_WAIT)
            return None
        except Exception as exc:
            log.warning("rate of %s not counted (%s): let through", key, exc)
            return None
        if count <= limit:
            return None
        return max(1.0, math.ceil(window + WINDOW - now))

    def _count_many(self, requests: Sequence[tuple[str, int]]) -> list[int]:
        with self._store.transaction() as conn:
            counted = rate_limits.count_many(conn, requests)
        if time.monotonic() - self._pruned > PRUNE_EVERY:
            self._pruned = time.monotonic()
            with self._store.transaction() as conn:
                rate_limits.prune(conn, min(window for _, window in requests) - WINDOW)
        return counted


def _retrieve(counting: asyncio.Future[int]) -> None:
    """A count that was waited for no longer still has its error read (and logged once)."""
    if not counting.cancelled() and counting.exception() is not None:
        log.debug("a late rate count failed: %s", counting.exception())


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
