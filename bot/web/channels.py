"""The contract between the core and a channel adapter (`adapters/`).

A channel is a `Channel`: a name, a sender the dispatcher calls, routes it mounts, a line for
the start-up log, and start/stop. At mount time the core hands it a `ChannelContext`, which is
everything an adapter may use of the core: the message service's three calls (`Messages`), its
own view of the store (`ChannelStore`: named calls, no SQL), the clock, this worker's id, the
service's public address, the shop's welcome, where config.toml is, and the HTTP limits
against abuse (`Limits`: a customer's rate across workers, the count of what was dropped). An
adapter never reaches through the service into the pipeline, the store or the config
(tests/test_layers.py enforces it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeVar

from aiohttp import web

from bot.content.config import LocalText
from bot.domain.clock import Clock
from bot.domain.delivery import Sender
from bot.domain.messages import Inbound
from bot.store.channel_store import ChannelStore
from bot.web.service import NotHandled, Outcome, ServiceStopping

__all__ = [
    "Channel",
    "ChannelContext",
    "Limits",
    "Messages",
    "NotHandled",
    "OnDuty",
    "Outcome",
    "ServiceStopping",
]

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


class Limits(Protocol):
    """The HTTP limits against abuse as a channel sees them (`bot.web.rates.RateLimiter`).
    The door of `bot run` (bot/web/limits.py) already capped the body, timed it and counted the
    client's address; a channel adds the customer once it has read who sent the request."""

    async def customer_over(self, channel: str, user: str) -> float | None:
        """Count one request of `user`; the seconds until they may send again when that is over
        `service.per_customer_per_minute` (counted across workers; logged and counted as
        refused), else None."""
        ...

    async def channel_over(
        self, channel: str, key: str, per_minute: int, reason: str
    ) -> float | None:
        """Count one request under the channel's own limit for `key` (a visitor, an address),
        across workers; the seconds to wait when over `per_minute`, else None."""
        ...

    def client_address(self, request: web.Request) -> str:
        """The client's address, through `service.trusted_proxies` only."""
        ...

    def refused(self, route: str, reason: str) -> None:
        """Count a request the channel dropped at its door (e.g. a replayed push)."""
        ...


class NoLimits:
    """No limits: for a channel mounted without the service's door (a unit test)."""

    async def customer_over(self, channel: str, user: str) -> float | None:
        return None

    async def channel_over(
        self, channel: str, key: str, per_minute: int, reason: str
    ) -> float | None:
        return None

    def client_address(self, request: web.Request) -> str:
        return request.remote or ""

    def refused(self, route: str, reason: str) -> None:
        return None


@dataclass(frozen=True)
class OnDuty:
    """Whether the people of the default queue are at work now and, if not, when they are
    back: for a channel that shows it before the customer writes (the web chat's header)."""

    open: bool
    #: the next opening (None while open, or when the schedule never opens)
    back_at: datetime | None = None
    #: `back_at` as customers read it in the language asked for ("10月8日（周四）9:00")
    back_text: str = ""


def always_on_duty(language: str) -> OnDuty:
    return OnDuty(True)


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
    #: the customer's rate limit, and the count of requests dropped
    limits: Limits = field(default_factory=NoLimits)
    #: who is on duty now, in a language ("zh", "en"), from the default queue's schedule
    on_duty: Callable[[str], OnDuty] = always_on_duty

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
    def platform_retries(self) -> bool:
        """True when the platform sends a request again whenever it is not answered 2xx
        (WeChat, WeCom, Telegram): a refusal over a limit is then acknowledged with an empty
        200 and dropped, since a 429 would only bring the request back."""
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
