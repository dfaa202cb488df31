"""The web chat channel: the widget, the panel, and the visitor's API, under `path`
(/webchat by default).

    GET  /webchat/widget.js    the one script a page embeds (launcher button + panel iframe)
    GET  /webchat/panel        the panel (strict CSP, `frame-ancestors` from allowed_origins)
    GET  /webchat/settings     title, colour, greeting, languages, who is on duty (JSON)
    POST /webchat/visitor      {"token"?} or {"user", "hash"} → {"token", "visitor"}
    POST /webchat/messages     X-Webchat-Token; {"id", "text", "language"?} → 202 once stored
    GET  /webchat/history      X-Webchat-Token → {"lines": [...], "cursor": "12-34"}
    GET  /webchat/stream       ?token=…&after=12-34 → text/event-stream of lines

A visitor's message goes through the same `MessageService` as every channel's, and its replies
through the outbox and the dispatcher: the dispatcher's send marks a reply delivered in the
store and wakes the visitor's streams, wherever they are (`stream.py`). Refusals: another
site's page 403, a forged token 401, a malformed body 400, a message over `max_message_chars`
413 (the door's `[service.body_kib] webchat` caps the body), over a rate limit 429 with
Retry-After (the panel keeps the message and sends it again), a worker draining 503.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import math
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path
from typing import Any

from aiohttp import web

from adapters.webchat.deliveries import Deliveries
from adapters.webchat.identity import Refused, Visitors
from adapters.webchat.origins import Origins
from adapters.webchat.stream import Cursor, Hub, Watch, event, line_json
from bot.content.config import WebchatChannelConfig, pick
from bot.domain.delivery import PermanentFailure
from bot.domain.messages import SCOPE_SEPARATOR, Inbound, Kind, Outbound
from bot.store.channel_store import Line
from bot.web.channels import ChannelContext, NotHandled, ServiceStopping

log = logging.getLogger("adapters.webchat")

NAME = "webchat"
STATIC = Path(__file__).parent / "static"
TOKEN_HEADER = "X-Webchat-Token"
MAX_ID = 64
#: how often a stream reads again when nothing wakes it (SQLite, or LISTEN down), and how often
#: it writes a comment to keep proxies from closing a quiet connection
POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0
#: the lines a stream reads at once (of each direction)
LINES_AT_ONCE = 100
#: how often a quiet stream looks whether its browser went (no database read)
CHECK_SECONDS = 3.0
#: the streams one visitor may hold open on one worker (tabs, and reconnects not yet noticed)
MAX_STREAMS = 8
#: the panel's Content-Security-Policy, before its frame-ancestors
PANEL_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' https: data:; base-uri 'none'; form-action 'none'"
)
_ASSETS = {
    "widget.js": "text/javascript",
    "panel.js": "text/javascript",
    "panel.css": "text/css",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebchatSender:
    """What the dispatcher calls: the reply is delivered to the visitor's conversation in the
    store (marked sent, announced to every worker), then this worker's streams are woken."""

    def __init__(self) -> None:
        self._deliveries: Deliveries | None = None

    def attach(self, deliveries: Deliveries) -> None:
        self._deliveries = deliveries

    async def send(self, message: Outbound) -> None:
        if self._deliveries is None or message.outbox_id is None:
            raise PermanentFailure("the web chat shows only replies from the outbox")
        await self._deliveries.deliver(message.outbox_id, message.chat_id)


