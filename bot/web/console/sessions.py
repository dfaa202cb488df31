"""Console sessions in an encrypted cookie (Fernet: AES-128-CBC with an HMAC-SHA256, from
`cryptography`), so a worker keeps no session state and any worker of a cluster can serve any
request.

The key is shared by every worker without setup: made once and kept in the database
(`channel_state`, written only if absent, so two workers starting together agree), unless
`BOT_CONSOLE_SECRET` is set. Sessions expire after `console.session_hours` without a request:
Fernet tokens carry the time they were made, the cookie is re-issued as the agent works, and a
token older than the idle limit no longer opens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from http.cookies import SimpleCookie
from typing import Any

from aiohttp import hdrs, web
from cryptography.fernet import Fernet, InvalidToken

from bot.domain.clock import Clock
from bot.store import channel_state
from bot.store.database import Store

#: the cookie's name unless `[console] cookie` names another
COOKIE = "bot_console"
SECRET_ENV = "BOT_CONSOLE_SECRET"
#: re-issue the cookie (sliding the idle expiry) at most this often
TOUCH_SECONDS = 60


def session_key(store: Store, clock: Clock) -> bytes:
    """The Fernet key: from `BOT_CONSOLE_SECRET` when set (any string; hashed to 32 bytes),
    otherwise the cluster's own, created on first use. Blocking: run it in the store pool."""
    secret = os.environ.get(SECRET_ENV)
    if secret:
        return base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())
    with store.transaction() as tx:
        value = channel_state.put_if_absent(
            tx, "console", "session_key", Fernet.generate_key().decode(), clock.now()
        )
    return value.encode()


@dataclass
class Session:
    """What the cookie holds: the agent's id once logged in, the CSRF token, the interface
    language, and messages to show on the next page."""

    data: dict[str, Any] = field(default_factory=dict)
    changed: bool = False

    @property
    def agent_id(self) -> int | None:
        value = self.data.get("agent")
        return value if isinstance(value, int) else None

    @property
    def csrf(self) -> str:
        """The session's CSRF token, made when first needed."""
        token = self.data.get("csrf")
        if not isinstance(token, str):
            token = secrets.token_urlsafe(32)
            self.data["csrf"] = token
            self.changed = True
        return token

    @property
    def language(self) -> str | None:
        value = self.data.get("lang")
        return value if isinstance(value, str) else None

    @language.setter
    def language(self, value: str) -> None:
        self.data["lang"] = value
        self.changed = True

    def log_in(self, agent_id: int) -> None:
        """A new CSRF token at login, so a token seen before it (a fixated session) is useless."""
        self.data = {"agent": agent_id, "csrf": secrets.token_urlsafe(32), **self._kept()}
        self.changed = True

    def log_out(self) -> None:
        self.data = {"csrf": secrets.token_urlsafe(32), **self._kept()}
        self.changed = True

    def flash(self, message: str) -> None:
        self.data.setdefault("flash", []).append(message)
        self.changed = True

    def take_flashes(self) -> list[str]:
        messages = self.data.pop("flash", [])
        if messages:
            self.changed = True
        return [m for m in messages if isinstance(m, str)]

    def _kept(self) -> dict[str, Any]:
        return {"lang": self.data["lang"]} if "lang" in self.data else {}


class Sessions:
    def __init__(
        self, key: bytes, clock: Clock, idle: timedelta, secure: bool, cookie: str = COOKIE
    ) -> None:
        self._fernet = Fernet(key)
        self.cookie = cookie
        self._clock = clock
        self._idle = max(int(idle.total_seconds()), 1)
        self._secure = secure

    def load(self, request: web.Request) -> Session:
        """The request's session; a missing, forged, tampered or expired cookie gives a new,
        empty one (the agent logs in again)."""
        cookie = request.cookies.get(self.cookie)
        if not cookie:
            return Session()
        token = (cookie + "=" * (-len(cookie) % 4)).encode()
        now = self._now()
        try:
            data = json.loads(self._fernet.decrypt_at_time(token, self._idle, now))
            issued = self._fernet.extract_timestamp(token)
        except (InvalidToken, ValueError):
            return Session()
        if not isinstance(data, dict):
            return Session()
        return Session(data, changed=now - issued >= TOUCH_SECONDS)

    def save(self, response: web.StreamResponse, session: Session) -> None:
        """Write the cookie when the session changed. Called as the response is prepared, after
        aiohttp has turned `response.cookies` into headers, so the header is added here."""
        if not session.changed:
            return
        token = self._fernet.encrypt_at_time(
            json.dumps(session.data, separators=(",", ":")).encode(), self._now()
        )
        cookie = SimpleCookie()
        # without base64's padding the value needs no quoting
        cookie[self.cookie] = token.decode().rstrip("=")
        morsel = cookie[self.cookie]
        morsel["path"] = "/console/"
        morsel["max-age"] = str(self._idle)
        morsel["httponly"] = True
        morsel["samesite"] = "Lax"
        if self._secure:
            morsel["secure"] = True
        response.headers.add(hdrs.SET_COOKIE, morsel.OutputString())
        session.changed = False

    def _now(self) -> int:
        return int(self._clock.now().timestamp())
