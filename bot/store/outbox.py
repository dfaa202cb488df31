"""The outbox: every reply is written here in the same transaction as its decision, and sent
from here by the dispatcher (or returned inline by a channel that awaited it).

Claiming is safe with many workers: only the oldest unsent row of a conversation can be
claimed (so replies keep their order), PostgreSQL skips rows another worker has locked
(`FOR UPDATE SKIP LOCKED`), SQLite claims in a `BEGIN IMMEDIATE` transaction, and a claimed row
carries a lease: a worker that dies mid-send leaves it to be claimed again when the lease ends.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.domain.conversation import Conversation
from bot.domain.delivery import DeliveredVia, DeliveryState, UnsentOutbound, may_write
from bot.domain.privacy import mask
from bot.store.schema import conversations, messages, outbox


@dataclass(frozen=True)
class Outgoing:
    """One text for a customer, about to be written. A lease keeps the dispatcher away while a
    channel waits to return it inline."""

    conversation: Conversation
    reply_to: int | None
    text: str
    at: datetime
    choices: Collection[str] = ()
    lease_until: datetime | None = None
    leased_by: str | None = None
    handoff_queue: str | None = None
    #: an agent's words (None: the bot's)
    agent_id: int | None = None
    #: the transcript's copy when it differs from what is sent (an agent's words, masked)
    stored_text: str | None = None


def add_many(conn: Connection, outgoing: Sequence[Outgoing]) -> list[int]:
    """Outgoing texts: each a transcript line and an outbox row; returns the outbox ids, in
    order."""
    if not outgoing:
        return []
    conn.execute(
        messages.insert(),
        [
            dict(
                conversation_id=o.conversation.id,
                channel=o.conversation.channel,
                user_id=o.conversation.user_id,
                direction="out",
                kind="text",
                text=o.text if o.stored_text is None else o.stored_text,
                at=o.at,
                handled=True,
                agent_id=o.agent_id,
            )
            for o in outgoing
        ],
    )
    ids = conn.execute(
        outbox.insert().returning(outbox.c.id, sort_by_parameter_order=True),
        [
            dict(
                conversation_id=o.conversation.id,
                reply_to=o.reply_to,
                channel=o.conversation.channel,
                chat_id=o.conversation.chat_id,
                text=o.text,
                choices=list(o.choices) or None,
                status=DeliveryState.UNSENT,
                attempts=0,
                created_at=o.at,
                next_attempt_at=o.at,
                lease_until=o.lease_until,
                leased_by=o.leased_by,
                handoff_queue=o.handoff_queue,
            )
            for o in outgoing
        ],
    ).scalars()
    return [int(i) for i in ids]


def add(
    conn: Connection,
    conversation: Conversation,
    reply_to: int | None,
    text: str,
    now: datetime,
    choices: Collection[str] = (),
) -> int:
    """One outgoing text (see `add_many`); returns its outbox id."""
    return add_many(conn, [Outgoing(conversation, reply_to, text, now, choices)])[0]


def claim(
    conn: Connection,
    now: datetime,
    worker: str,
    lease: timedelta,
    channels: Collection[str],
    windows: Mapping[str, float] | None = None,
    limit: int = 50,
    quotas: Mapping[str, int] | None = None,
    busy: Collection[int] = (),
) -> list[UnsentOutbound]:
    """Claim due replies for this worker, in order: for up to `limit` conversations, the oldest
    unsent row and the unsent rows after it; not in the `busy` conversations (this worker is
    still sending to them). Rows whose channel's reply window (hours after the customer's last
    message) has passed are expired instead, and so are rows past the channel's quota of
    messages per customer message (WeChat: 5)."""
    earlier = outbox.alias("earlier")
    heads = (
        sa.select(outbox.c.id, outbox.c.conversation_id, outbox.c.channel)
        .where(
            outbox.c.status == DeliveryState.UNSENT,
            outbox.c.next_attempt_at <= now,
            sa.or_(outbox.c.lease_until.is_(None), outbox.c.lease_until <= now),
            outbox.c.channel.in_(list(channels)),
            ~sa.exists().where(
                earlier.c.conversation_id == outbox.c.conversation_id,
                earlier.c.status == DeliveryState.UNSENT,
                earlier.c.id < outbox.c.id,
            ),
        )
        .order_by(outbox.c.id)
        .limit(limit)
    )
    if busy:
        heads = heads.where(outbox.c.conversation_id.not_in(list(busy)))
    if conn.dialect.name == "postgresql":
        heads = heads.with_for_update(skip_locked=True, of=outbox)
    found = conn.execute(heads).all()
    if not found:
        return []
    conversation_ids = [row.conversation_id for row in found]
    expired = _expire_outside_windows(conn, conversation_ids, now, windows or {})
    live = [row.conversation_id for row in found if row.conversation_id not in expired]
    if not live:
        return []
    rows_query = (
        sa.select(outbox)
        .where(
            outbox.c.conversation_id.in_(live),
            outbox.c.status == DeliveryState.UNSENT,
            sa.or_(outbox.c.lease_until.is_(None), outbox.c.lease_until <= now),
        )
        .order_by(outbox.c.conversation_id, outbox.c.id)
    )
    if conn.dialect.name == "postgresql":
        rows_query = rows_query.with_for_update(skip_locked=True)
    rows = conn.execute(rows_query).mappings().all()
    if quotas:
        rows = _within_quotas(conn, rows, quotas)
    ids = [row["id"] for row in rows]
    conn.execute(
        outbox.update()
        .where(outbox.c.id.in_(ids))
        .values(lease_until=now + lease, leased_by=worker[:64])
    )
    answered = {row["reply_to"] for row in rows if row["reply_to"] is not None}
    external = (
        dict(
            conn.execute(
                sa.select(messages.c.id, messages.c.external_id).where(messages.c.id.in_(answered))
            ).all()
        )
        if answered
        else {}
    )
    return [
        _unsent(row, external.get(row["reply_to"])) for row in sorted(rows, key=lambda r: r["id"])
    ]


def _expire_outside_windows(
    conn: Connection, conversation_ids: list[int], now: datetime, windows: Mapping[str, float]
) -> set[int]:
    """Expire the unsent rows of conversations whose channel no longer lets the bot write."""
    if not windows:
        return set()
    rows = conn.execute(
        sa.select(conversations.c.id, conversations.c.channel, conversations.c.last_at).where(
            conversations.c.id.in_(conversation_ids)
        )
    ).all()
    closed = {row.id for row in rows if not may_write(windows, row.channel, row.last_at, now)}
    if closed:
        _expire(conn, outbox.c.conversation_id.in_(closed), "the channel's reply window had passed")
    return closed


def _within_quotas(conn: Connection, rows: Sequence[Any], quotas: Mapping[str, int]) -> list[Any]:
    """The rows each conversation's quota still allows: the channel lets the bot send only so
    many messages through its API after the customer's last message (replies returned inline,
    in the push's own response, are free). The rest expire: they would be refused anyway."""
    limited = {row["conversation_id"] for row in rows if row["channel"] in quotas}
    if not limited:
        return list(rows)
    used: dict[int, int] = dict(
        conn.execute(
            sa.select(outbox.c.conversation_id, sa.func.count())
            .select_from(outbox.join(conversations, conversations.c.id == outbox.c.conversation_id))
            .where(
                outbox.c.conversation_id.in_(limited),
                outbox.c.status == DeliveryState.SENT,
                outbox.c.via == DeliveredVia.API,
                outbox.c.sent_at >= conversations.c.last_at,
            )
            .group_by(outbox.c.conversation_id)
        ).all()
    )
    kept, over = [], []
    for row in rows:
        quota = quotas.get(row["channel"])
        if quota is None:
            kept.append(row)
            continue
        count = used.get(row["conversation_id"], 0)
        if count < quota:
            used[row["conversation_id"]] = count + 1
            kept.append(row)
        else:
            over.append(row["id"])
    if over:
        _expire(
            conn,
            outbox.c.id.in_(over),
            "the channel's message quota since the customer's last message is spent",
        )
    return kept


