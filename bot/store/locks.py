"""Every PostgreSQL advisory-lock namespace the bot takes, in one place so two never collide.

Each constant is the key of a single-key lock, or the namespace (first key) of a two-key lock
whose second key names the customer or the channel's key. SQLite has a single writer and needs
none of them.
"""

from __future__ import annotations

import hashlib

#: `bot db upgrade` and start-up migrations: one worker migrates, the others wait
#: (transaction lock, bot/store/migrate.py)
MIGRATION_LOCK = 727501
#: one customer's messages decided one at a time, keyed by `customer_key`
#: (transaction lock, bot/store/database.py)
CUSTOMER_LOCK = 727502
#: the scheduler's leadership, held by the leader's own connection (bot/jobs/leader.py)
SCHEDULER_LOCK = 727503
#: a read-modify-write of one `channel_state` key, such as fetching a shared access token
#: (transaction lock, bot/store/channel_state.py)
CHANNEL_STATE_LOCK = 727504


def customer_key(channel: str, user_id: str) -> int:
    """A stable signed 32-bit key for the customer's advisory lock."""
    digest = hashlib.blake2b(f"{channel}\x00{user_id}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)
