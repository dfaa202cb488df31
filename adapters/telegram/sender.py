"""Sending replies to Telegram: one outbox row becomes one or more `sendMessage` calls.

Suggestions become inline buttons (`pick:<n>`, answered by adapters.telegram as if the
customer had typed the number); a reply quotes the message it answers when that message is in
the same chat; texts over Telegram's 4096 characters are split. Telegram's limits (about one
message a second per chat, twenty a minute per group, thirty a second overall) are kept by
token buckets that make a send wait rather than drop it, and Telegram's own refusals are
sorted the way the dispatcher understands: 429 → RetryAfter, blocked or gone → PermanentFailure,
anything else → retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramRetryAfter,
)
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters

from bot.domain.delivery import PermanentFailure, RetryAfter
from bot.domain.messages import Outbound

log = logging.getLogger("adapters.telegram")

#: Telegram's limit on one message's text, counted in UTF-16 code units
MAX_TEXT = 4096
#: button labels longer than this are cut (Telegram shows about this much on a phone)
MAX_BUTTON = 60
#: a 400 whose description says the chat is gone for good
_GONE = ("chat not found", "user not found", "peer_id_invalid", "bot was kicked")


class TokenBucket:
    """`capacity` sends at once, refilled at `rate` a second. `reserve` takes a token now and
    says how long to wait for it: callers queue in the order they asked, nobody is dropped."""

    def __init__(
        self, rate: float, capacity: float, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.capacity = max(capacity, 1.0)
        self._now = now
        self.tokens = self.capacity
        self.stamp = now()

    def reserve(self) -> float:
        now = self._now()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def idle(self) -> bool:
        """Full again: forgetting it changes nothing."""
        return self.tokens + (self._now() - self.stamp) * self.rate >= self.capacity


class Limits:
    """Telegram's sending limits: per chat, per group (chat ids below zero), overall."""

    #: per-chat buckets kept before idle ones are forgotten
    KEEP = 10_000

    def __init__(self, per_chat: float, per_group_per_minute: float, overall: float) -> None:
        self.per_chat = per_chat
        self.per_group = per_group_per_minute / 60
        self.overall = TokenBucket(overall, overall)
        self._chats: dict[str, TokenBucket] = {}
        self._groups: dict[str, TokenBucket] = {}

    async def wait(self, chat_id: str) -> None:
        """Until this chat may have its next message: first its own turn (and its group's),
        which delays only this chat's sends, then a place in the overall limit, taken only
        once the chat's turn has come so that the overall rate counts real sends."""
        own = [self._bucket(self._chats, chat_id, self.per_chat, 3)]
        if chat_id.startswith("-"):
            own.append(self._bucket(self._groups, chat_id, self.per_group, 3))
        delay = max(bucket.reserve() for bucket in own)
        if delay > 0:
            await asyncio.sleep(delay)
        delay = self.overall.reserve()
        if delay > 0:
            await asyncio.sleep(delay)

    def _bucket(
        self, buckets: dict[str, TokenBucket], key: str, rate: float, capacity: float
    ) -> TokenBucket:
        bucket = buckets.get(key)
        if bucket is None:
            if len(buckets) >= self.KEEP:
                for idle in [k for k, b in buckets.items() if b.idle()]:
                    del buckets[idle]
            bucket = buckets[key] = TokenBucket(rate, capacity)
        return bucket


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Parts of at most `limit` UTF-16 units, cut at a line break or a space when one is in
    the second half of the part, else anywhere."""
    parts: list[str] = []
    while utf16_len(text) > limit:
        cut = limit
        while utf16_len(text[:cut]) > limit:
            cut -= max(1, (utf16_len(text[:cut]) - limit) // 2)
        for separator in ("\n", " "):
            at = text.rfind(separator, 0, cut)
            if at > cut // 2:
                cut = at + 1
                break
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip("\n")
    parts.append(text)
    return [part for part in parts if part.strip()]


def keyboard(choices: tuple[str, ...]) -> InlineKeyboardMarkup | None:
    """One button per choice, in a column; its data is the number the text shows it with."""
    if not choices:
        return None
    rows = [
        [InlineKeyboardButton(text=_label(choice, n), callback_data=f"pick:{n}")]
        for n, choice in enumerate(choices, 1)
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _label(choice: str, n: int) -> str:
    label = " ".join(choice.split()) or str(n)
    return label if len(label) <= MAX_BUTTON else label[: MAX_BUTTON - 1].rstrip() + "…"


def reply_target(external_id: str | None, chat_id: str) -> int | None:
    """The Telegram message id to quote, when `external_id` is a message of this chat
    (`<chat>:<message>` or an edit of it); None for a button press or another chat."""
    if not external_id or external_id.startswith("cb:"):
        return None
    chat, _, rest = external_id.partition(":")
    message = rest.split(":", 1)[0]
    if chat != chat_id or not message.isdigit():
        return None
    return int(message)


class TelegramSender:
    """The dispatcher's sender for Telegram. `bot` is set by the channel's start()."""

    #: rows whose first parts went out before a passing failure (outbox id → parts sent), so a
    #: retry on this worker does not send them twice
    KEEP_PROGRESS = 10_000

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.bot: Bot | None = None
        self._progress: dict[int, int] = {}

    async def send(self, message: Outbound) -> None:
        bot = self.bot
        if bot is None:
            raise ConnectionError("the Telegram channel is not started")
        parts = split_text(message.text)
        if not parts:
            log.warning("outbox %s: empty text, nothing sent", message.outbox_id)
            return
        chat_id = message.chat_id
        quoted = reply_target(message.external_reply_to, chat_id)
        done = self._progress.get(message.outbox_id or -1, 0)
        for index in range(done, len(parts)):
            last = index == len(parts) - 1
            await self.limits.wait(chat_id)
            try:
                chat_id = await self._send_one(
                    bot,
                    chat_id,
                    parts[index],
                    quoted if index == 0 else None,
                    keyboard(message.choices) if last else None,
                )
            except PermanentFailure:
                self._progress.pop(message.outbox_id or -1, None)
                raise
            except BaseException:
                if message.outbox_id is not None and index > 0:
                    if len(self._progress) >= self.KEEP_PROGRESS:
                        self._progress.clear()
                    self._progress[message.outbox_id] = index
                raise
        self._progress.pop(message.outbox_id or -1, None)

    async def _send_one(
        self,
        bot: Bot,
        chat_id: str,
        text: str,
        quoted: int | None,
        markup: InlineKeyboardMarkup | None,
    ) -> str:
        """Send one part; returns the chat id it went to (a group upgraded to a supergroup
        moves, and Telegram says where)."""
        reply = (
            ReplyParameters(message_id=quoted, allow_sending_without_reply=True)
            if quoted is not None
            else None
        )
        try:
            await bot.send_message(
                chat_id=chat_id, text=text, reply_parameters=reply, reply_markup=markup
            )
            return chat_id
        except TelegramMigrateToChat as exc:
            moved = str(exc.migrate_to_chat_id)
            log.info("Telegram chat %s moved to %s", chat_id, moved)
            return await self._send_one(bot, moved, text, None, markup)
        except TelegramRetryAfter as exc:
            raise RetryAfter(float(exc.retry_after), f"Telegram: {exc.message}") from exc
        except TelegramForbiddenError as exc:
            raise PermanentFailure(f"Telegram: {exc.message}") from exc
        except TelegramBadRequest as exc:
            if any(sign in exc.message.lower() for sign in _GONE):
                raise PermanentFailure(f"Telegram: {exc.message}") from exc
            raise
