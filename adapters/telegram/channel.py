"""The Telegram channel (aiogram): long polling or a webhook, the same handlers for both.

In:  polling — one worker of the cluster polls (adapters/telegram/polling.py), confirming an
     update only once it is stored; webhook — POST `path` from Telegram, the secret in
     `X-Telegram-Bot-Api-Secret-Token`: 401 without it; 200 once the message is stored and
     decided; 500 when storing failed (Telegram sends it again); 503 while this worker shuts
     down. A body that is not JSON gets 400 (Telegram never sends one); JSON that is not an
     Update aiogram can read is logged, its body kept masked (adapters/telegram/unreadable.py),
     and answered 200, because Telegram would re-send the same thing for hours and hold back
     the chat's later updates meanwhile.
     Messages are keyed by identity, not by update id (update ids restart): `<chat>:<message>`,
     an edit `<chat>:<message>:e<edit date>` (a new message to answer), a button press
     `cb:<callback id>`.
     In a group or supergroup (`groups = "addressed"`, the default) only what is addressed to
     the bot is taken: an @mention of it (the mention is cut from the text), a reply to one of
     its messages, /start or /human, or any /command@thisbot; everything else, /start@other_bot
     and commands of other bots included, is ignored (not stored, not answered). Who the bot
     is comes from getMe, asked at start and kept. `groups = "all"` takes every message.
     /start → the welcome event; /human → a request for a person; a photo, voice note,
     sticker or file → its kind, with its caption as the text (the core reads media that came
     with words as text: bot.domain.messages.words_first);
     a suggestion button → the number picked, as if typed.
Out: adapters/telegram/sender.py (buttons for suggestions, quoting, splitting, rate limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError, TelegramRetryAfter
from aiogram.types import CallbackQuery, Message, MessageEntity, Update
from aiohttp import web
from pydantic import ValidationError

from adapters.telegram.polling import Polling
from adapters.telegram.sender import Limits, TelegramSender
from adapters.telegram.unreadable import keep
from bot.content.config import TelegramChannelConfig
from bot.content.problems import Problem, ProblemsError, line_of_key
from bot.domain.messages import Inbound, Kind
from bot.web.channels import ChannelContext, ServiceStopping

log = logging.getLogger("adapters.telegram")

NAME = "telegram"
MAX_ID = 128
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
#: what a customer can send besides text; anything else (members joining, pins …) is ignored
_KINDS = {
    "photo": Kind.IMAGE,
    "voice": Kind.VOICE,
    "audio": Kind.VOICE,
    "video_note": Kind.VOICE,
    "sticker": Kind.OTHER,
    "document": Kind.OTHER,
    "video": Kind.OTHER,
    "animation": Kind.OTHER,
    "location": Kind.OTHER,
    "contact": Kind.OTHER,
    "venue": Kind.OTHER,
    "poll": Kind.OTHER,
    "dice": Kind.OTHER,
    "live_photo": Kind.IMAGE,
    "story": Kind.OTHER,
    "paid_media": Kind.OTHER,
    "checklist": Kind.OTHER,
    "game": Kind.OTHER,
}
HUMAN = {"zh": "转人工", "en": "I want a human agent"}
#: the commands this bot answers; in a group a bare /command of another bot is not for it
COMMANDS = frozenset({"start", "human"})
GROUP_CHATS = frozenset({"group", "supergroup"})


@dataclass(frozen=True)
class Audience:
    """Who the bot is in a group (from getMe), and whether it answers everything there."""

    bot_id: int
    username: str
    everything: bool = False


class TelegramChannel:
    name = NAME
    #: the platform re-sends whatever is not answered 2xx
    platform_retries = True

    def __init__(
        self,
        config: TelegramChannelConfig,
        *,
        standby_seconds: float = 5.0,
        retry_seconds: float = 1.0,
        stall_seconds: float = 60.0,
    ) -> None:
        """`standby_seconds`: how often a worker without the polling lease looks whether it
        lapsed; `retry_seconds`: the first wait after a failed round (doubling, up to 30 s);
        `stall_seconds`: how long polling may fail without moving before /readyz says so."""
        self.config = config
        self._token = config.credential("token")
        if not self._token:
            raise ValueError(
                f"channels.telegram is enabled but ${config.token_env} is empty: "
                "export it with the token @BotFather gave you"
            )
        self._secret = config.credential("webhook_secret")
        if config.mode == "webhook" and not self._secret:
            raise ValueError(
                f"channels.telegram.mode is webhook but ${config.webhook_secret_env} is empty: "
                "set it to a random secret of letters, digits, _ and -"
            )
        self.sender = TelegramSender(
            Limits(
                config.per_chat_per_second,
                config.per_group_per_minute,
                config.overall_per_second,
            )
        )
        self.standby_seconds = standby_seconds
        self.retry_seconds = retry_seconds
        self.stall_seconds = stall_seconds
        self.bot: Bot | None = None
        self.polling: Polling | None = None
        self.webhook_url: str | None = None
        self._registering: asyncio.Task[None] | None = None
        self._learning: asyncio.Task[None] | None = None
        self._context: ChannelContext | None = None
        self.dispatcher = Dispatcher()
        self.dispatcher.include_router(self._router())

    # --- the channel's shape (bot.web.channels.Channel) -------------------------------------

    def mount(self, app: web.Application, context: ChannelContext) -> None:
        self._context = context
        if self.config.mode == "webhook":
            app.router.add_post(self.config.path, self.receive)

    def describe(self, public_url: str) -> str:
        if self.config.mode == "polling":
            return "long polling (no URL to register)"
        url = self.webhook_url or public_url + self.config.path
        return f"webhook {url} (registered with Telegram at start-up)"

    def trouble(self) -> str | None:
        """Polling stuck on failures on this worker (webhook mode: Telegram calls in)."""
        return None if self.polling is None else self.polling.trouble()

    async def start(self) -> None:
        # a bounded wait for every call: a hung request fails and is retried later instead of
        # holding its conversation for aiogram's default minute
        session = AiohttpSession(
            api=TelegramAPIServer.from_base(self.config.api_base),
            timeout=self.config.request_timeout,
        )
        self.bot = Bot(self._token, session=session)
        self.sender.bot = self.bot
        context = self._require_context()
        self._learning = asyncio.create_task(self._learn_who_we_are())
        try:
            if self.config.mode == "webhook":
                await self._register_webhook(context.public_url)
            else:
                self.polling = Polling(
                    self.bot,
                    self.feed,
                    context,
                    ALLOWED_UPDATES,
                    self.config.polling_timeout,
                    lease_seconds=max(30.0, 3.0 * self.config.polling_timeout),
                    standby_seconds=self.standby_seconds,
                    retry_seconds=self.retry_seconds,
                    stall_seconds=self.stall_seconds,
                )
                self.polling.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self._learning is not None:
            self._learning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._learning
            self._learning = None
        if self._registering is not None:
            self._registering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._registering
            self._registering = None
        if self.polling is not None:
            await self.polling.stop()
            self.polling = None
        if self.bot is not None:
            self.sender.bot = None
            await self.bot.session.close()
            self.bot = None

    # --- in ---------------------------------------------------------------------------------

    async def feed(self, update: Update) -> object:
        """One update through the handlers; returns once its message is stored and decided,
        raises when it could not be (the caller must not confirm it)."""
        assert self.bot is not None, "the channel was not started"
        return await self.dispatcher.feed_update(self.bot, update)

    async def receive(self, request: web.Request) -> web.Response:
        """Telegram's webhook call."""
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self._secret.encode()):
            return web.json_response({"error": "bad or missing secret"}, status=401)
        if self.bot is None:
            return web.json_response({"error": "starting, try again"}, status=503)
        try:
            data = await request.json()
        except (ValueError, UnicodeDecodeError) as exc:
            log.warning("Telegram webhook: body is not JSON, dropped: %s", exc)
            return web.json_response({"error": "the body must be JSON"}, status=400)
        try:
            update = Update.model_validate(data, context={"bot": self.bot})
        except ValidationError as exc:
            # the body may hold a customer's words and name: only its shape is logged
            shape = sorted(data)[:10] if isinstance(data, dict) else type(data).__name__
            log.warning(
                "Telegram webhook: not an Update, dropped (answered 200 so Telegram stops "
                "re-sending it): %d problem(s), first at %s; keys %s",
                exc.error_count(),
                exc.errors(include_url=False, include_input=False)[0].get("loc"),
                shape,
            )
            await self._keep_unreadable(data)
            return web.json_response({})
        user = _sender_of(update)
        limits = self._require_context().limits
        if user is not None and await limits.customer_over(NAME, user) is not None:
            return web.json_response({})  # dropped: Telegram re-sends anything but a 2xx
        try:
            await self.feed(update)
        except ServiceStopping:
            return web.json_response({"error": "shutting down, try another worker"}, status=503)
        except Exception:
            log.exception(
                "Telegram update %s not stored; Telegram will send it again", update.update_id
            )
            return web.json_response({"error": "not stored, send it again"}, status=500)
        return web.json_response({})

    async def _keep_unreadable(self, data: object) -> None:
        """An update aiogram cannot read, kept masked as polling keeps one it skips; a body
        without an update id is not an update at all and only logged."""
        update_id = data.get("update_id") if isinstance(data, dict) else None
        if not isinstance(data, dict) or not isinstance(update_id, int):
            return
        try:
            key = await keep(self._require_context(), update_id, data)
        except Exception:
            log.exception("Telegram update %s could not be kept", update_id)
            return
        log.warning("Telegram update %s kept (masked) in channel_state telegram/%s", update_id, key)

    def _router(self) -> Router:
        router = Router(name=NAME)
        router.message.register(self._on_message)
        router.edited_message.register(self._on_edited)
        router.callback_query.register(self._on_callback)
        return router

    async def _on_message(self, message: Message) -> None:
        inbound = message_inbound(message, audience=await self._audience(message))
        if inbound is not None:
            await self._handle(inbound)

    async def _on_edited(self, message: Message) -> None:
        inbound = message_inbound(message, edited=True, audience=await self._audience(message))
        if inbound is not None:
            await self._handle(inbound)

    async def _audience(self, message: Message) -> Audience | None:
        """Who the bot is, for a group's message (None in a private chat). aiogram keeps
        getMe's answer; when it could not be had at start it is asked now, and a failure
        raises, so the update is not confirmed and comes again."""
        if message.chat.type not in GROUP_CHATS:
            return None
        assert self.bot is not None
        me = await self.bot.me()
        return Audience(me.id, me.username or "", self.config.groups == "all")

    async def _learn_who_we_are(self) -> None:
        """getMe at start (aiogram keeps the answer); Telegram being unreachable then is
        no reason to stop: the first group message asks again."""
        assert self.bot is not None
        try:
            me = await self.bot.me()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("Telegram getMe failed at start (%s); asked again when needed", exc)
            return
        log.info("Telegram bot @%s (%s)", me.username, me.id)

    async def _on_callback(self, query: CallbackQuery) -> None:
        # answered first, so the button stops spinning whatever happens next; a re-delivered
        # query is too old to answer, which changes nothing
        try:
            await query.answer()
        except TelegramAPIError as exc:
            log.info("Telegram: callback %s not answered: %s", query.id, exc)
        inbound = callback_inbound(query)
        if inbound is not None:
            await self._handle(inbound)

    async def _handle(self, inbound: Inbound) -> None:
        await self._require_context().messages.handle(inbound)

    # --- webhook registration ---------------------------------------------------------------

    async def _register_webhook(self, public_url: str) -> None:
        """Check there is an address to register, then register it in the background: every
        worker registers the same URL (idempotent). Telegram being unreachable at start-up
        must not keep the other channels down, so failures are retried, not fatal."""
        assert self.bot is not None
        if not public_url:
            path = self._require_context().config_path
            raise ProblemsError(
                [
                    Problem(
                        path,
                        line_of_key(path, "channels.telegram.mode"),
                        "channels.telegram.mode is webhook but service.public_url is empty",
                        "set service.public_url to the https:// address your reverse proxy "
                        'forwards to this service, or use mode = "polling"',
                    )
                ]
            )
        url = public_url + self.config.path
        self._registering = asyncio.create_task(self._keep_registering(url))

    async def _keep_registering(self, url: str) -> None:
        assert self.bot is not None
        failures = 0
        while True:
            try:
                await self.bot.set_webhook(
                    url, secret_token=self._secret, allowed_updates=ALLOWED_UPDATES
                )
            except TelegramRetryAfter as exc:  # a burst of workers starting together
                await asyncio.sleep(float(exc.retry_after))
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                wait = min(self.retry_seconds * 2**failures, 60.0)
                log.error(
                    "Telegram webhook not registered yet (%s: %s); trying again in %.0f s",
                    type(exc).__name__,
                    exc,
                    wait,
                )
                await asyncio.sleep(wait)
                continue
            self.webhook_url = url
            log.info("Telegram webhook registered: %s", url)
            return

    def _require_context(self) -> ChannelContext:
        if self._context is None:
            raise RuntimeError("the Telegram channel was not mounted into the application")
        return self._context


