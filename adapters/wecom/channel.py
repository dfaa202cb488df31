"""WeCom 微信客服 (WeChat Customer Service): customers write to a 微信客服 account from WeChat,
the bot answers through WeCom's API.

In:  GET  `path` ?msg_signature&timestamp&nonce&echostr — URL verification: the echostr is
          encrypted; its plaintext is the answer.
     POST `path` ?msg_signature&timestamp&nonce, an encrypted XML callback. Only
          `kf_msg_or_event` matters: answered `success` at once, the messages are then pulled
          with kf/sync_msg in the background (adapters/wecom/pull.py).
     A forged signature or a timestamp outside `replay_seconds` gets 403; a DOCTYPE/ENTITY or
     malformed body 400 (logged, nothing read).
Out: kf/send_msg, text of at most 2048 bytes (longer replies go as several messages). WeCom
     allows it only while the session is 未处理 (0) or 智能助手 (1), within 48 h of the
     customer's last message and 5 messages per customer message (the core enforces the last
     two when claiming). After the reply that hands the customer to a human is sent (and any
     reply after it to the same message, e.g. "we open at 9"), kf/service_state/trans moves the
     session to the servicer `servicer_userid` (state 3) or to the waiting queue (state 2).
Events: `enter_session` with a welcome_code gets the welcome through kf/send_msg_on_event
     (the code is valid 20 s, so it is sent at once, not through the outbox; the text is
     `texts.welcome`). Session and servicer
     changes and send failures are logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import xmltodict
from aiohttp import web
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException, WeChatClientException

from adapters.common.text_parts import split_utf8
from adapters.common.wechatpy_tokens import TokenStorage
from adapters.wecom.api import NAME, KfClient, delivery_error
from adapters.wecom.pull import Puller, PullSettings, split_chat
from bot.content.config import WecomChannelConfig, pick
from bot.domain.delivery import PermanentFailure
from bot.domain.messages import Outbound
from bot.web.channels import ChannelContext

log = logging.getLogger("adapters.wecom")

TEXT_LIMIT = 2048  # bytes of UTF-8 per send_msg text
QUEUE, HUMAN = 2, 3  # 待接入池, 人工接待
_UNSAFE_XML = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
#: how long a "hand off after the last reply" mark is kept
_HANDOFF_MARK = timedelta(hours=48)


class WecomChannel:
    name = NAME
    #: the platform re-sends whatever is not answered 2xx
    platform_retries = True

    def __init__(self, config: WecomChannelConfig) -> None:
        secrets = {key: config.credential(key) for key in ("token", "aes_key", "secret")}
        for key, value in secrets.items():
            if not value:
                env = getattr(config, f"{key}_env")
                raise ValueError(
                    f"channels.wecom is enabled but ${env} is empty: set it to {_WHAT[key]}"
                )
        if not config.corp_id:
            raise ValueError("channels.wecom.corp_id is empty: set it to the 企业ID (CorpID)")
        self.config = config
        try:
            self.crypto = WeChatCrypto(secrets["token"], secrets["aes_key"], config.corp_id)
        except (ValueError, TypeError, AssertionError) as exc:
            raise ValueError(
                f"${config.aes_key_env} is not a valid EncodingAESKey (43 characters): {exc}"
            ) from None
        self._secret = secrets["secret"]
        self.sender = WecomSender(self)
        self.context: ChannelContext | None = None
        self.client: KfClient | None = None
        self.puller: Puller | None = None
        self.http: ThreadPoolExecutor | None = None
        self.pull_settings = PullSettings()
        #: on stop, how long the pulls under way may take to finish their page
        self.stop_grace = 5.0

    # --- the channel's shape ---------------------------------------------------------------

    def mount(self, app: web.Application, context: ChannelContext) -> None:
        self.context = context
        self.client = KfClient(
            self.config.corp_id,
            self._secret,
            self.config.api_base,
            TokenStorage(context.store, context.clock),
        )
        app.router.add_get(self.config.path, self.verify)
        app.router.add_post(self.config.path, self.callback)

    def trouble(self) -> str | None:
        """The platform calls in; there is no loop of its own to get stuck."""
        return None

    def describe(self, public_url: str) -> str:
        return (
            f"微信客服 → API → 回调配置: URL {public_url}{self.config.path}, Token "
            f"${self.config.token_env}, EncodingAESKey ${self.config.aes_key_env} "
            f"(corp {self.config.corp_id}; API {self.config.api_base})"
        )

    async def start(self) -> None:
        assert self.context is not None and self.client is not None, "mount() first"
        self.http = ThreadPoolExecutor(4, thread_name_prefix="wecom")
        self.puller = Puller(
            self.context,
            self.client,
            self.http,
            f"{self.context.worker}/wecom",
            self.on_event,
            self.pull_settings,
        )

    async def stop(self) -> None:
        """Let the pulls under way finish (briefly), cancel what is left, close the threads."""
        if self.puller is not None:
            self.puller.stopping = True
            tasks = self.puller.tasks
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=self.stop_grace)
                for task in pending:
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.gather(*pending, return_exceptions=True)
        if self.http is not None:
            # a request still under way ends on its own timeout; the event loop does not wait
            self.http.shutdown(wait=False, cancel_futures=True)

    # --- callbacks ---------------------------------------------------------------------------

    async def verify(self, request: web.Request) -> web.Response:
        """URL verification: the echostr decrypted, or 403."""
        query = request.query
        if not self._fresh(query.get("timestamp", "")):
            return web.Response(status=403, text="stale or missing timestamp")
        try:
            plain = self.crypto.check_signature(
                query.get("msg_signature", ""),
                query.get("timestamp", ""),
                query.get("nonce", ""),
                # base64 never holds a space: one here is a '+' sent without URL-encoding
                query.get("echostr", "").replace(" ", "+"),
            )
        except (InvalidSignatureException, InvalidCorpIdException):
            return web.Response(status=403, text="bad signature")
        except Exception as exc:  # a signed but undecryptable echostr: not from WeCom
            log.warning("微信客服 verification with a broken echostr: %r", exc)
            return web.Response(status=403, text="bad echostr")
        return web.Response(text=str(plain))

    async def callback(self, request: web.Request) -> web.Response:
        query = request.query
        body = await request.read()
        if _UNSAFE_XML.search(body):
            log.warning("微信客服 callback with DOCTYPE/ENTITY refused")
            return web.Response(status=400, text="DOCTYPE and ENTITY are not accepted")
        if not self._fresh(query.get("timestamp", "")):
            return web.Response(status=403, text="stale or missing timestamp")
        try:
            xml = self.crypto.decrypt_message(
                body,
                query.get("msg_signature", ""),
                query.get("timestamp", ""),
                query.get("nonce", ""),
            )
        except (InvalidSignatureException, InvalidCorpIdException):
            return web.Response(status=403, text="bad signature")
        except Exception as exc:  # malformed XML, base64 or padding: never a 500
            log.warning("malformed 微信客服 callback dropped: %r", exc)
            return web.Response(status=400, text="malformed callback")
        try:
            event = _parse(xml)
        except ValueError as exc:
            log.warning("malformed 微信客服 callback dropped: %s", exc)
            return web.Response(status=400, text="malformed callback")
        if event.get("Event") == "kf_msg_or_event":
            open_kfid, token = event.get("OpenKfId"), event.get("Token")
            if not (isinstance(open_kfid, str) and open_kfid.isprintable() and open_kfid):
                log.warning("kf_msg_or_event without an OpenKfId dropped")
                return web.Response(status=400, text="OpenKfId missing")
            if len(open_kfid) > 64 or "/" in open_kfid:
                return web.Response(status=400, text="OpenKfId malformed")
            assert self.puller is not None and self.context is not None, "not started"
            if not self.context.messages.accepting or self.puller.stopping:
                # WeCom calls again; another worker (or this one restarted) pulls then
                return web.Response(status=503, text="shutting down, try another worker")
            self.puller.wanted(open_kfid, token if isinstance(token, str) else "")
        else:
            log.debug("微信客服 callback %s/%s ignored", event.get("MsgType"), event.get("Event"))
        return web.Response(text="success")

    def _fresh(self, timestamp: str) -> bool:
        try:
            sent = int(timestamp)
        except ValueError:
            return False
        assert self.context is not None
        now = self.context.clock.now().timestamp()
        return abs(now - sent) <= self.config.replay_seconds

    # --- events from sync_msg ----------------------------------------------------------------

    async def on_event(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        if not isinstance(event, dict):
            return
        kind = event.get("event_type")
        if kind == "enter_session":
            code = event.get("welcome_code")
            if isinstance(code, str) and code:
                await self._welcome(code, str(event.get("external_userid", "")))
            else:
                log.debug("enter_session without a welcome_code (the customer wrote before)")
        elif kind == "session_status_change":
            log.info(
                "微信客服 session of %s changed (type %s, servicer %s → %s)%s",
                event.get("external_userid"),
                event.get("change_type"),
                event.get("old_servicer_userid"),
                event.get("new_servicer_userid"),
                "; the session ended" if event.get("change_type") == 3 else "",
            )
        elif kind == "msg_send_fail":
            log.warning(
                "微信客服 message %s to %s was not delivered (fail_type %s)",
                event.get("fail_msgid"),
                event.get("external_userid"),
                event.get("fail_type"),
            )
        else:
            log.info("微信客服 event %s (fields %s)", kind, sorted(event))

    def welcome_text(self) -> str:
        """The shop's welcome (`texts.welcome`), in Chinese: 微信客服 customers are on WeChat and
        nothing tells their language before they write."""
        assert self.context is not None
        return pick(self.context.welcome, "zh")

    async def _welcome(self, code: str, user: str) -> None:
        data = {"code": code, "msgtype": "text", "text": {"content": self.welcome_text()}}
        try:
            await self._call("send_msg_on_event", data)
        except Exception as exc:
            # the code is valid 20 s and once: nothing to retry
            log.warning("微信客服 welcome to %s not sent: %r", user, exc)

    async def _call(self, endpoint: str, data: dict[str, Any]) -> dict[str, Any]:
        assert self.client is not None and self.http is not None, "the channel was not started"
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.http, self.client.kf, endpoint, data)

    # --- handing the session to humans ------------------------------------------------------

    async def hand_over(self, open_kfid: str, user: str) -> None:
        """Move the session to the servicer (state 3) or the waiting queue (state 2). The
        reply is already sent, so a refusal is logged, not raised (raising would resend it)."""
        data: dict[str, Any] = {"open_kfid": open_kfid, "external_userid": user}
        servicer = self.config.servicer_userid
        if servicer:
            try:
                await self._call(
                    "service_state/trans",
                    {**data, "service_state": HUMAN, "servicer_userid": servicer},
                )
                return
            except Exception as exc:
                log.warning("微信客服: %s not handed to %s (%r); queueing", user, servicer, exc)
        try:
            await self._call("service_state/trans", {**data, "service_state": QUEUE})
        except Exception as exc:
            log.error("微信客服: %s could not be queued for a human: %r", user, exc)

    def handoff_due(self, message: Outbound) -> bool:
        """After sending `message`: is it time to move the session? The reply that hands off
        marks the conversation; the move waits for the replies still unsent after it (the
        "we open at 9" notice), since send_msg refuses once the session left the bot."""
        assert self.context is not None
        store = self.context.store
        mark = f"handoff:{message.conversation_id}"
        if message.handoff_queue is None and store.get(mark) is None:
            return False  # the common case: no handoff under way, nothing written
        with store.transaction() as tx:
            queue = message.handoff_queue or tx.get(mark)
            if queue is None:
                return False
            if tx.replies_unsent_after(message.conversation_id, message.outbox_id or 0):
                tx.put(mark, queue, tx.now + _HANDOFF_MARK)
                return False
            tx.forget(mark)
            return True


_WHAT = {
    "token": "the callback Token (微信客服 → API → 回调配置)",
    "aes_key": "the callback EncodingAESKey (43 characters)",
    "secret": "the 微信客服 Secret (微信客服 → API)",
}


def _parse(xml: str) -> dict[str, Any]:
    """The decrypted callback's fields; ValueError for anything but a flat <xml> document."""
    if _UNSAFE_XML.search(xml.encode()):
        raise ValueError("DOCTYPE/ENTITY inside the encrypted callback")
    try:
        document = xmltodict.parse(xml, disable_entities=True)
    except Exception as exc:  # ExpatError and friends
        raise ValueError(f"not XML: {exc}") from None
    root = document.get("xml") if isinstance(document, dict) else None
    if not isinstance(root, dict):
        raise ValueError("no <xml> root")
    return dict(root)


class WecomSender:
    """kf/send_msg for the dispatcher, then the handoff's state change."""

    def __init__(self, channel: WecomChannel) -> None:
        self.channel = channel

    async def send(self, message: Outbound) -> None:
        try:
            open_kfid, user = split_chat(message.chat_id)
        except ValueError as exc:
            raise PermanentFailure(str(exc)) from None
        for part in split_utf8(message.text, TEXT_LIMIT):
            data = {
                "touser": user,
                "open_kfid": open_kfid,
                "msgtype": "text",
                "text": {"content": part},
            }
            try:
                await self.channel._call("send_msg", data)
            except WeChatClientException as exc:
                raise delivery_error(exc) from exc
        channel = self.channel
        assert channel.context is not None
        # the reply is out: nothing from here on may raise, or the dispatcher would send it
        # again
        try:
            due = await channel.context.in_store_pool(lambda: channel.handoff_due(message))
        except Exception:
            log.exception(
                "微信客服: could not tell whether conversation %s is to be handed over",
                message.conversation_id,
            )
            return
        if due:
            await channel.hand_over(open_kfid, user)
