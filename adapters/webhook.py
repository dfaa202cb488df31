"""A plain JSON-over-HTTP channel: for a web chat widget, a mobile app, another system, or a
test harness driving the real service.

In:  POST /channels/webhook/messages, `Authorization: Bearer <secret>`, JSON
     {"id": "…", "user": "…", "chat": "…"?, "text": "…", "kind": "text"?, "wait": false?}
     (`id` is unique per user: a resend with the same user and id is answered once; with
     "wait" it gets the replies the first request could not return, if none went out yet)
     → 200 {"action": …, "replies": [...]?, "pending": bool}; a forged secret gets 401, a
     malformed body 400 (logged, nothing stored), a user over
     `service.per_customer_per_minute` 429 with Retry-After, a worker shutting down 503, and so
     does a message that could not be stored or decided (the database away, the disk full) or
     whose first delivery is not decided yet: send it again (`Retry-After`). `pending`
     (a public key, kept as is) is `Outcome.unfinished`: not handled within the wait, the
     replies are delivered as below.
     With "wait": true the replies come back in the response when ready within
     `wait_seconds`; otherwise (and for anything later) they are delivered as below.
Out: POST `deliver_url` with the same bearer and JSON
     {"outbox_id", "conversation_id", "chat", "text", "choices", "reply_to"} (`reply_to`: the
     id of the message answered, null for a notice the bot starts); 2xx is delivered,
     403/404/410 mean the customer is gone for good, 429 with Retry-After asks to wait.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import math
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from bot.content.config import WebhookChannelConfig
from bot.domain.delivery import PermanentFailure, RetryAfter
from bot.domain.messages import SCOPE_SEPARATOR, Inbound, Kind, Outbound, platform_id
from bot.web.channels import (
    ChannelContext,
    Limits,
    Messages,
    NoLimits,
    NotHandled,
    ServiceStopping,
)

log = logging.getLogger("adapters.webhook")

NAME = "webhook"
MAX_FIELD = 128
_json = functools.partial(json.dumps, ensure_ascii=False)


class WebhookSender:
    def __init__(self, url: str, secret: str) -> None:
        self.url = url
        self.secret = secret
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=10), json_serialize=_json
        )

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, message: Outbound) -> None:
        if not self.url:
            raise PermanentFailure("channels.webhook.deliver_url is not set")
        assert self._session is not None, "the channel was not started"
        body = {
            "outbox_id": message.outbox_id,
            "conversation_id": message.conversation_id,
            "chat": message.chat_id,
            "text": message.text,
            "choices": list(message.choices),
            "reply_to": caller_id(message.external_reply_to),
        }
        headers = {"Authorization": f"Bearer {self.secret}"}
        async with self._session.post(self.url, json=body, headers=headers) as response:
            if response.status < 300:
                return
            if response.status in (403, 404, 410):
                raise PermanentFailure(f"{self.url} answered {response.status}")
            if response.status == 429:
                raise RetryAfter(float(response.headers.get("Retry-After", "5")))
            raise ConnectionError(f"{self.url} answered {response.status}")


class WebhookChannel:
    name = NAME
    #: your system reads a 429 and its Retry-After
    platform_retries = False

    def __init__(self, config: WebhookChannelConfig, secret: str) -> None:
        if not secret:
            raise ValueError(
                f"channels.webhook is enabled but ${config.secret_env} is empty: "
                "set it to a long random secret"
            )
        self.config = config
        self._secret = secret
        self.sender = WebhookSender(config.deliver_url, secret)
        self._limits: Limits = NoLimits()

    def mount(self, app: web.Application, context: ChannelContext) -> None:
        messages = context.messages
        self._limits = context.limits

        async def receive(request: web.Request) -> web.Response:
            return await self.receive(request, messages)

        app.router.add_post("/channels/webhook/messages", receive)

    def trouble(self) -> str | None:
        """The platform calls in; there is no loop of its own to get stuck."""
        return None

    def describe(self, public_url: str) -> str:
        return (
            f"POST {public_url}/channels/webhook/messages; replies go to {self.config.deliver_url}"
        )

    async def start(self) -> None:
        await self.sender.start()

    async def stop(self) -> None:
        await self.sender.stop()

    async def receive(self, request: web.Request, service: Messages) -> web.Response:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self._secret}".encode()):
            return web.json_response({"error": "bad or missing secret"}, status=401)
        try:
            inbound, wait = self._inbound(await request.json())
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("malformed webhook message dropped: %s", exc)
            return web.json_response({"error": f"malformed message: {exc}"}, status=400)
        over = await self._limits.customer_over(NAME, inbound.user_id)
        if over is not None:
            return web.json_response(
                {"error": "too many messages from this user, send again later"},
                status=429,
                headers={"Retry-After": str(math.ceil(over))},
            )
        try:
            outcome = await service.handle(inbound, wait=self.config.wait_seconds if wait else None)
        except ServiceStopping:
            return web.json_response({"error": "shutting down, try another worker"}, status=503)
        except NotHandled as exc:
            # not acknowledged: the caller sends it again, to this worker or another
            return web.json_response({"error": str(exc)}, status=503, headers={"Retry-After": "1"})
        body: dict[str, Any] = {
            "action": outcome.decision.action.value if outcome.decision else None,
            "pending": outcome.unfinished,
            "replies": [],
        }
        if outcome.inline:
            body["replies"] = [
                {"outbox_id": m.outbox_id, "text": m.text, "choices": list(m.choices)}
                for m in outcome.replies
            ]
        response = web.json_response(body, dumps=_json)
        if not outcome.inline:
            return response
        try:
            await response.prepare(request)
            await response.write_eof()
        except ConnectionError as exc:
            # the client gave up waiting: a retry of the same id gets the replies, or they go
            # to deliver_url
            log.info("inline replies not written: %s", exc)
            await service.release_inline(outcome)
            return response
        await service.confirm_inline(outcome)
        return response

    @staticmethod
    def _inbound(data: Any) -> tuple[Inbound, bool]:
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        fields = {}
        for key in ("id", "user"):
            if key not in data:
                raise ValueError(f"`{key}` is missing")
            value = data[key]
            text_value = str(value) if isinstance(value, str | int) else ""
            if not text_value or len(text_value) > MAX_FIELD or not text_value.isprintable():
                raise ValueError(
                    f"`{key}` must be a non-empty string of at most {MAX_FIELD} printable "
                    "characters"
                )
            fields[key] = text_value
        try:
            kind = Kind(data.get("kind", "text"))
        except ValueError:
            raise ValueError(f"`kind` must be one of: {', '.join(k.value for k in Kind)}") from None
        text = data.get("text", "")
        if not isinstance(text, str):
            raise ValueError("`text` must be a string")
        if kind == Kind.TEXT and not text.strip():
            raise ValueError("`text` is missing or empty (send `kind` for an image or voice note)")
        chat = str(data.get("chat") or fields["user"])[:MAX_FIELD]
        external = delivery_key(fields["user"], fields["id"])
        inbound = Inbound(NAME, external, fields["user"], chat, text, datetime.now(UTC), kind)
        return inbound, bool(data.get("wait", False))


def delivery_key(user: str, message_id: str) -> str:
    """What makes a delivery unique: the message id within its user, so an app that numbers
    each user's messages from 1 loses none. Kept to the store's 128 characters."""
    key = f"{user}{SCOPE_SEPARATOR}{message_id}"
    if len(key) <= MAX_FIELD:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:40]
    return f"{digest}{SCOPE_SEPARATOR}{message_id[: MAX_FIELD - 41]}"


def caller_id(key: str | None) -> str | None:
    """The caller's own message id back from a delivery key."""
    return platform_id(key) if key else key
