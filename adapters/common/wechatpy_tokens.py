"""wechatpy's token store on the `channel_state` table, shared by the WeChat Official Account
and WeCom channels: every worker uses the one access token a worker fetched, instead of each
fetching its own (the platforms rate-limit fetching, and WeChat invalidates the previous token
a few minutes after a new one is fetched).

wechatpy calls it synchronously from the channel's HTTP threads, never from the event loop.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from wechatpy.session import SessionStorage

from bot.domain.clock import Clock
from bot.store.channel_store import ChannelKeys, ChannelStore

#: a stored token is treated as expired this long before the platform's own expiry
TOKEN_MARGIN = timedelta(minutes=5)
#: but kept at least this long, whatever the platform says
MIN_LIFETIME = timedelta(seconds=60)


class TokenStorage(SessionStorage):
    """wechatpy's `SessionStorage` on the channel's own keys in the store."""

    def __init__(self, store: ChannelStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def get(self, key: str, default: Any = None) -> Any:
        value = self.store.get(key)
        return default if value is None else value

    def set(self, key: str, value: Any, ttl: int | None = None) -> None:
        if value is None:
            return
        with self.store.transaction() as tx:
            self.put(tx, key, str(value), ttl)

    def put(self, keys: ChannelKeys, key: str, value: str, ttl: int | None) -> None:
        """`set` through `keys`: inside the caller's transaction (one that holds the key's
        lock), or on its own."""
        now = self.clock.now()
        expires = (
            None if ttl is None else now + max(timedelta(seconds=ttl) - TOKEN_MARGIN, MIN_LIFETIME)
        )
        keys.put(key, value, expires)

    def delete(self, key: str) -> None:
        with self.store.transaction() as tx:
            tx.forget(key)
