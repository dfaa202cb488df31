"""Several workers on one database, on real SQLite and real PostgreSQL: the four races the old
core lost (two open conversations for one customer, a lost suggestion list or "not understood"
streak, two tickets for one conversation, every worker resending the same reply) and one
scheduler per cluster.

Each worker is a pipeline with its own engine, as a separate `bot run` process would have;
threads start their messages together at a barrier.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from adapters.telegram.sender import Limits
from bot.assembly import build_pipeline
from bot.content.config import Config
from bot.domain.clock import FixedClock, SystemClock
from bot.domain.messages import Action, Inbound, Outbound
from bot.jobs.dispatch import Dispatcher
from bot.jobs.leader import Leadership
from bot.pipeline.context import Context
from bot.pipeline.runner import Pipeline
from bot.store import outbox as outbox_rows
from bot.store.database import Store
from bot.store.schema import conversations, decisions, messages, outbox, tickets
from bot.understanding.encoders import MemoEncoder
from tests.support.harness import AsyncOutbox, Outbox
from tests.support.shop import at

T = TypeVar("T")
NOW = at("2026-11-24 10:00")
ROUNDS = 6


@pytest.fixture
def workers(config: Config, encoder: MemoEncoder, store: Store) -> Iterator[list[Pipeline]]:
    url = store.engine.url.render_as_string(hide_password=False)
    first = build_pipeline(config, FixedClock(NOW), None, store_url=url, encoder=encoder)
    second = Pipeline(config, Store(url), first.knowledge, FixedClock(NOW), None, "worker-2")
    yield [first, second]
    for pipeline in (first, second):
        pipeline.store.close()


def together(calls: list[Callable[[], T]]) -> list[T]:
    """Run the calls on separate threads, released at the same moment."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def _say(pipeline: Pipeline, user: str, text: str, external: str) -> Callable[[], Context]:
    return lambda: pipeline.handle(Inbound("wechat", external, user, user, text, NOW))


def _in_chat(pipeline: Pipeline, user: str, chat: str, text: str) -> Callable[[], Context]:
    inbound = Inbound("telegram", f"{chat}:{user}", user, chat, text, NOW)
    return lambda: pipeline.handle(inbound)


def _count(store: Store, query: sa.Select[Any]) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def test_one_open_conversation_per_customer(workers: list[Pipeline]) -> None:
    for n in range(ROUNDS):
        user = f"c{n}"
        together([_say(w, user, "运费多少", f"{user}-{i}") for i, w in enumerate(workers)])
        opened = _count(
            workers[0].store,
            sa.select(sa.func.count())
            .select_from(conversations)
            .where(conversations.c.user_id == user, conversations.c.state != "closed"),
        )
        assert opened == 1


def test_one_customer_in_two_chats_at_once_has_two_conversations(
    workers: list[Pipeline],
) -> None:
    """The same Telegram customer writes in a group and in private at the same moment, each
    message on another worker: one conversation per chat, each message answered once, in the
    chat it came from."""
    for n in range(ROUNDS):
        user, group = f"g{n}", f"-100{n}"
        done = together(
            [
                _in_chat(workers[0], user, group, "运费多少"),
                _in_chat(workers[1], user, user, "运费多少"),
            ]
        )
        assert [ctx.decision.action for ctx in done if ctx.decision] == [Action.ANSWER] * 2
        with workers[0].store.engine.connect() as conn:
            chats = conn.execute(
                sa.select(conversations.c.chat_id).where(
                    conversations.c.user_id == user, conversations.c.state != "closed"
                )
            ).scalars()
            assert sorted(chats) == sorted([group, user])
            replies = conn.execute(
                sa.select(outbox.c.chat_id, messages.c.external_id)
                .join(messages, messages.c.id == outbox.c.reply_to)
                .where(messages.c.user_id == user)
            ).all()
        # one answer per message, sent to the chat the message came from
        assert sorted(replies) == sorted([(group, f"{group}:{user}"), (user, f"{user}:{user}")])


def test_the_not_understood_streak_is_never_lost(workers: list[Pipeline]) -> None:
    """Two messages the bot does not understand, at once: the second must count as the second
    failure in a row and hand off (fallbacks_before_handoff = 2)."""
    for n in range(ROUNDS):
        user = f"s{n}"
        done = together(
            [
                _say(workers[0], user, "这个型号和那个有什么区别", f"{user}-a"),
                _say(workers[1], user, "颜色有几种", f"{user}-b"),
            ]
        )
        actions = sorted(ctx.decision.action for ctx in done if ctx.decision)
        assert actions == sorted([Action.FALLBACK, Action.HANDOFF]), actions


def test_one_ticket_per_conversation(workers: list[Pipeline]) -> None:
    for n in range(ROUNDS):
        user = f"t{n}"
        done = together([_say(w, user, "转人工", f"{user}-{i}") for i, w in enumerate(workers)])
        assert sorted(ctx.decision.action for ctx in done if ctx.decision) == [
            Action.HANDOFF,
            Action.SILENT,  # the second message finds a human owns the conversation
        ]
        assert (
            _count(
                workers[0].store,
                sa.select(sa.func.count())
                .select_from(tickets)
                .join(conversations, conversations.c.id == tickets.c.conversation_id)
                .where(conversations.c.user_id == user),
            )
            == 1
        )