class WebchatChannel:
    name = NAME
    #: a browser reads a 429 and its Retry-After (the panel sends the message again)
    platform_retries = False

    def __init__(self, config: WebchatChannelConfig, secret: str) -> None:
        self.config = config
        self.visitors = Visitors(secret)
        self.hub = Hub()
        self.sender = WebchatSender()
        self._deliveries: Deliveries | None = None
        self._announcing: set[asyncio.Task[None]] = set()
        self._context: ChannelContext | None = None
        self._origins = Origins(config.allowed_origins, "")
        self._watch: Watch | None = None
        #: the page's files, read once here rather than from disk on the event loop
        self._files = {name: (STATIC / name).read_bytes() for name in (*_ASSETS, "panel.html")}

    # --- the Channel contract -------------------------------------------------------------

    def mount(self, app: web.Application, context: ChannelContext) -> None:
        self._context = context
        store = context.store

        async def write(outbox_ids: Collection[int], visitors: Collection[str]) -> None:
            await context.in_store_pool(
                functools.partial(store.delivered, outbox_ids, visitors, context.worker)
            )

        self._deliveries = Deliveries(write, self.hub)
        self.sender.attach(self._deliveries)
        self._origins = Origins(self.config.allowed_origins, context.public_url)
        self._watch = Watch(
            self.hub,
            NAME,
            store.listen_address,
            lambda: context.in_store_pool(store.lines_versions),
            context.worker,
            POLL_SECONDS,
        )
        base = self.config.path.rstrip("/")
        router = app.router
        for asset in _ASSETS:
            router.add_get(f"{base}/{asset}", self._asset)
        router.add_get(f"{base}/panel", self._panel)
        router.add_get(f"{base}/settings", self._api(self._settings))
        router.add_post(f"{base}/visitor", self._api(self._visitor))
        router.add_post(f"{base}/messages", self._api(self._message))
        router.add_get(f"{base}/history", self._api(self._history))
        router.add_get(f"{base}/stream", self._stream)
        for route in ("settings", "visitor", "messages", "history"):
            router.add_route("OPTIONS", f"{base}/{route}", self._preflight)

        async def closing(app: web.Application) -> None:
            self.hub.close()  # the streams end, so the worker stops without waiting for them

        app.on_shutdown.append(closing)

    def describe(self, public_url: str) -> str:
        return (
            f'paste into your pages: <script src="{public_url}{self.config.path}/widget.js" '
            'data-site="main" async></script>'
        )

    def trouble(self) -> str | None:
        """Visitors call in; there is no loop of its own to get stuck."""
        return None

    async def start(self) -> None:
        if self._watch is not None:
            self._watch.start()

    async def stop(self) -> None:
        self.hub.close()
        if self._watch is not None:
            await self._watch.stop()

    # --- the page's files -----------------------------------------------------------------

    async def _asset(self, request: web.Request) -> web.Response:
        name = request.path.rsplit("/", 1)[1]
        return web.Response(
            body=self._files[name],
            content_type=_ASSETS[name],
            charset="utf-8",
            headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    async def _panel(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self._files["panel.html"],
            content_type="text/html",
            charset="utf-8",
            headers={
                "Content-Security-Policy": f"{PANEL_CSP}; {self._origins.frame_ancestors()}",
                "Cache-Control": "no-cache",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )

    # --- the API ----------------------------------------------------------------------------

    def _api(self, handler: Handler) -> Handler:
        """Another site's page is refused; a listed one gets its CORS headers."""

        async def checked(request: web.Request) -> web.StreamResponse:
            if not self._origins.allows(request):
                self._limits_refused("origin")
                return _error(403, "this site may not use the chat (see allowed_origins)")
            response = await handler(request)
            response.headers.update(self._origins.cors(request))
            return response

        return checked

    async def _preflight(self, request: web.Request) -> web.Response:
        headers = self._origins.cors(request)
        return web.Response(status=204 if headers else 403, headers=headers)

    async def _settings(self, request: web.Request) -> web.Response:
        context = self._ready()
        config = self.config
        language = _language(request.query.get("language", ""), config.languages)
        duty = await context.in_store_pool(lambda: context.on_duty(language))
        greeting = (
            pick(config.greeting, language) if config.greeting else pick(context.welcome, language)
        )
        body = {
            "language": language,
            "languages": list(config.languages),
            "title": pick(config.title, language),
            "colour": config.colour,
            "avatar": config.avatar,
            "greeting": greeting,
            "on_duty": duty.open,
            "back_at": duty.back_at.isoformat() if duty.back_at else None,
            "back_text": duty.back_text,
            "max_message_chars": config.max_message_chars,
        }
        return web.json_response(body, dumps=_dumps, headers={"Cache-Control": "no-cache"})

    async def _visitor(self, request: web.Request) -> web.Response:
        data = await _json_object(request)
        if data is None:
            return _error(400, "the body must be a JSON object")
        refused = await self._address_over(request)
        if refused is not None:
            return refused
        user, user_hash, token = data.get("user"), data.get("hash"), data.get("token")
        try:
            if isinstance(user, str) and user:
                given = user_hash if isinstance(user_hash, str) else ""
                token = self.visitors.logged_in(user, given)
            elif isinstance(token, str) and token:
                self.visitors.visitor(token)
            else:
                token = self.visitors.anonymous()
        except Refused as exc:
            self._limits_refused("identity")
            return _error(401, str(exc))
        return web.json_response({"token": token, "visitor": self.visitors.visitor(token)})

    async def _message(self, request: web.Request) -> web.Response:
        context = self._ready()
        visitor = self._visitor_of(request.headers.get(TOKEN_HEADER, ""))
        if visitor is None:
            return _error(401, "a missing or forged visitor token")
        data = await _json_object(request)
        if data is None:
            return _error(400, "the body must be a JSON object")
        message_id, text = data.get("id"), data.get("text")
        if not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_ID:
            return _error(400, f"`id` must be a string of 1 to {MAX_ID} characters")
        if not message_id.isprintable():
            return _error(400, "`id` must be printable")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "`text` must be a non-empty string")
        if len(text) > self.config.max_message_chars:
            return _error(413, f"a message is at most {self.config.max_message_chars} characters")
        refused = await self._address_over(request)
        if refused is not None:
            return refused
        wait = await context.limits.channel_over(
            NAME, f"visitor:{visitor}", self.config.per_visitor_per_minute, "webchat_visitor_rate"
        )
        if wait is not None:
            return _too_many("too many messages, sending again shortly", wait)
        language = _language(str(data.get("language", "")), self.config.languages)
        inbound = Inbound(
            NAME,
            _delivery_key(visitor, message_id),
            visitor,
            visitor,
            text,
            context.clock.now(),
            Kind.TEXT,
            {"language": language},
        )
        try:
            await context.messages.handle(inbound)
        except ServiceStopping:
            return _error(503, "shutting down, send again", {"Retry-After": "1"})
        except NotHandled as exc:
            return _error(503, str(exc), {"Retry-After": "1"})
        if self._deliveries is not None:
            # the visitor's other tabs, on any worker, show it; not waited for (it is stored,
            # and shown with the reply anyway)
            announcing = asyncio.create_task(self._deliveries.deliver(None, visitor))
            self._announcing.add(announcing)
            announcing.add_done_callback(self._announced)
        return web.json_response({"stored": True}, status=202)

    async def _history(self, request: web.Request) -> web.Response:
        context = self._ready()
        visitor = self._visitor_of(request.headers.get(TOKEN_HEADER, ""))
        if visitor is None:
            return _error(401, "a missing or forged visitor token")
        store = context.store
        lines = await context.in_store_pool(lambda: store.last_lines(visitor))
        cursor = Cursor()
        for line in lines:
            cursor = cursor.past(line)
        body = {"lines": [line_json(line) for line in lines], "cursor": str(cursor)}
        return web.json_response(body, dumps=_dumps, headers={"Cache-Control": "no-store"})

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        context = self._ready()
        if not self._origins.allows(request):
            return _error(403, "this site may not use the chat")
        visitor = self._visitor_of(request.query.get("token", ""))
        if visitor is None:
            return _error(401, "a missing or forged visitor token")
        if self.hub.closed:
            return _error(503, "shutting down", {"Retry-After": "1"})
        address = context.limits.client_address(request)
        mine, theirs = self.hub.open_for(visitor, address)
        per_address = self.config.streams_per_ip
        if mine >= MAX_STREAMS or (per_address and theirs >= per_address):
            self._limits_refused("webchat_streams")
            return _error(429, "too many open chats", {"Retry-After": "10"})
        cursor = Cursor.parse(request.headers.get("Last-Event-ID") or request.query.get("after"))
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache, no-transform",
                "X-Accel-Buffering": "no",  # nginx: pass each event on at once
                **self._origins.cors(request),
            }
        )
        await response.prepare(request)
        woken = self.hub.subscribe(visitor, address)
        try:
            await response.write(b"retry: 2000\n\n")
            await self._follow(request, response, context, visitor, cursor, woken)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception as exc:  # the database away: the browser reconnects in 2 s
            log.warning("web chat stream ended: %s", str(exc).splitlines()[0] if str(exc) else exc)
        finally:
            self.hub.unsubscribe(visitor, address, woken)
        return response

    async def _follow(
        self,
        request: web.Request,
        response: web.StreamResponse,
        context: ChannelContext,
        visitor: str,
        cursor: Cursor,
        woken: asyncio.Event,
    ) -> None:
        """Write the visitor's lines after `cursor` as they come, until the worker stops or the
        browser goes (noticed within `CHECK_SECONDS`, so a reload frees its place at once)."""
        store = context.store
        loop = asyncio.get_running_loop()
        quiet_since = loop.time()
        while not self.hub.closed:
            woken.clear()  # before reading: a wake during the read is not lost
            lines: list[Line] = await context.in_store_pool(
                functools.partial(
                    store.lines_after, visitor, cursor.message_id, cursor.outbox_id, LINES_AT_ONCE
                )
            )
            for line in lines:
                cursor = cursor.past(line)
                await response.write(event(cursor, line))
            if lines:
                quiet_since = loop.time()
                if len(lines) >= LINES_AT_ONCE or woken.is_set():
                    continue  # more to read: the page was full, or woken during the read
            while not woken.is_set() and not self.hub.closed:
                polling = not self.hub.listening
                try:
                    await asyncio.wait_for(woken.wait(), POLL_SECONDS if polling else CHECK_SECONDS)
                except TimeoutError:
                    if request.transport is None or request.transport.is_closing():
                        return
                    if loop.time() - quiet_since >= HEARTBEAT_SECONDS:
                        await response.write(b": ping\n\n")
                        quiet_since = loop.time()
                    if polling:
                        break  # nothing wakes this stream: read again

    # --- helpers -----------------------------------------------------------------------------

    def _announced(self, task: asyncio.Task[None]) -> None:
        self._announcing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.info("a visitor's message not announced: %s", task.exception())

    def _ready(self) -> ChannelContext:
        assert self._context is not None, "the web chat was not mounted"
        return self._context

    async def _address_over(self, request: web.Request) -> web.Response | None:
        """Count one of the web chat's POSTs (a visitor's id, a message) against the client
        address's `per_ip_per_minute`; the 429 to answer when it is over, else None."""
        context = self._ready()
        address = context.limits.client_address(request)
        wait = await context.limits.channel_over(
            NAME, f"ip:{address}", self.config.per_ip_per_minute, "webchat_ip_rate"
        )
        if wait is None:
            return None
        return _too_many("too many requests from this address, sending again shortly", wait)

    def _visitor_of(self, token: str) -> str | None:
        try:
            return self.visitors.visitor(token)
        except Refused:
            self._limits_refused("forged_token")
            return None

    def _limits_refused(self, reason: str) -> None:
        if self._context is not None:
            self._context.limits.refused(NAME, reason)


def _language(asked: str, languages: list[Any]) -> str:
    """The panel's language: the browser's ("en-GB" → en) when the shop offers it."""
    wanted = asked.strip().lower()[:2]
    return wanted if wanted in languages else str(languages[0])


def _delivery_key(visitor: str, message_id: str) -> str:
    """What makes a visitor's message unique (a resend after a 429 or a lost answer is
    answered once), within the store's 128 characters."""
    key = f"{visitor}{SCOPE_SEPARATOR}{message_id}"
    return key if len(key) <= 128 else hashlib.sha256(key.encode()).hexdigest()


async def _json_object(request: web.Request) -> dict[str, Any] | None:
    try:
        data = json.loads(await request.read() or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _too_many(message: str, wait: float) -> web.Response:
    return _error(429, message, {"Retry-After": str(math.ceil(wait))})
