"""A customer's conversation as a channel that shows it itself reads it back (the web chat's
panel, which keeps no history of its own): the customer's own messages and the replies
delivered to them, after a cursor, in the order they were written.

A reply counts once it is delivered (`status = sent`): the dispatcher sends a conversation's
rows one at a time, in order, so the delivered rows of a conversation appear in id order and a
cursor that moves past one never skips an earlier one still to come. The cursor is two ids,
the last message in and the last outbox row out; both only grow.

`announce` tells the other workers (PostgreSQL NOTIFY on `channel_lines`, sent when the
transaction commits) that a customer's conversation has something new; on SQLite it moves the
writing worker's `lines-version:<worker>` key, which the other workers poll once a second.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.domain.delivery import DeliveryState
from bot.store import channel_state
from bot.store.schema import channel_state as keys
from bot.store.schema import conversations, messages, outbox

#: the PostgreSQL NOTIFY channel; the payload is `<channel>:<user id>`
NOTIFY_CHANNEL = "channel_lines"
#: the `channel_state` keys (one per worker) that move with every announcement on SQLite, and
#: how long one is kept after its worker last wrote it
VERSION_KEY = "lines-version"
VERSION_KEPT = timedelta(days=1)


@dataclass(frozen=True)
class Line:
    """One line of a conversation as the customer sees it: theirs (`in`) or a reply (`out`)."""

    direction: Literal["in", "out"]
    id: int
    text: str
    at: datetime
    choices: tuple[str, ...] = ()


def after(
    conn: Connection,
    channel: str,
    user_id: str,
    message_id: int,
    outbox_id: int,
    limit: int,
) -> list[Line]:
    """The customer's lines after the cursor (`message_id`, `outbox_id`), oldest first, at
    most `limit` of each direction."""
    ins = conn.execute(
        _received(channel, user_id)
        .where(messages.c.id > message_id)
        .order_by(messages.c.id)
        .limit(limit)
    ).all()
    outs = conn.execute(
        _delivered(channel, user_id)
        .where(outbox.c.id > outbox_id)
        .order_by(outbox.c.id)
        .limit(limit)
    ).all()
    return _merged(ins, outs)


def last(conn: Connection, channel: str, user_id: str, limit: int) -> list[Line]:
    """The customer's last lines (at most `limit` of each direction), oldest first."""
    ins = conn.execute(
        _received(channel, user_id).order_by(messages.c.id.desc()).limit(limit)
    ).all()
    newest = _delivered(channel, user_id).order_by(outbox.c.id.desc()).limit(limit)
    outs = conn.execute(newest).all()
    return _merged(ins, outs)


def announce(
    conn: Connection, channel: str, user_ids: Collection[str], now: datetime, worker: str
) -> None:
    """Tell every worker's readers, once this transaction commits, that these customers'
    conversations have something new: PostgreSQL NOTIFYs each; on SQLite this worker's
    version key (`VERSION_KEY:<worker>`) moves, which the other workers read once a second (a
    worker's own readers are woken by the worker itself)."""
    if not user_ids:
        return
    if conn.dialect.name == "postgresql":
        for user_id in sorted(set(user_ids)):
            payload = f"{channel}:{user_id}"[:7000]
            conn.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, payload)))
        return
    prefix = f"{VERSION_KEY}:"
    channel_state.forget_expired(conn, channel, prefix, now)
    key = f"{prefix}{worker}"[:128]
    channel_state.put(conn, channel, key, secrets.token_hex(8), now, now + VERSION_KEPT)


def versions(conn: Connection, channel: str, now: datetime) -> dict[str, str]:
    """Every worker's version key (SQLite), by key."""
    rows = conn.execute(
        sa.select(keys.c.key, keys.c.value).where(
            keys.c.channel == channel,
            keys.c.key.startswith(f"{VERSION_KEY}:", autoescape=True),
            sa.or_(keys.c.expires_at.is_(None), keys.c.expires_at > now),
        )
    ).all()
    return {str(key): str(value) for key, value in rows}


def _received(channel: str, user_id: str) -> sa.Select[Any]:
    return sa.select(messages.c.id, messages.c.text, messages.c.at).where(
        messages.c.channel == channel,
        messages.c.user_id == user_id,
        messages.c.direction == "in",
    )


def _delivered(channel: str, user_id: str) -> sa.Select[Any]:
    return (
        sa.select(
            outbox.c.id, outbox.c.text, outbox.c.created_at, outbox.c.choices, outbox.c.reply_to
        )
        .join(conversations, conversations.c.id == outbox.c.conversation_id)
        .where(
            conversations.c.channel == channel,
            conversations.c.user_id == user_id,
            outbox.c.status == DeliveryState.SENT,
        )
    )


def _merged(ins: Sequence[Any], outs: Sequence[Any]) -> list[Line]:
    """Both directions in the order they were written: by time, and at the same instant a
    reply after the message it answers, a message after the replies to the one before it."""
    keyed: list[tuple[tuple[datetime, float, int, int], Line]] = [
        ((row[2], row[0], 0, row[0]), Line("in", row[0], row[1], row[2])) for row in ins
    ]
    for row in outs:
        choices = row[3] if isinstance(row[3], list) else []
        answered = row[4] if row[4] is not None else math.inf  # a notice, an agent's words
        line = Line("out", row[0], row[1], row[2], tuple(str(c) for c in choices))
        keyed.append(((row[2], answered, 1, row[0]), line))
    keyed.sort(key=lambda pair: pair[0])
    return [line for _, line in keyed]