# --- Telegram objects → Inbound -------------------------------------------------------------


def language_of(code: str | None) -> str:
    return "en" if (code or "").lower().startswith("en") else "zh"


def message_inbound(
    message: Message, edited: bool = False, audience: Audience | None = None
) -> Inbound | None:
    """The customer's message as the core sees it; None for what no customer wrote (service
    messages, other bots) and, in a group, for what is not addressed to the bot (`audience`:
    who the bot is there; None reads every message)."""
    sender = message.from_user
    if sender is None or sender.is_bot:
        return None
    words: str | None = None
    if audience is not None:
        words = addressed_words(message, audience)
        if words is None:
            return None
    chat_id = str(message.chat.id)
    language = language_of(sender.language_code)
    external = f"{chat_id}:{message.message_id}"
    at = message.date
    raw: dict[str, Any] = {"language": language}
    if edited:
        edit_date = message.edit_date or 0
        external += f":e{edit_date}"
        raw["edited"] = True
    text = message.text if words is None or message.text is None else words
    kind = Kind.TEXT
    if text is not None:
        command = _command(text)
        if command == "start":
            payload = text.partition(" ")[2].strip()
            if payload:  # a deep link's parameter (t.me/<bot>?start=<payload>)
                raw["start"] = payload[:64]
            kind, text = Kind.EVENT, "welcome"
        elif command == "human":
            text = HUMAN[language]
    else:
        content = str(getattr(message.content_type, "value", message.content_type))
        if content not in _KINDS:
            return None
        kind = _KINDS[content]
        text = (message.caption or "") if words is None else words
        raw["content_type"] = content
        file_id = _file_id(message)
        if file_id:
            raw["file_id"] = file_id
    return Inbound(NAME, external[:MAX_ID], str(sender.id), chat_id, text, at, kind, raw)


