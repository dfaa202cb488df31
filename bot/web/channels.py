"""What a channel adapter gives the service: a name, a sender for the dispatcher, routes to
mount, and optional start/stop (Telegram's long polling). Adapters live in `adapters/`; the
core only knows this shape."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from bot.domain.delivery import Sender
from bot.web.service import MessageService


class Channel(Protocol):
    name: str
    sender: Sender

    def mount(self, app: web.Application, service: MessageService) -> None:
        """Add the channel's routes (webhooks) to the application."""
        ...

    def describe(self, public_url: str) -> str:
        """One line for the start-up log: what to register on the platform (the URL it must
        call, under `public_url`), or how the channel reaches it (Telegram's long polling)."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