def test_one_decision_for_a_delivery_retried_on_two_workers(workers: list[Pipeline]) -> None:
    for n in range(ROUNDS):
        user = f"d{n}"
        together([_say(w, user, "可以开发票吗", f"{user}-same") for w in workers])
    assert _count(workers[0].store, sa.select(sa.func.count()).select_from(decisions)) == ROUNDS


def test_each_reply_is_sent_once_by_several_dispatchers(workers: list[Pipeline]) -> None:
    failing = Outbox(fail=True)
    for pipeline in workers:
        pipeline.sender = failing  # every first send fails: all replies wait in the outbox
    for n in range(20):
        workers[n % 2].handle(Inbound("wechat", f"r{n}", f"r{n}", f"r{n}", "转人工", NOW))
    unsent = workers[0].store.unsent_outbound()
    assert len(unsent) >= 20
    channel = AsyncOutbox()

    async def both() -> None:
        with ThreadPoolExecutor(4) as pool:
            dispatchers = [
                Dispatcher(w.store, {"wechat": channel}, w.clock, w.worker, pool) for w in workers
            ]
            for pipeline in workers:  # first failure's backoff has passed
                pipeline.clock.advance(timedelta(seconds=5))  # type: ignore[attr-defined]
            while sum(await asyncio.gather(*(d.run_once() for d in dispatchers))):
                pass

    asyncio.run(both())
    ids = [m.outbox_id or 0 for m in channel.sent]
    assert sorted(ids) == sorted(p.id for p in unsent)  # each once
    for conversation in {p.conversation_id for p in unsent}:
        mine = [m.outbox_id or 0 for m in channel.sent if m.conversation_id == conversation]
        assert mine == sorted(mine)  # in order
    assert workers[0].store.unsent_outbound() == []


@dataclass
class ChatLimitedChannel:
    """A channel that keeps a per-chat limit the way Telegram's sender does (each worker its
    own buckets, as separate processes have), recording into one list for all workers."""

    sent: list[Outbound]
    limits: Limits

    async def send(self, message: Outbound) -> None:
        await self.limits.wait(message.chat_id)
        self.sent.append(message)


def test_per_chat_waits_longer_than_a_lease_send_each_reply_once(
    workers: list[Pipeline],
) -> None:
    """Two workers' dispatchers running side by side, with chats that must wait for their turn
    (2 a second: 7 s for a conversation's 15 replies) far longer than the 2 s lease: the waiting
    worker keeps its rows, the other never sends them too, and every conversation's replies go
    out in order."""
    failing = Outbox(fail=True)
    for pipeline in workers:
        pipeline.sender = failing  # every first send fails: all replies wait in the outbox
    for n in range(12):
        workers[n % 2].handle(Inbound("wechat", f"b{n}", f"b{n}", f"b{n}", "转人工", NOW))
    store = workers[0].store
    busy = {row.conversation_id for row in store.unsent_outbound()}
    for conversation_id in sorted(busy)[:4]:
        conversation = store.conversation(conversation_id)
        with store.transaction() as tx:
            for k in range(14):
                outbox_rows.add(tx, conversation, None, f"notice {k}", NOW)
    unsent = store.unsent_outbound()
    sent: list[Outbound] = []

    async def both() -> None:
        with ThreadPoolExecutor(4) as pool:
            dispatchers = [
                Dispatcher(
                    w.store,
                    {"wechat": ChatLimitedChannel(sent, Limits(2, 20, 1000))},
                    SystemClock(),
                    w.worker,
                    pool,
                    lease=timedelta(seconds=2),
                    poll_seconds=0.1,
                )
                for w in workers
            ]
            tasks = [asyncio.create_task(d.run()) for d in dispatchers]
            deadline = time.monotonic() + 60
            while store.unsent_outbound() and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            for dispatcher, task in zip(dispatchers, tasks, strict=True):
                await dispatcher.finish(task, 5)

    asyncio.run(both())
    ids = [m.outbox_id or 0 for m in sent]
    assert sorted(ids) == sorted(p.id for p in unsent)  # each once
    for conversation_id in {p.conversation_id for p in unsent}:
        mine = [m.outbox_id or 0 for m in sent if m.conversation_id == conversation_id]
        assert mine == sorted(mine)  # in order
    assert store.unsent_outbound() == []


def test_one_scheduler_leader_and_a_takeover(workers: list[Pipeline]) -> None:
    first, second = (Leadership(w.store, w.worker, w.clock) for w in workers)
    assert sorted([first.renew(), second.renew()]) == [False, True]
    leader, other = (first, second) if first.is_leader else (second, first)
    assert leader.renew() and not other.renew()
    leader.resign()  # the leader dies (its connection closes, or its lease ends)
    assert other.renew() and not leader.renew()
    other.resign()
