"""The door of `bot run`: limits every request meets before a route reads it, against clients
that would tie up a worker or fill its memory.

- **Body caps** per route (`[service.body_kib]`): a Content-Length over the route's cap is
  refused with 413 before a byte of the body is read; a chunked body is refused as soon as what
  was read passes the cap (aiohttp's `client_max_size`, set per request).
- **Slow bodies**: a body still incomplete `service.body_timeout_seconds` after its headers is
  cut off (408, connection closed), whether the client trickles it or stops sending. Waiting
  costs a coroutine, not a thread, so the other customers are answered meanwhile.
- **POSTs per client address** (`service.per_ip_per_minute`, counted across workers by
  `bot.web.rates.RateLimiter`).

The body (within its cap and time) is read before the request is counted, so a client that
hangs up while the count waits on the database has still delivered it. A refused request is
logged with its route and client, counted in `bot_requests_refused`, and its connection closed
once the answer is written (nothing more of its body is read). Over a rate
limit, a route whose platform re-sends what is not answered 2xx (WeChat, WeCom, Telegram) gets
an empty 200 and the request is dropped; the others get 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractResource

from bot.content.config import BodyLimits
from bot.web.rates import RateLimiter

log = logging.getLogger("bot.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BodyTooSlow(Exception):
    """The body did not arrive within `service.body_timeout_seconds` of the headers."""


class Door:
    """The middleware, and which route group each request belongs to: a channel's name (its
    routes, as it mounted them), `login`, `console`, or `other`."""

    def __init__(self, limiter: RateLimiter, caps: BodyLimits, body_timeout: float) -> None:
        self.limiter = limiter
        self.caps = caps
        self.body_timeout = body_timeout
        self._channels: dict[AbstractResource, tuple[str, bool]] = {}

    def channel_routes(
        self, resources: Iterable[AbstractResource], name: str, platform_retries: bool
    ) -> None:
        """The routes a channel mounted (its body cap is `[service.body_kib] <name>`)."""
        for resource in resources:
            self._channels[resource] = (name, platform_retries)

    def route_of(self, request: web.Request) -> tuple[str, bool]:
        """The route group, and whether its platform re-sends a refused request."""
        resource = request.match_info.route.resource
        if resource is not None and resource in self._channels:
            return self._channels[resource]
        if request.path == "/console" or request.path.startswith("/console/"):
            return ("login" if request.match_info.route.name == "login_post" else "console"), False
        return "other", False

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route, platform_retries = self.route_of(request)
        if not request.body_exists:
            return await self._counted(request, handler, route, platform_retries)
        cap = self.caps.cap(route)
        client = self.limiter.client_address(request)
        declared = request.content_length
        if declared is not None and declared > cap:
            return await self._too_large(request, route, client, f"declared {declared} bytes")
        # aiohttp reads `client_max_size` from the root application only; a clone would carry
        # the cap but not the state the console's hooks keep on the request they are given
        request._client_max_size = cap
        timer = asyncio.get_running_loop().call_later(
            self.body_timeout, self._cut, request, route, client
        )
        try:
            if request.content_type != "multipart/form-data":
                # the whole body first (the route reads it from memory): a platform that hangs
                # up while the count below waits on the database loses nothing
                await request.read()
            return await self._counted(request, handler, route, platform_retries)
        except web.HTTPRequestEntityTooLarge:
            return await self._too_large(request, route, client, "a chunked body past it")
        except BodyTooSlow:
            response = web.Response(status=408, text="request body too slow")
            return await _closing(request, response)
        finally:
            timer.cancel()

    async def _counted(
        self, request: web.Request, handler: Handler, route: str, platform_retries: bool
    ) -> web.StreamResponse:
        """A POST counts against its client's address; over the limit it goes no further."""
        if request.method == "POST":
            wait = await self.limiter.ip_over(request, route)
            if wait is not None:
                if platform_retries:
                    return await _closing(request, web.Response(status=200))
                response = web.Response(
                    status=429,
                    text="too many requests, try again later",
                    headers={"Retry-After": str(math.ceil(wait))},
                )
                return await _closing(request, response)
        return await handler(request)

    async def _too_large(
        self, request: web.Request, route: str, client: str, what: str
    ) -> web.StreamResponse:
        cap = self.caps.cap(route)
        log.warning(
            "%s %s from %s refused: body over the %d KiB cap (%s)",
            request.method,
            request.path,
            client,
            cap // 1024,
            what,
        )
        self.limiter.refused(route, "body_size")
        response = web.Response(status=413, text=f"request body over {cap // 1024} KiB")
        return await _closing(request, response)

    def _cut(self, request: web.Request, route: str, client: str) -> None:
        """The body's time is up: a read waiting for it (or the next one) raises."""
        if request.content.is_eof():
            return
        log.warning(
            "%s %s from %s cut off: body not received within %.0fs",
            request.method,
            request.path,
            client,
            self.body_timeout,
        )
        self.limiter.refused(route, "body_timeout")
        request.content.set_exception(BodyTooSlow())


async def _closing(request: web.Request, response: web.Response) -> web.Response:
    """Write the refusal, then close the connection: the rest of the body is never read (aiohttp
    would otherwise read and discard it for up to ten seconds to keep the connection)."""
    response.force_close()
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:
        pass
    if request.protocol is not None:
        request.protocol.force_close()
    return response