def callback_inbound(query: CallbackQuery) -> Inbound | None:
    """A suggestion button: the number it stands for, as if the customer had typed it."""
    data = query.data or ""
    number = data.removeprefix("pick:")
    if not data.startswith("pick:") or not number.isdigit():
        return None
    chat_id = str(query.message.chat.id) if query.message else str(query.from_user.id)
    language = language_of(query.from_user.language_code)
    return Inbound(
        NAME,
        f"cb:{query.id}"[:MAX_ID],
        str(query.from_user.id),
        chat_id,
        number,
        datetime.now(UTC),
        Kind.TEXT,
        {"language": language, "button": data},
    )


def addressed_words(message: Message, audience: Audience) -> str | None:
    """A group message's words with the bot's mention cut out, or None when it is not for
    the bot: neither a mention of it, nor a reply to it, nor one of its commands. A command
    of another bot (/start@other_bot) is never for it, even with `groups = "all"`."""
    text = message.text if message.text is not None else (message.caption or "")
    entities = list(message.entities or message.caption_entities or [])
    name = audience.username.lower()
    command = _command(text)
    if command is not None:
        target = text[1:].split(maxsplit=1)[0].partition("@")[2].lower()
        if target and target != name:
            return None  # another bot's command
        if target or command in COMMANDS:
            return text
    mentions = [e for e in entities if _names_us(e, text, audience)]
    replied = message.reply_to_message
    author = replied.from_user if replied is not None else None
    to_us = author is not None and author.id == audience.bot_id
    if not (mentions or to_us or audience.everything):
        return None  # chatter among the members, or a bare /command of another bot
    return _cut(text, mentions)