def _expire(conn: Connection, which: sa.ColumnElement[bool], reason: str) -> None:
    """These unsent rows will not be sent: the channel would refuse them."""
    done = conn.execute(
        outbox.update()
        .where(which, outbox.c.status == DeliveryState.UNSENT)
        .values(status=DeliveryState.EXPIRED, lease_until=None, last_error=reason)
        .returning(outbox.c.id, outbox.c.text)
    ).all()
    _scrub(conn, done)


def mark_sent(
    conn: Connection, ids: Collection[int], now: datetime, via: DeliveredVia = DeliveredVia.API
) -> int:
    """Sent; returns how many rows this call marked (0 when another path already sent them)."""
    if not ids:
        return 0
    done = conn.execute(
        outbox.update()
        .where(outbox.c.id.in_(list(ids)), outbox.c.status == DeliveryState.UNSENT)
        .values(
            status=DeliveryState.SENT,
            sent_at=now,
            via=via,
            attempts=outbox.c.attempts + 1,
            lease_until=None,
        )
        .returning(outbox.c.id, outbox.c.text)
    ).all()
    _scrub(conn, done)
    return len(done)


def _scrub(conn: Connection, rows: Sequence[Any]) -> None:
    """A row that will not be sent again keeps its words masked, as the transcript does: an
    agent's reply goes out as written (a courier's phone number is of use to the customer), but
    a card or ID number quoted back to a customer stays in the outbox no longer than needed."""
    for row_id, text in rows:
        masked = mask(text)
        if masked != text:
            conn.execute(outbox.update().where(outbox.c.id == row_id).values(text=masked))


