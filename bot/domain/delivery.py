"""Delivering replies: what a channel's sender promises, and the two ways it can fail besides
"try again later"."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from bot.domain.messages import Outbound


class DeliveryState(StrEnum):
    """An outbox row's state: unsent until the channel took it (sent), refused it for good
    (failed), or its reply window passed (expired)."""

    UNSENT = "unsent"  # written with the decision; the dispatcher or an awaiting channel sends it
    SENT = "sent"
    FAILED = "failed"  # the channel refused for good (see PermanentFailure)
    EXPIRED = "expired"  # the channel's reply window passed before it could be sent


class DeliveredVia(StrEnum):
    API = "api"  # sent by the dispatcher through the channel's API
    INLINE = "inline"  # returned in the webhook's own response (WeChat's passive reply)


def may_write(
    reply_windows: Mapping[str, float], channel: str, last_at: datetime, now: datetime
) -> bool:
    """Whether the channel still lets the bot write to a customer whose last message was at
    `last_at` (WeChat: 48 hours after it); channels without a window always do."""
    window = reply_windows.get(channel)
    return window is None or now - last_at <= timedelta(hours=window)


class PermanentFailure(Exception):
    """The channel will never take this message: the customer blocked the bot, the reply window
    or the message quota is spent. The dispatcher stops, marks the conversation unreachable and
    the console shows why."""


class RetryAfter(Exception):
    """The channel asks to wait (Telegram's 429 `retry_after`); the dispatcher honours it."""

    def __init__(self, seconds: float, reason: str = "") -> None:
        super().__init__(reason or f"retry after {seconds:g} s")
        self.seconds = seconds


class Sender(Protocol):
    """Sends one reply on its channel. Returns normally when the platform accepted it; raises
    PermanentFailure, RetryAfter, or anything else for a passing failure (retried with backoff)."""

    async def send(self, message: Outbound) -> None: ...


@dataclass(frozen=True)
class UnsentOutbound:
    id: int
    conversation_id: int
    channel: str
    chat_id: str
    text: str
    attempts: int = 0
    choices: tuple[str, ...] = ()
    reply_to: int | None = None
    #: the channel's own id of the message this answers
    external_reply_to: str | None = None
    #: this reply hands the customer to that human queue
    handoff_queue: str | None = None

    def outbound(self) -> Outbound:
        return Outbound(
            self.channel,
            self.chat_id,
            self.text,
            self.conversation_id,
            self.id,
            self.choices,
            self.reply_to,
            self.external_reply_to,
            self.handoff_queue,
        )