def _names_us(entity: MessageEntity, text: str, audience: Audience) -> bool:
    if entity.type == "text_mention":
        return entity.user is not None and entity.user.id == audience.bot_id
    if entity.type == "mention" and audience.username:
        return entity.extract_from(text).lower() == f"@{audience.username.lower()}"
    return False


def _cut(text: str, entities: list[MessageEntity]) -> str:
    """The text without the entities' spans (offsets count UTF-16 units, as Telegram's)."""
    data = text.encode("utf-16-le")
    for entity in sorted(entities, key=lambda e: e.offset, reverse=True):
        data = data[: entity.offset * 2] + data[(entity.offset + entity.length) * 2 :]
    return re.sub(r"[ \t]{2,}", " ", data.decode("utf-16-le")).strip()


def _command(text: str) -> str | None:
    """`/start`, `/start@ShopBot payload` → "start"."""
    if not text.startswith("/"):
        return None
    return text[1:].split(maxsplit=1)[0].split("@", 1)[0].lower() if len(text) > 1 else None


def _file_id(message: Message) -> str | None:
    if message.photo:
        return message.photo[-1].file_id  # the largest size
    for media in (
        message.voice,
        message.audio,
        message.video_note,
        message.sticker,
        message.document,
        message.video,
        message.animation,
        message.live_photo,
    ):
        if media is not None:
            return str(media.file_id)
    return None


def _sender_of(update: Update) -> str | None:
    """Who sent an update (a message, an edit, a button press), for the rate limit; None for
    updates that name nobody."""
    try:
        event = update.event
    except Exception:  # an update type this aiogram does not know
        return None
    user = getattr(event, "from_user", None)
    user_id = getattr(user, "id", None)
    return str(user_id) if isinstance(user_id, int) else None
