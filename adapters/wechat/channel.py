"""A WeChat Official Account (公众号) in developer mode: the server URL WeChat pushes to.

In:  GET  `path`?signature&timestamp&nonce&echostr → echostr (URL verification; 403 if forged).
     POST `path`?signature&timestamp&nonce[&encrypt_type=aes&msg_signature] with XML (plain) or
     `<xml><Encrypt>…</Encrypt></xml>` (安全模式, AES). Forged or stale (|now − timestamp| >
     `replay_seconds`) pushes get 403, a DOCTYPE/ENTITY or malformed body 400 (logged, nothing
     stored), a worker shutting down 503.
Out: the passive reply — the answer in the push's own response, encrypted in safe mode — when
     ready within `wait_seconds` (WeChat gives up at 5 s and retries the push, 3 tries in all);
     otherwise `success` at once, and the dispatcher sends the answer later through the
     customer-service API (`adapters/wechat/api.py`), within the 48 h / 5-message limits the
     core enforces. Retries of a push already taken are answered `success`: the store keeps
     each MsgId (events: openid, CreateTime and event) once. An unencrypted push whose
     (timestamp, nonce, signature) was pushed before within the replay window, to any worker,
     is answered `success` and not handled (its signature does not cover the body), and so is
     a customer over `service.per_customer_per_minute`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from aiohttp import web
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException

from adapters.wechat.api import MAX_TEXT_BYTES, WechatSender
from adapters.wechat.push import (
    MalformedPush,
    read_xml,
    signature,
    signed,
    text_reply,
    to_inbound,
)
from bot.content.config import WechatChannelConfig
from bot.domain.clock import Clock, SystemClock
from bot.domain.messages import Action
from bot.web.channels import ChannelContext, Limits, Messages, NoLimits, ServiceStopping

log = logging.getLogger("adapters.wechat")

NAME = "wechat"
#: the answer that tells WeChat "received, nothing to say now" (it does not retry)
SUCCESS = "success"
#: the channel_state keys that remember a plain push's (timestamp, nonce, signature)
NONCE_PREFIX = "nonce:"
MODES = {
    "plain": "明文模式 (plain)",
    "compatible": "兼容模式 (compatible)",
    "safe": "安全模式 (safe)",
}


class Refused(Exception):
    """A push answered with an error status: 403 forged or stale, 400 unreadable."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class WechatChannel:
    name = NAME
    #: the platform re-sends whatever is not answered 2xx
    platform_retries = True

    def __init__(self, config: WechatChannelConfig) -> None:
        missing = [env for _, env, _ in config.missing_secrets()]
        if missing:
            raise ValueError(
                f"channels.wechat is enabled but ${', $'.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} not set"
            )
        self.config = config
        self.token = config.credential("token")
        self.crypto: WeChatCrypto | None = None
        aes_key = config.credential("aes_key")
        if config.mode != "plain":
            self.crypto = WeChatCrypto(self.token, _checked_key(aes_key, config), config.app_id)
        self.sender = WechatSender(config.app_id, config.credential("app_secret"), config.api_base)
        self._clock: Clock = SystemClock()
        self._context: ChannelContext | None = None
        self._limits: Limits = NoLimits()
        self._nonces_pruned = 0.0

    def mount(self, app: web.Application, context: ChannelContext) -> None:
        self.sender.attach(context.store, context.clock)
        self._clock = context.clock
        self._context = context
        self._limits = context.limits
        service = context.messages

        async def verify(request: web.Request) -> web.Response:
            return self.verify(request)

        async def receive(request: web.Request) -> web.StreamResponse:
            return await self.receive(request, service)

        app.router.add_get(self.config.path, verify)
        app.router.add_post(self.config.path, receive)

    def trouble(self) -> str | None:
        """The platform calls in; there is no loop of its own to get stuck."""
        return None

    def describe(self, public_url: str) -> str:
        config = self.config
        key = "" if config.mode == "plain" else f", EncodingAESKey ${config.aes_key_env}"
        return (
            f"设置与开发 → 基本配置 → 服务器配置: URL {public_url}{config.path}, "
            f"Token ${config.token_env}{key}, 消息加解密方式 {MODES[config.mode]}; "
            f"AppID {config.app_id}"
        )

    async def start(self) -> None:
        await self.sender.start()

    async def stop(self) -> None:
        await self.sender.stop()

    # --- URL verification ------------------------------------------------------------------

    def verify(self, request: web.Request) -> web.Response:
        """WeChat's check when the server URL is saved: plain signature even in safe mode."""
        q = request.query
        timestamp = q.get("timestamp", "")
        expected = signature(self.token, timestamp, q.get("nonce", ""))
        if not signed(expected, q.get("signature", "")) or "echostr" not in q:
            log.info("WeChat URL verification refused: bad signature or no echostr")
            return web.Response(status=403, text="bad signature")
        if not self._fresh(timestamp):
            log.info("WeChat URL verification refused: stale timestamp")
            return web.Response(status=403, text="stale or missing timestamp")
        return web.Response(text=q["echostr"])

    def _fresh(self, timestamp: str) -> bool:
        """Within `replay_seconds` of now: a signed URL seen in a proxy's log cannot be
        replayed later (WeChat's signature does not cover the body in plain mode)."""
        return (
            timestamp.isdigit() and abs(time.time() - int(timestamp)) <= self.config.replay_seconds
        )

    # --- pushes ----------------------------------------------------------------------------

    async def receive(self, request: web.Request, service: Messages) -> web.StreamResponse:
        try:
            fields, encrypted = await self._read(request)
            if not encrypted and not await self._first_use(request.query):
                log.warning(
                    "WeChat plain push replayed (timestamp %s, nonce %s seen before): "
                    "acknowledged, not handled",
                    request.query.get("timestamp", "")[:16],
                    request.query.get("nonce", "")[:32],
                )
                self._limits.refused(NAME, "replay")
                return web.Response(text=SUCCESS)
            inbound = to_inbound(fields, self._clock.now())
        except Refused as exc:
            log.warning("WeChat push refused (%d): %s", exc.status, exc)
            return web.Response(status=exc.status, text=str(exc))
        except MalformedPush as exc:
            log.warning("malformed WeChat push dropped: %s", exc)
            return web.Response(status=400, text=f"malformed push: {exc}")
        if inbound is None:
            return web.Response(text=SUCCESS)
        if await self._limits.customer_over(NAME, inbound.user_id) is not None:
            return web.Response(text=SUCCESS)  # a 4xx would only bring it back
        try:
            outcome = await service.handle(inbound, wait=self.config.wait_seconds)
        except ServiceStopping:
            return web.Response(status=503, text="shutting down, try another worker")
        if not outcome.inline:
            if outcome.decision is not None and outcome.decision.action == Action.DUPLICATE:
                log.debug("WeChat retry of %s answered success", inbound.external_id)
            return web.Response(text=SUCCESS)
        text = outcome.joined()
        if len(text.encode()) > MAX_TEXT_BYTES:
            # too long for one message: the dispatcher sends it in parts once the hold ends
            log.info("reply to %s too long for a passive reply; the API sends it", inbound.user_id)
            return web.Response(text=SUCCESS)
        timestamp = str(int(time.time()))
        body = text_reply(inbound.user_id, str(fields["ToUserName"]), text, timestamp)
        if encrypted:
            assert self.crypto is not None
            body = self.crypto.encrypt_message(body, request.query.get("nonce", ""), timestamp)
        response = web.StreamResponse(headers={"Content-Type": "application/xml; charset=utf-8"})
        data = body.encode()
        response.content_length = len(data)
        try:
            await response.prepare(request)
            await response.write(data)
            await response.write_eof()
        except (ConnectionError, RuntimeError) as exc:
            # WeChat gave up waiting: the replies stay unsent and go out through the API
            log.info(
                "passive reply to %s not delivered (%s); the API sends it", inbound.user_id, exc
            )
            return response
        try:
            await service.confirm_inline(outcome)
        except Exception:
            log.exception("passive reply to %s sent but not marked sent", inbound.user_id)
        return response

    async def _first_use(self, query: Mapping[str, str]) -> bool:
        """False when this signed (timestamp, nonce, signature) was pushed before, by any
        worker, while it could still be fresh. In plain mode the signature does not cover the
        body, so a URL seen in a log could carry another body; remembering the nonce for twice
        `replay_seconds` outlives every timestamp that still passes `_fresh`."""
        if self._context is None:
            return True
        context = self._context
        parts = "\x1f".join(query.get(k, "") for k in ("timestamp", "nonce", "signature"))
        key = NONCE_PREFIX + hashlib.sha256(parts.encode()).hexdigest()[:40]
        keep = timedelta(seconds=2 * self.config.replay_seconds)
        prune = time.monotonic() - self._nonces_pruned > 60
        if prune:
            self._nonces_pruned = time.monotonic()
        forget = NONCE_PREFIX if prune else ""
        return await context.in_store_pool(lambda: context.store.first_use(key, keep, forget))

    async def _read(self, request: web.Request) -> tuple[dict[str, Any], bool]:
        """The push's fields, authenticated (and decrypted in safe mode); refuses what WeChat
        did not sign, what is stale, and what is not the mode configured."""
        q = request.query
        timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
        encrypted = q.get("encrypt_type", "raw").lower() == "aes"
        if encrypted and self.crypto is None:
            raise Refused(403, "an encrypted push, but the channel is in plain mode")
        if not encrypted and self.config.mode == "safe":
            raise Refused(403, "safe mode takes only encrypted pushes (encrypt_type=aes)")
        if not encrypted and not signed(
            signature(self.token, timestamp, nonce), q.get("signature", "")
        ):
            raise Refused(403, "bad signature")
        if not self._fresh(timestamp):
            raise Refused(403, "stale or missing timestamp (a replay?)")
        body = await request.read()
        envelope = read_xml(body)
        if not encrypted:
            return envelope, False
        assert self.crypto is not None
        if not isinstance(envelope.get("Encrypt"), str):
            raise MalformedPush("<Encrypt> is missing")
        try:
            plain = self.crypto.decrypt_message(
                envelope, q.get("msg_signature", ""), timestamp, nonce
            )
        except InvalidSignatureException:
            raise Refused(403, "bad msg_signature") from None
        except InvalidAppIdException:
            raise Refused(403, "encrypted for another AppID") from None
        except Exception as exc:  # a signed body that does not decrypt: base64, padding, UTF-8
            raise MalformedPush(f"cannot decrypt: {type(exc).__name__}") from None
        return read_xml(plain), True


def _checked_key(aes_key: str, config: WechatChannelConfig) -> str:
    """The EncodingAESKey, or a ValueError that says what is wrong with it."""
    try:
        valid = len(aes_key) == 43 and len(base64.b64decode(aes_key + "=")) == 32
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        raise ValueError(
            f"${config.aes_key_env} must be the 43-character EncodingAESKey (消息加解密密钥) "
            "shown under 设置与开发 → 基本配置 → 服务器配置"
        )
    return aes_key
