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
#: one customer, keyed by `customer_key` (transaction lock, bot/store/database.py): deciding a
#: message holds it shared (the customer's other chats go on in parallel); erasing the customer
#: (`bot customers forget`) holds it exclusive, so no message of theirs is decided meanwhile
CUSTOMER_LOCK = 727502
#: the scheduler's leadership, held by the leader's own connection (bot/jobs/leader.py)
SCHEDULER_LOCK = 727503
#: a read-modify-write of one `channel_state` key, such as fetching a shared access token
#: (transaction lock, bot/store/channel_state.py)
CHANNEL_STATE_LOCK = 727504
#: one conversation's messages decided one at a time, keyed by `conversation_key`: the
#: customer in one chat (a Telegram group or private chat, a WeCom account), as the pipeline and
#: an agent acting on that conversation's ticket take it (transaction lock, bot/store/database.py)
CONVERSATION_LOCK = 727505


def customer_key(channel: str, user_id: str) -> int:
    """A stable signed 32-bit key for the customer's advisory lock."""
    return _key(channel, user_id)


def conversation_key(channel: str, user_id: str, chat_id: str) -> int:
    """A stable signed 32-bit key for the advisory lock of the customer in one chat."""
    return _key(channel, user_id, chat_id)


def _key(*parts: str) -> int:
    digest = hashlib.blake2b("\x00".join(parts).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)
