"""wechatpy's token store on the `channel_state` table, shared by the WeChat Official Account
and WeCom channels: every worker uses the one access token a worker fetched, instead of each
fetching its own (the platforms rate-limit fetching, and WeChat invalidates the previous token
a few minutes after a new one is fetched).

wechatpy calls it synchronously from the channel's HTTP threads, never from the event loop.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Connection
from wechatpy.session import SessionStorage

from bot.domain.clock import Clock
from bot.store import channel_state
from bot.store.database import Store

#: a stored token is treated as expired this long before the platform's own expiry
TOKEN_MARGIN = timedelta(minutes=5)
#: but kept at least this long, whatever the platform says
MIN_LIFETIME = timedelta(seconds=60)


class TokenStorage(SessionStorage):
    def __init__(self, store: Store, clock: Clock, channel: str) -> None:
        self.store = store
        self.clock = clock
        self.channel = channel

    def get(self, key: str, default: Any = None) -> Any:
        with self.store.engine.connect() as conn:
            value = channel_state.get(conn, self.channel, key, self.clock.now())
        return default if value is None else value

    def set(self, key: str, value: Any, ttl: int | None = None) -> None:
        if value is None:
            return
        with self.store.transaction() as conn:
            self.put(conn, key, str(value), ttl)

    def put(self, conn: Connection, key: str, value: str, ttl: int | None) -> None:
        """`set` inside the caller's transaction (one that holds the key's lock)."""
        now = self.clock.now()
        expires = (
            None if ttl is None else now + max(timedelta(seconds=ttl) - TOKEN_MARGIN, MIN_LIFETIME)
        )
        channel_state.put(conn, self.channel, key, value, now, expires)

    def delete(self, key: str) -> None:
        with self.store.transaction() as conn:
            channel_state.forget(conn, self.channel, key)
