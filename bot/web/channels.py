"""The contract between the core and a channel adapter (`adapters/`).

A channel is a `Channel`: a name, a sender the dispatcher calls, routes it mounts, a line for
the start-up log, and start/stop. At mount time the core hands it a `ChannelContext`, which is
everything an adapter may use of the core: the message service's three calls (`Messages`), its
own view of the store (`ChannelStore`: named calls, no SQL), the clock, this worker's id, the
service's public address, the shop's welcome and where config.toml is. An adapter never reaches
through the service into the pipeline, the store or the config (tests/test_layers.py enforces
it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from aiohttp import web

from bot.content.config import LocalText
from bot.domain.clock import Clock
from bot.domain.delivery import Sender
from bot.domain.messages import Inbound
from bot.store.channel_store import ChannelStore
from bot.web.service import NotHandled, Outcome, ServiceStopping

__all__ = ["Channel", "ChannelContext", "Messages", "NotHandled", "Outcome", "ServiceStopping"]

T = TypeVar("T")


class Messages(Protocol):
    """What a channel calls with the messages it receives (`bot.web.service.MessageService`)."""

    @property
    def accepting(self) -> bool:
        """False once the worker is draining: the channel answers 503 or stops pulling."""
        ...

    async def handle(self, inbound: Inbound, wait: float | None = None) -> Outcome:
        """Store and handle one message; raises `ServiceStopping` while draining and
        `NotHandled` when it could not be stored or decided now (the platform must resend)."""
        ...

    async def confirm_inline(self, outcome: Outcome) -> None:
        """The replies of an inline outcome were written to the platform's response."""
        ...

    async def release_inline(self, outcome: Outcome) -> None:
        """The replies of an inline outcome could not be written (the client went away): the
        dispatcher sends them, or a retry of the same message gets them."""
        ...


@dataclass(frozen=True)
class ChannelContext:
    """What the core hands a channel when it mounts it."""

    messages: Messages
    store: ChannelStore
    clock: Clock
    #: this worker's id (`host:pid:random`), for leases and logs
    worker: str
    #: the https:// address the platforms reach this service at (`service.public_url`)
    public_url: str
    #: the shop's welcome (`texts.welcome`), for a platform that asks for one on its own
    welcome: LocalText
    #: the bounded pool that runs the store's synchronous calls
    store_pool: Executor
    #: the config.toml the settings came from, for problems that name its file and line
    config_path: Path = Path("config.toml")

    async def in_store_pool(self, call: Callable[[], T]) -> T:
        """Run a synchronous store call (a `ChannelStore` method) off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.store_pool, call)


class Channel(Protocol):
    """A channel adapter as the service sees it; mypy checks every adapter against it
    (`adapters.channels_from_config` returns `list[Channel]`)."""

    @property
    def name(self) -> str:
        """The `channel` of its messages and of the replies it sends."""
        ...

    @property
    def sender(self) -> Sender:
        """What the dispatcher calls with each reply for this channel."""
        ...

    def mount(self, app: web.Application, context: ChannelContext) -> None:
        """Add the channel's routes (webhooks) to the application and keep the context."""
        ...

    def describe(self, public_url: str) -> str:
        """One line for the start-up log: what to register on the platform (the URL it must
        call, under `public_url`), or how the channel reaches it (Telegram's long polling)."""
        ...

    def trouble(self) -> str | None:
        """Why the channel is not taking customers' messages although it should (a poller
        stuck on failures), for /readyz; None when all is well."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
