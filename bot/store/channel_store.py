"""What a channel adapter may read and write in the store, by name: its own keys in
`channel_state` (access tokens, sync cursors, notes for the worker pulling), named leases (one
poller or puller per account in the cluster), and whether replies are still unsent after one
it sent. Adapters get a `ChannelStore` in their `ChannelContext` and never see SQL, a connection
or the engine (docs/architecture.md, "Channels").

Every call is synchronous and short: an adapter runs it in the service's store pool
(`ChannelContext.in_store_pool`) or on a thread of its own (wechatpy's token storage), never on
the event loop.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.engine import Connection

from bot.domain.clock import Clock
from bot.store import channel_lines, channel_state, leases, outbox
from bot.store.channel_lines import Line as Line
from bot.store.database import Store


class ChannelKeys(Protocol):
    """A channel's keys, read and written inside one transaction or each on its own."""

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str, expires_at: datetime | None = None) -> None: ...

    def forget(self, key: str) -> None: ...


class ChannelTransaction:
    """One transaction on the store, for one channel: its reads and writes commit together.
    `now` is the clock's time when the transaction began."""

    def __init__(self, conn: Connection, channel: str, now: datetime) -> None:
        self._conn = conn
        self.channel = channel
        self.now = now

    def get(self, key: str) -> str | None:
        """The key's value, or None when it was never set or has expired."""
        return channel_state.get(self._conn, self.channel, key, self.now)

    def put(self, key: str, value: str, expires_at: datetime | None = None) -> None:
        channel_state.put(self._conn, self.channel, key, value, self.now, expires_at)

    def forget(self, key: str) -> None:
        channel_state.forget(self._conn, self.channel, key)

    def lock(self, key: str) -> None:
        """Hold the key until the transaction ends: other workers locking it wait (PostgreSQL;
        on SQLite the transaction already excludes every other writer)."""
        channel_state.lock(self._conn, self.channel, key)

    def hold_lease(self, name: str, holder: str, ttl: timedelta) -> bool:
        """Take or renew a named lease for `ttl`; False when another holder has it."""
        return leases.hold(self._conn, name, holder, self.now, ttl)

    def let_go(self, name: str, holder: str) -> None:
        """Give the lease back (if `holder` still has it)."""
        leases.let_go(self._conn, name, holder)

    def replies_unsent_after(self, conversation_id: int, outbox_id: int) -> int:
        """How many of the conversation's replies written after `outbox_id` wait to be sent."""
        return outbox.unsent_after(self._conn, conversation_id, outbox_id)


class _EachOnItsOwn:
    """`ChannelKeys` where every call is a transaction of its own."""

    def __init__(self, channels: ChannelStore) -> None:
        self._channels = channels

    def get(self, key: str) -> str | None:
        return self._channels.get(key)

    def put(self, key: str, value: str, expires_at: datetime | None = None) -> None:
        with self._channels.transaction() as tx:
            tx.put(key, value, expires_at)

    def forget(self, key: str) -> None:
        with self._channels.transaction() as tx:
            tx.forget(key)


class ChannelStore:
    """The store as one channel sees it: keys under the channel's name, leases, the outbox."""

    def __init__(self, store: Store, clock: Clock, channel: str) -> None:
        self._store = store
        self._clock = clock
        self.channel = channel

    def get(self, key: str) -> str | None:
        """Read one key without taking the write lock (SQLite) or a transaction's locks."""
        with self._store.engine.connect() as conn:
            return channel_state.get(conn, self.channel, key, self._clock.now())

    def first_use(self, key: str, keep: timedelta, forget_prefix: str = "") -> bool:
        """Mark `key` used for `keep`; False when another request (any worker) already used
        it within that time. With `forget_prefix`, the expired keys under it go in the same
        transaction, so the marks never pile up."""
        now = self._clock.now()
        with self._store.transaction() as conn:
            if forget_prefix:
                channel_state.forget_expired(conn, self.channel, forget_prefix, now)
            return channel_state.first_use(conn, self.channel, key, now, now + keep)

    # --- a channel that shows the conversation itself (the web chat) -----------------------

    def lines_after(
        self, user_id: str, message_id: int, outbox_id: int, limit: int = 100
    ) -> list[Line]:
        """The customer's messages and delivered replies after the cursor, oldest first."""
        with self._store.engine.connect() as conn:
            return channel_lines.after(conn, self.channel, user_id, message_id, outbox_id, limit)

    def last_lines(self, user_id: str, limit: int = 200) -> list[Line]:
        """The customer's last messages and delivered replies, oldest first (a page's history)."""
        with self._store.engine.connect() as conn:
            return channel_lines.last(conn, self.channel, user_id, limit)

    def delivered(
        self, outbox_ids: Collection[int], user_ids: Collection[str], worker: str
    ) -> None:
        """These replies are in their customers' conversations for the channel to show, and
        these customers' conversations have something new: the replies marked sent and the
        customers announced to every worker in one transaction, so a reader woken by the
        announcement finds them. The dispatcher's own mark afterwards changes nothing. Called
        with no replies, it only announces (a customer's own message, for their other tabs)."""
        with self._store.transaction() as conn:
            now = self._clock.now()
            if outbox_ids:
                outbox.mark_sent(conn, outbox_ids, now)
            channel_lines.announce(conn, self.channel, user_ids, now, worker)

    def lines_versions(self) -> dict[str, str]:
        """Every worker's version of this channel's conversations, which moves whenever that
        worker announced something new (SQLite, where there is no NOTIFY: one read a second per
        worker wakes its readers when another worker's moved)."""
        with self._store.engine.connect() as conn:
            return channel_lines.versions(conn, self.channel, self._clock.now())

    def listen_address(self) -> str | None:
        """Where to LISTEN for `channel_lines.NOTIFY_CHANNEL` (a libpq connection string), or
        None on SQLite, whose readers poll."""
        url = self._store.engine.url
        if url.get_backend_name() != "postgresql":
            return None
        return url.set(drivername="postgresql").render_as_string(hide_password=False)

    @contextmanager
    def transaction(self) -> Iterator[ChannelTransaction]:
        with self._store.transaction() as conn:
            yield ChannelTransaction(conn, self.channel, self._clock.now())

    @contextmanager
    def locked(self, key: str) -> Iterator[ChannelKeys]:
        """Hold `key` across the workers while the block runs (a read-modify-write that calls
        a platform in between, such as fetching an access token every worker then shares).

        PostgreSQL: a transaction holding the key's advisory lock; the other workers wait for
        it, then read what this one wrote. SQLite (one machine): no transaction is held across
        the block, since its single write lock would stop every other writer during the
        platform's call; the caller's own process lock is what serialises."""
        if self._store.dialect != "postgresql":
            yield _EachOnItsOwn(self)
            return
        with self.transaction() as tx:
            tx.lock(key)
            yield tx