def take_for_retry(
    conn: Connection,
    channel: str,
    external_id: str,
    now: datetime,
    until: datetime,
    worker: str,
) -> tuple[list[UnsentOutbound], bool]:
    """A client retried a delivery and waits for its replies inline: hold for it, until
    `until`, the unsent replies to that message that nobody holds (the dispatcher, or the
    first request still waiting for them), so that each is returned or sent once. Returns
    them, and whether more may still come (the message is not answered yet, or some of its
    replies are held elsewhere): the caller may look again before its wait ends."""
    original = conn.execute(
        sa.select(messages.c.id, messages.c.handled).where(
            messages.c.channel == channel, messages.c.external_id == external_id
        )
    ).first()
    if original is None:
        return [], False
    free = sa.or_(outbox.c.lease_until.is_(None), outbox.c.lease_until <= now)
    unsent_replies = sa.and_(
        outbox.c.reply_to == original.id, outbox.c.status == DeliveryState.UNSENT
    )
    held = conn.execute(
        sa.select(sa.func.count()).select_from(outbox).where(unsent_replies, ~free)
    ).scalar_one()
    taken = (
        conn.execute(
            outbox.update()
            .where(unsent_replies, free)
            .values(lease_until=until, leased_by=worker[:64])
            .returning(*outbox.c)
        )
        .mappings()
        .all()
    )
    rows = [_unsent(row, external_id) for row in sorted(taken, key=lambda r: r["id"])]
    return rows, not original.handled or held > 0


def retry_later(conn: Connection, outbox_id: int, at: datetime, error: str) -> None:
    conn.execute(
        outbox.update()
        .where(outbox.c.id == outbox_id)
        .values(
            attempts=outbox.c.attempts + 1,
            next_attempt_at=at,
            lease_until=None,
            last_error=error[:500],
        )
    )


