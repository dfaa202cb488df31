"""Both ends of WeCom 微信客服 that the bot talks to, on loopback, with fake credentials.

`WecomServer` is what WeCom does to the bot: it encrypts callbacks and the verification echostr
by hand with `cryptography` (not wechatpy, so a wrong key, layout or CorpID in the channel is
caught). `FakeQyapi` is qyapi.weixin.qq.com: gettoken, kf/sync_msg over a message log per
open_kfid (pages of `page_size` whatever the requested limit, so paging is exercised),
kf/send_msg (refused with 95018 unless the session is in state 0 or 1), kf/service_state/trans
and /get, kf/send_msg_on_event. It records every call.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

CORP_ID = "ww-test-corp"
SECRET = "fake-kf-secret-not-real"
TOKEN = "fake-callback-token"


def random_aes_key() -> str:
    """A random EncodingAESKey: 43 characters of base64 for 32 bytes."""
    return base64.b64encode(os.urandom(32)).decode().rstrip("=")


@dataclass
class WecomServer:
    """Signs and encrypts what WeCom sends to the callback URL."""

    aes_key: str
    token: str = TOKEN
    corp_id: str = CORP_ID

    def encrypt(self, text: str) -> str:
        key = base64.b64decode(self.aes_key + "=")
        data = text.encode()
        plain = os.urandom(16) + struct.pack(">I", len(data)) + data + self.corp_id.encode()
        pad = 32 - len(plain) % 32
        plain += bytes([pad]) * pad
        encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()

    def sign(self, timestamp: str, nonce: str, encrypted: str) -> str:
        joined = "".join(sorted([self.token, timestamp, nonce, encrypted]))
        return hashlib.sha1(joined.encode()).hexdigest()

    def verification(self, echo: str, timestamp: int | None = None) -> dict[str, str]:
        """The query of the GET that checks the URL."""
        ts = str(timestamp if timestamp is not None else int(time.time()))
        nonce = os.urandom(4).hex()
        encrypted = self.encrypt(echo)
        return {
            "msg_signature": self.sign(ts, nonce, encrypted),
            "timestamp": ts,
            "nonce": nonce,
            "echostr": encrypted,
        }

    def callback(self, xml: str, timestamp: int | None = None) -> tuple[dict[str, str], str]:
        """(query, body) of an encrypted POST."""
        ts = str(timestamp if timestamp is not None else int(time.time()))
        nonce = os.urandom(4).hex()
        encrypted = self.encrypt(xml)
        body = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt>"
            "<AgentID><![CDATA[]]></AgentID></xml>"
        )
        query = {"msg_signature": self.sign(ts, nonce, encrypted), "timestamp": ts, "nonce": nonce}
        return query, body

    def kf_news(
        self, open_kfid: str, sync_token: str = "sync-token-1"
    ) -> tuple[dict[str, str], str]:
        xml = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime>"
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>"
            f"<Token><![CDATA[{sync_token}]]></Token>"
            f"<OpenKfId><![CDATA[{open_kfid}]]></OpenKfId></xml>"
        )
        return self.callback(xml)


@dataclass
class Call:
    endpoint: str
    body: dict[str, Any]
    access_token: str
    #: what the fake answered (0: accepted)
    errcode: int = 0
    #: when it arrived (time.monotonic())
    at: float = field(default_factory=time.monotonic)


@dataclass
class FakeQyapi:
    page_size: int = 2
    corp_id: str = CORP_ID
    secret: str = SECRET
    servicers: tuple[str, ...] = ("zhangsan",)
    calls: list[Call] = field(default_factory=list)
    #: the message log per open_kfid; a cursor is "c<index>" into it
    log: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: session state per (open_kfid, external_userid); 0 (未处理) until changed
    states: dict[tuple[str, str], int] = field(default_factory=dict)
    #: errcodes to answer, one per call, before an endpoint works again
    failures: dict[str, list[int]] = field(default_factory=dict)
    tokens_issued: int = 0
    #: when set, sync_msg answers only once it is open (the page is cut before waiting)
    sync_gate: asyncio.Event | None = None
    used_codes: set[str] = field(default_factory=set)
    _next_id: int = 0

    def __post_init__(self) -> None:
        self.app = web.Application()
        self.app.router.add_get("/cgi-bin/gettoken", self.gettoken)
        for endpoint in (
            "sync_msg",
            "send_msg",
            "send_msg_on_event",
            "service_state/trans",
            "service_state/get",
        ):
            self.app.router.add_post(f"/cgi-bin/kf/{endpoint}", self._handler(endpoint))

    # --- what the test arranges -------------------------------------------------------------

    def customer_says(
        self, open_kfid: str, user: str, text: str, msgid: str | None = None, origin: int = 3
    ) -> str:
        self._next_id += 1
        msgid = msgid or f"msg-{self._next_id}"
        self.log.setdefault(open_kfid, []).append(
            {
                "msgid": msgid,
                "open_kfid": open_kfid,
                "external_userid": user,
                "send_time": int(time.time()),
                "origin": origin,
                "msgtype": "text",
                "text": {"content": text},
            }
        )
        return msgid

    def add(self, open_kfid: str, message: dict[str, Any]) -> None:
        self.log.setdefault(open_kfid, []).append(message)

    def enters(self, open_kfid: str, user: str, welcome_code: str) -> None:
        self._next_id += 1
        self.add(
            open_kfid,
            {
                "msgid": f"event-{self._next_id}",
                "send_time": int(time.time()),
                "origin": 4,
                "msgtype": "event",
                "event": {
                    "event_type": "enter_session",
                    "open_kfid": open_kfid,
                    "external_userid": user,
                    "scene": "123",
                    "welcome_code": welcome_code,
                },
            },
        )

    # --- what the test reads ---------------------------------------------------------------

    def of(self, endpoint: str) -> list[Call]:
        return [call for call in self.calls if call.endpoint == endpoint]

    def sent_to(self, user: str) -> list[str]:
        """The texts this customer received (accepted sends only)."""
        return [
            c.body["text"]["content"]
            for c in self.of("send_msg")
            if c.body["touser"] == user and c.errcode == 0
        ]

    def sent_through(self, open_kfid: str, user: str) -> list[str]:
        """The texts this customer received from this 微信客服 account (accepted sends only)."""
        return [
            c.body["text"]["content"]
            for c in self.of("send_msg")
            if (c.body["open_kfid"], c.body["touser"]) == (open_kfid, user) and c.errcode == 0
        ]

    # --- the API ------------------------------------------------------------------------------

    @property
    def access_token(self) -> str:
        return f"fake-access-token-{self.tokens_issued}"

    async def gettoken(self, request: web.Request) -> web.Response:
        if (request.query.get("corpid"), request.query.get("corpsecret")) != (
            self.corp_id,
            self.secret,
        ):
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        self.tokens_issued += 1
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "access_token": self.access_token, "expires_in": 7200}
        )

    def _handler(self, endpoint: str) -> Any:
        async def handle(request: web.Request) -> web.Response:
            body = await request.json()
            given = request.query.get("access_token", "")
            call = Call(endpoint, body, given)
            self.calls.append(call)
            queued = self.failures.get(endpoint)
            try:
                if self.tokens_issued == 0 or given != self.access_token:
                    raise _Refused(40014)
                if queued:
                    raise _Refused(queued.pop(0))
                answer = getattr(self, "_" + endpoint.replace("/", "_"))(body)
            except _Refused as refused:  # HTTP 200 with a non-zero errcode, as WeCom does
                call.errcode = refused.code
                return web.json_response({"errcode": call.errcode, "errmsg": "refused"})
            if endpoint == "sync_msg" and self.sync_gate is not None:
                await self.sync_gate.wait()
            return web.json_response({"errcode": 0, "errmsg": "ok", **answer})

        return handle

    def _sync_msg(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = self.log.get(body["open_kfid"], [])
        cursor = body.get("cursor") or "c0"
        start = int(cursor[1:])
        page = messages[start : start + min(self.page_size, int(body.get("limit", 1000)))]
        end = start + len(page)
        return {"next_cursor": f"c{end}", "has_more": int(end < len(messages)), "msg_list": page}

    def _send_msg(self, body: dict[str, Any]) -> dict[str, Any]:
        key = (body["open_kfid"], body["touser"])
        if self.states.get(key, 0) not in (0, 1):
            raise _Refused(95018)
        self.states[key] = 1
        assert len(body["text"]["content"].encode()) <= 2048
        return {"msgid": f"sent-{len(self.calls)}"}

    def _send_msg_on_event(self, body: dict[str, Any]) -> dict[str, Any]:
        if body["code"] in self.used_codes:
            raise _Refused(95010)
        self.used_codes.add(body["code"])
        return {"msgid": f"event-sent-{len(self.calls)}"}

    def _service_state_trans(self, body: dict[str, Any]) -> dict[str, Any]:
        key = (body["open_kfid"], body["external_userid"])
        state, new = self.states.get(key, 0), int(body["service_state"])
        allowed = {0: {1, 2, 3, 4}, 1: {1, 2, 3, 4}, 2: {2, 3, 4}, 3: {3, 4}, 4: set()}
        if new not in allowed[state]:
            raise _Refused(95016)
        if new == 3 and body.get("servicer_userid") not in self.servicers:
            raise _Refused(95014)
        self.states[key] = new
        return {"msg_code": f"code-{len(self.calls)}"}

    def _service_state_get(self, body: dict[str, Any]) -> dict[str, Any]:
        key = (body["open_kfid"], body["external_userid"])
        return {"service_state": self.states.get(key, 0), "servicer_userid": ""}


class _Refused(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code
