"""The pipeline on the fixture shop with a fixed clock and a channel that records what it is
asked to send, and one dispatcher round for the replies left in the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

from bot.assembly import build_pipeline
from bot.content.config import Config
from bot.domain.clock import FixedClock
from bot.domain.messages import Inbound, Outbound
from bot.jobs.dispatch import Dispatcher
from bot.pipeline.context import Context
from bot.pipeline.knowledge import Knowledge
from bot.pipeline.runner import Pipeline
from bot.understanding.encoders import MemoEncoder
from tests.support.shop import at


@dataclass
class Outbox:
    """A channel that records what it is asked to send; `fail` makes the next sends raise."""

    sent: list[Outbound] = field(default_factory=list)
    fail: bool = False

    def send(self, message: Outbound) -> None:
        if self.fail:
            raise ConnectionError("channel unreachable")
        self.sent.append(message)


@dataclass
class AsyncOutbox:
    """An async channel sender for the dispatcher: records sends; `failures` are raised, one per
    send, before it starts succeeding."""

    sent: list[Outbound] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)

    async def send(self, message: Outbound) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)


@dataclass
class Harness:
    pipeline: Pipeline
    clock: FixedClock
    outbox: Outbox
    _ids: Iterator[int] = field(default_factory=lambda: count(1))

    def say(
        self,
        text: str,
        *,
        user: str = "u1",
        when: str | None = None,
        external_id: str | None = None,
        channel: str = "wechat",
        chat: str | None = None,
    ) -> Context:
        """The customer `user` writes `text` in `chat` (their own private chat by default)."""
        if when:
            self.clock.set(at(when))
        self.outbox.sent.clear()
        return self.pipeline.handle(
            Inbound(
                channel=channel,
                external_id=external_id or f"m{next(self._ids)}",
                user_id=user,
                chat_id=user if chat is None else chat,
                text=text,
                at=self.clock.now(),
            )
        )

    @property
    def replies(self) -> list[str]:
        return [m.text for m in self.outbox.sent]


def make_harness(
    config: Config, encoder: MemoEncoder, tmp_path: Path, knowledge: Knowledge | None = None
) -> Harness:
    """A harness on a new SQLite store in `tmp_path`; the content is learnt from `config` unless
    `knowledge` learnt from the same content is given."""
    clock = FixedClock(at("2026-11-24 10:00"))
    outbox = Outbox()
    pipeline = build_pipeline(
        config,
        clock,
        outbox,
        store_url=f"sqlite:///{tmp_path}/bot.sqlite3",
        encoder=encoder,
        knowledge=knowledge,
    )
    return Harness(pipeline, clock, outbox)


def dispatch_once(pipeline: Pipeline, sender: object, channels: tuple[str, ...] = ()) -> int:
    """One dispatcher round on this pipeline's store, for these channels (default: all seen)."""
    names = channels or ("wechat", "telegram", "terminal", "webhook", "eval")

    async def once() -> int:
        with ThreadPoolExecutor(2) as pool:
            dispatcher = Dispatcher(
                pipeline.store,
                {name: sender for name in names},  # type: ignore[misc]
                pipeline.clock,
                "test-worker",
                pool,
                pipeline.config.handoff.reply_windows,
                pipeline.config.handoff.reply_quotas,
            )
            return await dispatcher.run_once()

    return asyncio.run(once())
