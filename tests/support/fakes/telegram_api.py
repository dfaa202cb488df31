"""A loopback fake of the Telegram Bot API, enough for the Telegram channel end to end.

It speaks aiogram's wire format (PROTOCOLS.md 1.1): `POST /bot<token>/<method>` with a form
body whose nested values are JSON strings, answered `{"ok": true, "result": …}` or
`{"ok": false, "error_code": N, "description": …, "parameters": …}` with that HTTP status.
getUpdates long-polls, honouring `offset` (updates below it are confirmed and forgotten) and
`timeout`, and answers 409 to a second getUpdates while one is waiting, as Telegram does.
`push` takes any body, so a test can serve an update aiogram cannot read (`unreadable_update`).
Every call is recorded with the time it arrived; errors can be queued per method, and a chat's
next sendMessage calls can be made slow (a Bot API that hangs).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

BOT_ID = 123456
TOKEN = f"{BOT_ID}:TEST-not-a-real-token"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float  # time.monotonic()
    result: Any = None


@dataclass
class Failure:
    status: int
    description: str
    retry_after: int | None = None
    #: answer this instead of Telegram's JSON (a proxy's error page)
    page: str | None = None


@dataclass
class FakeBotAPI:
    calls: list[Call] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, list[Failure]] = field(default_factory=dict)
    webhook: dict[str, Any] = field(default_factory=dict)
    #: chat id → seconds each of its next sendMessage calls takes before it is answered
    slow: dict[str, list[float]] = field(default_factory=dict)
    polling_now: int = 0
    most_polling_at_once: int = 0
    _update_ids: Any = field(default_factory=lambda: count(1000))
    _message_ids: Any = field(default_factory=lambda: count(5000))
    _news: asyncio.Event = field(default_factory=asyncio.Event)

    # --- what a test does -----------------------------------------------------------------

    def push(self, update: dict[str, Any]) -> int:
        """Queue an update for getUpdates; returns its update_id."""
        update_id: int = next(self._update_ids)
        self.pending.append({"update_id": update_id, **update})
        self._news.set()
        return update_id

    def fail(
        self,
        method: str,
        status: int,
        description: str,
        retry_after: int | None = None,
        page: str | None = None,
    ) -> None:
        """The next call of `method` gets this error."""
        self.errors.setdefault(method, []).append(Failure(status, description, retry_after, page))

    def sent(self) -> list[Call]:
        """The sendMessage calls that succeeded."""
        return [c for c in self.calls if c.method == "sendMessage" and c.result is not None]

    def called(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    # --- the server -------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TOKEN:
            return _error(Failure(401, "Unauthorized"))
        method = request.match_info["method"]
        params = {key: _value(value) for key, value in (await request.post()).items()}
        call = Call(method, params, time.monotonic())
        self.calls.append(call)
        queued = self.errors.get(method)
        if queued:
            return _error(queued.pop(0))
        if method == "getUpdates":
            if self.polling_now:
                return _error(Failure(409, "Conflict: terminated by other getUpdates request"))
            self.polling_now += 1
            self.most_polling_at_once = max(self.most_polling_at_once, self.polling_now)
            try:
                call.result = await self._updates(request, params)
            finally:
                self.polling_now -= 1
        else:
            delays = self.slow.get(str(params.get("chat_id"))) if method == "sendMessage" else None
            if delays:
                await asyncio.sleep(delays.pop(0))
            call.result = self._answer(method, params)
        return web.json_response({"ok": True, "result": call.result})

    async def _updates(self, request: web.Request, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset", 0))
        if offset:
            self.pending = [u for u in self.pending if u["update_id"] >= offset]
        deadline = time.monotonic() + int(params.get("timeout", 0))
        while not self.pending and time.monotonic() < deadline:
            transport = request.transport
            if transport is None or transport.is_closing():
                return []  # the poller went away
            self._news.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._news.wait(), min(0.05, deadline - time.monotonic()))
        return list(self.pending)

    def _answer(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {"id": BOT_ID, "is_bot": True, "first_name": "Shop", "username": "shop_bot"}
        if method == "sendMessage":
            chat = int(params["chat_id"])
            return {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": {"id": chat, "type": "private" if chat > 0 else "group"},
                "text": params["text"],
            }
        if method == "setWebhook":
            self.webhook = params
        if method == "deleteWebhook":
            self.webhook = {}
        return True


def _value(raw: Any) -> Any:
    """Form values are strings; nested objects arrive as JSON."""
    text = str(raw)
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _error(failure: Failure) -> web.Response:
    if failure.page is not None:
        return web.Response(text=failure.page, status=failure.status, content_type="text/html")
    body: dict[str, Any] = {
        "ok": False,
        "error_code": failure.status,
        "description": failure.description,
    }
    if failure.retry_after is not None:
        body["parameters"] = {"retry_after": failure.retry_after}
    return web.json_response(body, status=failure.status)


@asynccontextmanager
async def running() -> AsyncIterator[tuple[FakeBotAPI, str]]:
    """The fake on 127.0.0.1 and a free port; yields it and its base URL."""
    api = FakeBotAPI()
    server = TestServer(api.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield api, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


# --- updates as Telegram sends them ---------------------------------------------------------


def user(user_id: int = 777, language: str = "zh-hans") -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": "Customer", "language_code": language}


def chat(chat_id: int = 777) -> dict[str, Any]:
    return {"id": chat_id, "type": "private" if chat_id > 0 else "group"}


def message(
    text: str | None = None,
    *,
    message_id: int = 1,
    chat_id: int = 777,
    user_id: int | None = None,
    language: str = "zh-hans",
    **content: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_id": message_id,
        "date": int(time.time()),
        "chat": chat(chat_id),
        "from": user(user_id or chat_id, language),
        **content,
    }
    if text is not None:
        body["text"] = text
        if text.startswith("/"):
            length = len(text.split()[0])
            body["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
    return body


def text_update(text: str, **kwargs: Any) -> dict[str, Any]:
    return {"message": message(text, **kwargs)}


def callback_update(
    data: str, query_id: str = "q1", chat_id: int = 777, message_id: int = 5000
) -> dict[str, Any]:
    return {
        "callback_query": {
            "id": query_id,
            "from": user(chat_id),
            "chat_instance": "ci-1",
            "data": data,
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": chat(chat_id),
                "text": "…",
            },
        }
    }


def unreadable_update(text: str, *, message_id: int = 1, chat_id: int = 777) -> dict[str, Any]:
    """A message aiogram refuses (its `date` a string, as a buggy proxy or a newer Bot API
    might send): the whole getUpdates answer it is in fails to decode."""
    body = message(text, message_id=message_id, chat_id=chat_id)
    body["date"] = "yesterday"
    return {"message": body}