def renew(conn: Connection, ids: Collection[int], worker: str, until: datetime) -> int:
    """Extend the lease of rows this worker still holds (claimed, not yet sent, released or
    taken over by another worker after a lapse); returns how many."""
    if not ids:
        return 0
    return conn.execute(
        outbox.update()
        .where(
            outbox.c.id.in_(list(ids)),
            outbox.c.leased_by == worker[:64],
            outbox.c.lease_until.is_not(None),
            outbox.c.status == DeliveryState.UNSENT,
        )
        .values(lease_until=until)
    ).rowcount


def taken(conn: Connection, ids: Collection[int], worker: str) -> set[int]:
    """Of these rows this worker claimed, the unsent ones another worker holds now: its lease
    lapsed (the machine stalled longer than a lease) and they were claimed again elsewhere."""
    if not ids:
        return set()
    return set(
        conn.execute(
            sa.select(outbox.c.id).where(
                outbox.c.id.in_(list(ids)),
                outbox.c.status == DeliveryState.UNSENT,
                outbox.c.leased_by.is_not(None),
                outbox.c.leased_by != worker[:64],
            )
        ).scalars()
    )


def release(conn: Connection, ids: Collection[int]) -> None:
    """Give claimed rows back untouched (they were behind a row that failed)."""
    if ids:
        conn.execute(
            outbox.update()
            .where(outbox.c.id.in_(list(ids)), outbox.c.status == DeliveryState.UNSENT)
            .values(lease_until=None)
        )


def release_worker(conn: Connection, worker: str) -> int:
    """A worker that stops gives back the rows it holds (claimed, or held for an inline
    answer), so others send them now rather than when the lease ends."""
    return conn.execute(
        outbox.update()
        .where(outbox.c.leased_by == worker[:64], outbox.c.status == DeliveryState.UNSENT)
        .values(lease_until=None, leased_by=None)
    ).rowcount


def give_up(conn: Connection, outbox_id: int, error: str) -> None:
    """Stop trying one row (too many passing failures)."""
    done = conn.execute(
        outbox.update()
        .where(outbox.c.id == outbox_id)
        .values(
            status=DeliveryState.FAILED,
            attempts=outbox.c.attempts + 1,
            lease_until=None,
            last_error=error[:500],
        )
        .returning(outbox.c.id, outbox.c.text)
    ).all()
    _scrub(conn, done)


def fail_conversation(conn: Connection, conversation_id: int, error: str) -> int:
    """The channel refused for good: every unsent row of the conversation fails with it."""
    done = conn.execute(
        outbox.update()
        .where(
            outbox.c.conversation_id == conversation_id,
            outbox.c.status == DeliveryState.UNSENT,
        )
        .values(status=DeliveryState.FAILED, lease_until=None, last_error=error[:500])
        .returning(outbox.c.id, outbox.c.text)
    ).all()
    _scrub(conn, done)
    return len(done)


def unsent(conn: Connection) -> list[UnsentOutbound]:
    """Replies written but not confirmed sent, oldest first."""
    query = sa.select(outbox).where(outbox.c.status == DeliveryState.UNSENT).order_by(outbox.c.id)
    return [_unsent(row) for row in conn.execute(query).mappings()]


def unsent_after(conn: Connection, conversation_id: int, outbox_id: int) -> int:
    """How many of the conversation's replies written after `outbox_id` are still unsent."""
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(outbox)
            .where(
                outbox.c.conversation_id == conversation_id,
                outbox.c.status == DeliveryState.UNSENT,
                outbox.c.id > outbox_id,
            )
        ).scalar_one()
    )


def _unsent(row: Any, external_reply_to: str | None = None) -> UnsentOutbound:
    return UnsentOutbound(
        row["id"],
        row["conversation_id"],
        row["channel"],
        row["chat_id"],
        row["text"],
        row["attempts"],
        tuple(row["choices"] or ()),
        row["reply_to"],
        external_reply_to,
        row["handoff_queue"],
    )
