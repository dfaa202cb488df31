"""Both ends WeChat plays, on loopback: the server that pushes to the bot (signing and
encrypting by hand with `cryptography`, not wechatpy, so a wrong key or AppID in the adapter
shows), and a fake api.weixin.qq.com serving `cgi-bin/token` and the customer-service send."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

APP_ID = "wx-test-app"
APP_SECRET = "not-a-real-secret"
TOKEN = "not-a-real-token"


def random_aes_key() -> str:
    """A fresh 43-character EncodingAESKey (32 random bytes, base64 without its `=`)."""
    return base64.b64encode(os.urandom(32)).decode().rstrip("=")


def sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


@dataclass
class WechatServer:
    """Signs and encrypts pushes the way WeChat does, and opens the bot's encrypted replies."""

    aes_key: str
    token: str = TOKEN
    app_id: str = APP_ID

    @property
    def key(self) -> bytes:
        return base64.b64decode(self.aes_key + "=")

    def encrypt(self, xml: str, app_id: str | None = None) -> str:
        body = xml.encode()
        plain = os.urandom(16) + struct.pack(">I", len(body)) + body
        plain += (app_id or self.app_id).encode()
        pad = 32 - len(plain) % 32
        plain += bytes([pad]) * pad
        encryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()

    def decrypt(self, encrypted: str) -> str:
        decryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).decryptor()
        plain = decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()
        plain = plain[: -plain[-1]]
        (length,) = struct.unpack(">I", plain[16:20])
        xml, app_id = plain[20 : 20 + length], plain[20 + length :]
        assert app_id.decode() == self.app_id, f"reply encrypted for {app_id!r}"
        return xml.decode()

    def query(
        self, *, timestamp: int | None = None, nonce: str | None = None, token: str | None = None
    ) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        nonce = nonce or secrets.token_hex(5)
        return {"timestamp": ts, "nonce": nonce, "signature": sign(token or self.token, ts, nonce)}

    def plain_push(self, xml: str, **kwargs: Any) -> tuple[dict[str, str], str]:
        return self.query(**kwargs), xml

    def encrypted_push(
        self, xml: str, *, app_id: str | None = None, token: str | None = None, **kwargs: Any
    ) -> tuple[dict[str, str], str]:
        query = self.query(**kwargs)
        encrypted = self.encrypt(xml, app_id)
        query["encrypt_type"] = "aes"
        query["msg_signature"] = sign(
            token or self.token, query["timestamp"], query["nonce"], encrypted
        )
        body = f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
        return query, body

    def open_reply(self, body: str, nonce: str) -> str:
        """The plaintext XML of an encrypted passive reply, its signature checked."""
        import xmltodict

        envelope = xmltodict.parse(body)["xml"]
        expected = sign(self.token, envelope["TimeStamp"], envelope["Nonce"], envelope["Encrypt"])
        assert envelope["MsgSignature"] == expected, "bad reply signature"
        assert envelope["Nonce"] == nonce
        assert abs(int(envelope["TimeStamp"]) - time.time()) < 60
        return self.decrypt(envelope["Encrypt"])


def text_xml(openid: str, msg_id: int | str, content: str, created: int | None = None) -> str:
    return (
        "<xml><ToUserName><![CDATA[gh_test]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{created or int(time.time())}</CreateTime>"
        "<MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )


def event_xml(openid: str, event: str, created: int | None = None, key: str = "") -> str:
    return (
        "<xml><ToUserName><![CDATA[gh_test]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{created or int(time.time())}</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[{key}]]></EventKey></xml>"
    )


@dataclass
class FakeWechatAPI:
    """api.weixin.qq.com on loopback: hands out tokens, records custom sends, and answers the
    errcodes queued in `errors` (one per send) before it succeeds again."""

    token_calls: int = 0
    sends: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    errors: list[int] = field(default_factory=list)
    always: int | None = None
    current: str | None = None
    server: TestServer | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cgi-bin/token", self.token)
        app.router.add_post("/cgi-bin/message/custom/send", self.send)
        return app

    async def start(self) -> str:
        self.server = TestServer(self.app(), host="127.0.0.1")
        await self.server.start_server()
        return str(self.server.make_url("")).rstrip("/")

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    async def token(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("appid") != APP_ID or q.get("secret") != APP_SECRET:
            return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        self.token_calls += 1
        self.current = f"TOKEN-{self.token_calls}"
        return web.json_response({"access_token": self.current, "expires_in": 7200})

    async def send(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if request.query.get("access_token") != self.current:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        code = self.errors.pop(0) if self.errors else self.always
        if code:
            if code == 40001:
                self.current = None  # the token really is revoked
            return web.json_response({"errcode": code, "errmsg": f"fake error {code}"})
        body = await request.json()
        self.sends.append({"touser": body["touser"], "content": body["text"]["content"]})
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    def texts(self, openid: str | None = None) -> list[str]:
        return [s["content"] for s in self.sends if openid is None or s["touser"] == openid]


def contains_any(haystacks: Iterable[str], needle: str) -> bool:
    return any(needle in h for h in haystacks)
