"""`config.toml`: the service wiring, validated at start-up with errors that name key and line."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.content.problems import (
    Problem,
    ProblemsError,
    line_near_key,
    not_utf8,
    read_utf8,
    toml_error_line,
)
from bot.domain.messages import Priority

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


LocalText = dict[Literal["zh", "en"], str]


def pick(text: LocalText | dict[str, str], language: str) -> str:
    """The text in the customer's language, else Chinese, else whatever there is."""
    return text.get(language) or text.get("zh") or next(iter(text.values()), "")  # type: ignore[call-overload]


class StorageConfig(_Section):
    url: str = "sqlite:///var/bot.sqlite3"

    @field_validator("url")
    @classmethod
    def _usable(cls, url: str) -> str:
        """A URL SQLAlchemy knows, with its database driver installed."""
        import sqlalchemy as sa

        try:
            sa.engine.make_url(url).get_dialect().import_dbapi()
        except ImportError as exc:
            raise ValueError(
                f"the database driver is not installed ({exc.name}); for PostgreSQL run "
                "pip install -e '.[postgres]' and use postgresql+psycopg://…"
            ) from exc
        except Exception as exc:
            raise ValueError(
                f"not a usable database URL ({exc}); use sqlite:///var/bot.sqlite3 or "
                "postgresql+psycopg://user@host:5432/dbname"
            ) from exc
        return url


class ContentConfig(_Section):
    faq: str = "faq"
    intents: str = "intents"
    schedules: str = "schedules"
    #: the languages the shop answers in; `bot check` warns about texts missing one of them
    languages: list[Language] = Field(default_factory=lambda: list(LANGUAGES))

    @field_validator("languages")
    @classmethod
    def _some_once_each(cls, languages: list[Language]) -> list[Language]:
        if not languages:
            raise ValueError('name at least one language, e.g. ["zh"]')
        if len(set(languages)) != len(languages):
            raise ValueError("list each language once")
        return languages


class EncoderConfig(_Section):
    backend: Literal["use", "sentence-transformers", "use+sentence-transformers"] = "use"
    model: str = ""
    #: weight of the sentence-transformers part in "use+sentence-transformers"
    model_weight: float = Field(1.5, gt=0, le=10)
    threads: int = Field(1, ge=1, le=256)
    #: folder for the on-disk embedding cache of content texts; "" turns it off
    cache: str = "var/cache"

    @model_validator(mode="after")
    def _installed(self) -> EncoderConfig:
        import importlib.util

        if self.backend != "use":
            if importlib.util.find_spec("sentence_transformers") is None:
                raise ValueError(
                    f"encoder.backend {self.backend!r} needs sentence-transformers, which is not "
                    "installed: "
                    "pip install torch==2.13.0 -e '.[st]'"
                )
            if not self.model:
                raise ValueError("encoder.model must name a model folder or model package")
        return self


class FaqConfig(_Section):
    #: unset: calibrated from the FAQ's own variants at start-up and on every FAQ edit
    answer_threshold: float | None = Field(None, gt=0, le=1)
    suggest_threshold: float | None = Field(None, gt=0, le=1)
    #: unset: calibrated. How far an entry with fewer than four phrasings must lead the
    #: runner-up to be answered outright (closer: both are suggested)
    answer_margin: float | None = Field(None, ge=0, le=1)
    #: an entry with fewer than four phrasings, leading a neighbour by less than this, is
    #: answered only if its own answer text is as close to the question as the neighbour's
    #: (bot.understanding.faq.CLOSE; 0 turns the check off)
    neighbour_window: float = Field(0.15, ge=0, le=1)
    #: what calibration aims for: the share of FAQ answers that answer the right question
    target_precision: float = Field(0.95, ge=0.5, lt=1)
    suggestions: int = Field(3, ge=1, le=9)
    dense_weight: float = Field(0.6, ge=0, le=1)
    #: answers are searched too, in the languages an entry has no question in, their scores
    #: counted this many times (0: questions only)
    answer_weight: float = Field(0.85, ge=0, le=1)
    #: how much a thin entry's answer text counts beside its best phrasing in its score
    #: (bot.understanding.faq.ANSWER_MIX; 0 turns it off)
    answer_mix: float = Field(1.5, ge=0, le=10)
    #: how much the share of a question an entry's own words (phrasings and answer) account
    #: for counts in its score (bot.understanding.wording.COVERAGE; 0 turns it off)
    coverage: float = Field(0.1, ge=0, lt=1)
    #: past this many question variants, the exact search over every variant gives way to an
    #: approximate one (a faiss HNSW graph)
    approximate_above: int = Field(20_000, ge=1)
    #: don't answer from the FAQ what is much closer to the built-in examples of things no
    #: shop answers (weather, other companies' services, homework, chit-chat) and the
    #: out_of_scope intent's examples; the margin is calibrated on the FAQ itself
    background: bool = True
    #: don't answer from the FAQ outright a message that names another company, app or public
    #: office the shop's own content never mentions (腾讯视频会员, 身份证补办, Netflix): it asks
    #: about their version of the topic; the shipped list is in bot/understanding/data/
    third_parties: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> FaqConfig:
        if (
            self.suggest_threshold is not None
            and self.answer_threshold is not None
            and self.suggest_threshold > self.answer_threshold
        ):
            raise ValueError("suggest_threshold must not be above answer_threshold")
        return self


class IntentsConfig(_Section):
    threshold: float = Field(0.5, gt=0, lt=1)
    faq_intent: str = "faq"


class ActsConfig(_Section):
    """What customers do in every trade (bot.understanding.acts): how sure the built-in act
    model must be before its word counts."""

    enabled: bool = True
    #: an emergency this likely goes to the urgent line
    emergency: float = Field(0.7, gt=0, le=1)
    #: a person's work (a problem, complaint, emergency, request for a person or for an action
    #: only staff can take) this likely is handed off
    person: float = Field(0.6, gt=0, le=1)
    #: ... and this likely where the FAQ has an answer it is sure of: "the code never comes,
    #: I can't log in" reads as a problem, and the FAQ's entry on it is the help the customer
    #: needs first
    person_over_faq: float = Field(0.9, gt=0, le=1)
    #: nothing to do with any shop this likely is not answered from the FAQ outright
    unrelated: float = Field(0.9, gt=0, le=1)


class QueueConfig(_Section):
    schedule: str
    #: what agents see in the console, per language (missing: the queue's key)
    name: dict[Language, str] = {}
    first_response_seconds: int = Field(120, ge=10)
    transfer_minutes: int = Field(30, ge=1)


class HandoffConfig(_Section):
    default_queue: str = "general"
    fallbacks_before_handoff: int = Field(2, ge=1)
    reply_windows: dict[str, int] = {"wechat": 48, "wecom": 48}
    #: channels that let the bot send only so many messages after each customer message
    #: (WeChat's customer-service API and WeCom 微信客服: 5); replies past it are not sent
    reply_quotas: dict[str, int] = {"wechat": 5, "wecom": 5}
    #: a resolved ticket reopens (to its agent, or its queue) when the customer needs a human
    #: again within this many minutes, instead of starting over; 0 turns reopening off
    reopen_minutes: int = Field(1440, ge=0)
    #: VIP customers ("channel:user id", e.g. "telegram:42") go to `vip_queue` (when set) at
    #: `vip_priority` or higher whenever they are handed off
    vip_customers: list[str] = []
    vip_queue: str = ""
    vip_priority: Priority = Priority.HIGH


class CareConfig(_Section):
    """What a customer waiting for a human hears, and what happens when an SLA is missed."""

    #: one apology-and-update (texts.waiting_care) when no human has answered this many minutes
    #: after the ticket became available to agents; 0: never
    apology_minutes: float = Field(5, ge=0)
    #: a missed deadline (first response, or transfer within `transfer_minutes`) raises the
    #: ticket one priority step (normal → high → urgent) ...
    escalate_priority: bool = True
    #: ... and, when set, moves it to this queue (e.g. "supervisors")
    escalate_queue: str = ""


class SurveyConfig(_Section):
    """Satisfaction after service: CSAT 1–5 (and NPS 0–10 when `nps`), once per ticket, in the
    channel's own form (buttons on Telegram, "reply 1–5" elsewhere)."""

    csat: bool = True
    nps: bool = False


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ReportsConfig(_Section):
    """The service metrics and the weekly report (`bot report --week`, bot/metrics/)."""

    #: the human first response agents are held to leaves out the time their queue's schedule
    #: is closed (a ticket written at 23:00, answered at 09:05: 5 minutes, not 10 h 5 min)
    business_hours: bool = True
    #: when `bot run` writes last week's report: a weekday and a time in the default queue's
    #: time zone
    weekly_at: str = "mon 09:00"
    #: where reports are written (relative to this file)
    dir: str = "var/reports"

    @field_validator("weekly_at")
    @classmethod
    def _day_and_time(cls, value: str) -> str:
        match = re.fullmatch(r"\s*([a-z]{3})\s+(\d{1,2}):(\d{2})\s*", value.lower())
        if not match or match[1] not in _WEEKDAYS or int(match[2]) > 23 or int(match[3]) > 59:
            raise ValueError('write a weekday and a time, e.g. "mon 09:00"')
        return f"{match[1]} {int(match[2]):02d}:{match[3]}"

    @property
    def weekly_day(self) -> int:
        """0 = Monday."""
        return _WEEKDAYS.index(self.weekly_at[:3])

    @property
    def weekly_minutes(self) -> int:
        """Minutes after local midnight."""
        hours, minutes = self.weekly_at[4:].split(":")
        return int(hours) * 60 + int(minutes)


class ConversationConfig(_Section):
    idle_minutes: int = Field(30, ge=1)


class GuardConfig(_Section):
    flood_messages: int = Field(8, ge=2)
    flood_seconds: int = Field(30, ge=1)
    #: a longer message is read, stored and logged only up to here (bot.pipeline.intake.clean)
    max_message_chars: int = Field(2000, ge=100, le=20_000)
    urgent_keywords: list[str] = []
    urgent_intent: str = "urgent"
    urgent_exclusions: list[str] = []
    #: an angry or complaining message goes to a human under this intent even when it names a
    #: FAQ topic (bot.pipeline.complaint); missing: the first handoff intent of category complaint
    complaint_intent: str = "complaint"
    #: words that mark a complaint in this trade, added to the built-in ones (投诉, 垃圾, worst …)
    complaint_words: list[str] = []


class BodyLimits(_Section):
    """The largest request body each route of `bot run` reads, in KiB: a body over it is
    refused with 413 before it is read (Content-Length) or as soon as it passes the cap
    (chunked). A platform's push or update is a few KiB; the caps leave room, not a hole."""

    #: the generic JSON webhook (/channels/webhook/messages)
    webhook: int = Field(64, ge=1, le=4096)
    #: the web chat's messages (/webchat/…): a visitor's message and its id
    webchat: int = Field(16, ge=1, le=4096)
    #: Telegram's webhook (an update with a long message and its entities)
    telegram: int = Field(256, ge=1, le=4096)
    #: the WeChat Official Account's pushes
    wechat: int = Field(64, ge=1, le=4096)
    #: WeCom 微信客服 callbacks (an envelope that only says "pull")
    wecom: int = Field(16, ge=1, le=4096)
    #: the console's forms (an agent's reply, a transfer note)
    console: int = Field(64, ge=1, le=4096)
    #: the console's login form
    login: int = Field(8, ge=1, le=4096)
    #: every other route (none takes a body today)
    other: int = Field(16, ge=1, le=4096)

    def cap(self, route: str) -> int:
        """The cap in bytes for a route group (a channel's name, console, login, other)."""
        kib = getattr(self, route) if route in type(self).model_fields else self.other
        return int(kib) * 1024


class ServiceConfig(_Section):
    """`bot run`: where it listens and how much it does at once."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    #: threads for database calls (the event loop never waits on the database itself)
    threads: int = Field(8, ge=1, le=64)
    #: at most this many messages are read (encoded and scored) in one batch
    batch_max: int = Field(128, ge=1, le=1024)
    #: how long a message may wait for others to share its batch, in milliseconds (0: a lone
    #: message starts at once; under load batches fill by themselves while the encoder is busy)
    batch_wait_ms: float = Field(0, ge=0, le=50)
    #: on SIGTERM, how long messages in flight may take to finish
    drain_seconds: float = Field(10, ge=0, le=300)
    #: a reply being sent is held by its worker this long; if the worker dies mid-send, another
    #: sends it once the hold ends. Keep it above the slowest channel's send time.
    send_lease_seconds: float = Field(60, ge=5, le=3600)
    #: the https address the platforms reach this service at (e.g. https://bot.example.com),
    #: behind a reverse proxy that terminates TLS: `bot run` prints each channel's URL to
    #: register with it, and Telegram's webhook mode registers itself there
    public_url: str = ""
    #: the largest body each route reads (`[service.body_kib]`)
    body_kib: BodyLimits = BodyLimits()
    #: a request's body must have arrived this long after its headers, or the connection is
    #: cut (408): a client trickling a body holds no worker's attention for longer
    body_timeout_seconds: float = Field(10, ge=1, le=300)
    #: POSTs one client address may make per minute, counted across workers (0: no limit)
    per_ip_per_minute: int = Field(1200, ge=0)
    #: messages one customer of a channel may send per minute over HTTP, across workers (0: no
    #: limit); far above a person's pace: the flood guard (`[guard]`) answers people
    per_customer_per_minute: int = Field(60, ge=0)
    #: the reverse proxies whose X-Forwarded-For is believed (addresses or networks); a request
    #: from anywhere else is counted by its own address
    trusted_proxies: list[str] = ["127.0.0.1", "::1"]

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {entry!r} is not an address or network "
                    '(e.g. "127.0.0.1", "10.0.0.0/8")'
                ) from None
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("public_url must start with https:// (or http:// for a local test)")
        return value.rstrip("/")


#: an EncodingAESKey: 43 characters of base64 (WeChat and WeCom)
AES_KEY = r"[A-Za-z0-9+/]{43}"


class ChannelSection(_Section):
    """A channel's settings. Secrets are read from the environment variable each `*_env` key
    names, or else from the key itself (in a config.toml kept outside the repository)."""

    enabled: bool = False
    #: the route the platform calls on this service
    path: str = ""

    def credential(self, key: str) -> str:
        env = getattr(self, f"{key}_env")
        return os.environ.get(env, "") or str(getattr(self, key))

    def missing_secrets(self) -> list[tuple[str, str, str]]:
        """(key, environment variable, what it is) for each required secret that is unset."""
        return [
            (key, getattr(self, f"{key}_env"), what)
            for key, what in self._required_secrets()
            if not self.credential(key)
        ]

    def _required_secrets(self) -> list[tuple[str, str]]:
        return []

    def malformed_secrets(self) -> list[tuple[str, str, str]]:
        """(key, environment variable, what is wrong) for each secret set in a shape the
        platform never issues (a token pasted with a space, a key cut short)."""
        return [
            (key, getattr(self, f"{key}_env"), what)
            for key, pattern, what in self._secret_shapes()
            if (value := self.credential(key)) and not re.fullmatch(pattern, value)
        ]

    def _secret_shapes(self) -> list[tuple[str, str, str]]:
        return []


class TelegramChannelConfig(ChannelSection):
    """A Telegram bot (aiogram): long polling (no public address needed) or a webhook."""

    mode: Literal["polling", "webhook"] = "polling"
    token: str = ""
    token_env: str = "TELEGRAM_BOT_TOKEN"
    #: webhook mode: Telegram sends it in X-Telegram-Bot-Api-Secret-Token ([A-Za-z0-9_-], 1–256)
    webhook_secret: str = ""
    webhook_secret_env: str = "TELEGRAM_WEBHOOK_SECRET"
    path: str = "/channels/telegram/webhook"
    #: the Bot API server: Telegram's, a self-hosted one, or a test's loopback fake
    api_base: str = "https://api.telegram.org"
    #: how long one getUpdates call waits for news, in seconds
    polling_timeout: int = Field(10, ge=1, le=50)
    #: sending limits (Telegram: about 1 message/s per chat, 20/min per group, 30/s overall)
    per_chat_per_second: float = Field(1.0, gt=0)
    per_group_per_minute: float = Field(20, gt=0)
    overall_per_second: float = Field(25, gt=0)
    #: seconds one Bot API call (a send) may take before it is given up and retried later;
    #: getUpdates waits `polling_timeout` longer
    request_timeout: float = Field(10, gt=0, le=60)
    #: in groups and supergroups: "addressed" answers only what is addressed to the bot (a
    #: mention, a reply to it, one of its commands); "all" answers every message
    groups: Literal["addressed", "all"] = "addressed"

    def _secret_shapes(self) -> list[tuple[str, str, str]]:
        return [
            ("token", r"\d+:[A-Za-z0-9_-]+", "is not a bot token (digits, a colon, letters)"),
            (
                "webhook_secret",
                r"[A-Za-z0-9_-]{1,256}",
                "may hold only letters, digits, _ and - (at most 256)",
            ),
        ]

    def _required_secrets(self) -> list[tuple[str, str]]:
        needed = [("token", "the bot token from @BotFather")]
        if self.mode == "webhook":
            needed.append(("webhook_secret", "a random secret of letters, digits, _ and -"))
        return needed


class WechatChannelConfig(ChannelSection):
    """A WeChat Official Account (公众号) in developer mode (wechatpy)."""

    app_id: str = ""
    #: plain: unencrypted pushes; compatible: either; safe (安全模式, recommended): AES only
    mode: Literal["plain", "compatible", "safe"] = "safe"
    #: the server-configuration Token (令牌)
    token: str = ""
    token_env: str = "WECHAT_TOKEN"
    #: the 43-character EncodingAESKey (消息加解密密钥), for compatible and safe mode
    aes_key: str = ""
    aes_key_env: str = "WECHAT_AES_KEY"
    #: the AppSecret, for the customer-service message API (replies later than ~4 s)
    app_secret: str = ""
    app_secret_env: str = "WECHAT_APP_SECRET"
    path: str = "/channels/wechat"
    api_base: str = "https://api.weixin.qq.com"
    #: answer in the push's own response (a passive reply) when ready within this many seconds;
    #: WeChat gives up at 5 s and retries
    wait_seconds: float = Field(4.0, ge=0.5, le=4.5)
    #: pushes whose timestamp is further than this from now are refused (replays)
    replay_seconds: int = Field(300, ge=30)

    def _secret_shapes(self) -> list[tuple[str, str, str]]:
        return [("aes_key", AES_KEY, "is not an EncodingAESKey (43 letters and digits)")]

    def _required_secrets(self) -> list[tuple[str, str]]:
        needed = [
            ("token", "the server-configuration Token (令牌)"),
            ("app_secret", "the AppSecret (开发者密码)"),
        ]
        if self.mode != "plain":
            needed.append(("aes_key", "the EncodingAESKey (消息加解密密钥)"))
        return needed

    @model_validator(mode="after")
    def _named(self) -> WechatChannelConfig:
        if self.enabled and not self.app_id:
            raise ValueError("app_id (the AppID, 开发者ID) is needed when the channel is enabled")
        return self


class WecomChannelConfig(ChannelSection):
    """WeCom 微信客服 (WeChat Customer Service) through its API."""

    corp_id: str = ""
    token: str = ""
    token_env: str = "WECOM_TOKEN"
    aes_key: str = ""
    aes_key_env: str = "WECOM_AES_KEY"
    #: the 微信客服 secret (or an app's allowed to call 微信客服)
    secret: str = ""
    secret_env: str = "WECOM_KF_SECRET"
    path: str = "/channels/wecom"
    api_base: str = "https://qyapi.weixin.qq.com"
    #: a handoff moves the session to this servicer (state 3, "人工") when set, else to the
    #: queue of waiting customers (state 2, "待接入池")
    servicer_userid: str = ""
    replay_seconds: int = Field(300, ge=30)

    def _secret_shapes(self) -> list[tuple[str, str, str]]:
        return [("aes_key", AES_KEY, "is not an EncodingAESKey (43 letters and digits)")]

    def _required_secrets(self) -> list[tuple[str, str]]:
        return [
            ("token", "the callback Token"),
            ("aes_key", "the callback EncodingAESKey"),
            ("secret", "the 微信客服 Secret"),
        ]

    @model_validator(mode="after")
    def _named(self) -> WecomChannelConfig:
        if self.enabled and not self.corp_id:
            raise ValueError("corp_id (the 企业ID) is needed when the channel is enabled")
        return self


class CannedReply(_Section):
    """A reply agents insert with one click: a title and the text per language."""

    title: str
    text: LocalText


class ConsoleConfig(_Section):
    """The agents' console: how hard guessing a password is made, how long a session lasts,
    and canned replies."""

    canned: list[CannedReply] = []
    #: the session cookie's name (letters, digits, _ and -): two consoles on one host need two
    cookie: str = "bot_console"

    #: this many wrong passwords in a row lock the agent out …
    lockout_failures: int = Field(5, ge=1, le=100)
    #: … for this long (an admin's `bot agents passwd` lifts it at once)
    lockout_minutes: float = Field(15, gt=0, le=1440)
    #: a console session ends after this many hours without a request (log in again)
    session_hours: float = Field(12, gt=0, le=24 * 30)
    #: an agent is online while their console was heard from within this many minutes (an
    #: open console says so every 15 s; logging out ends it at once). A handoff to a queue none
    #: of whose agents is online tells the customer so (texts.handoff_unstaffed).
    #: 0 turns the check off: for teams whose people answer elsewhere (WeCom 微信客服's own app,
    #: a shared inbox), where the console never sees them
    online_minutes: float = Field(3, ge=0, le=1440)

    @field_validator("cookie")
    @classmethod
    def _cookie_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value):
            raise ValueError('a cookie name: letters, digits, _ and - (e.g. "bot_console")')
        return value


#: the logo files the console serves, and as what
LOGO_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}


class BrandConfig(_Section):
    """The shop as agents see it in the console: its name, logo and colour."""

    name: LocalText = {"zh": "客服工作台", "en": "Support console"}
    #: an image file (relative to this file) shown beside the name; "" for none
    logo: str = ""
    #: the console's main colour, as #rrggbb or #rgb (the header, buttons and links)
    colour: str = "#1d6f5f"

    @field_validator("name")
    @classmethod
    def _has_chinese(cls, value: LocalText) -> LocalText:
        if "zh" not in value:
            raise ValueError("needs at least a `zh` name")
        return value

    @field_validator("colour")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not re.fullmatch(r"#(?:[0-9a-fA-F]{3}){1,2}", value):
            raise ValueError('write the colour as #rrggbb, e.g. "#1d6f5f"')
        return value.lower()

    @field_validator("logo")
    @classmethod
    def _image(cls, value: str) -> str:
        if value and Path(value).suffix.lower() not in LOGO_TYPES:
            raise ValueError(f"the logo must be one of {', '.join(LOGO_TYPES)} files")
        return value


class WebhookChannelConfig(_Section):
    """A plain JSON-over-HTTP channel (a web chat widget, an app, a test harness): messages are
    POSTed to /channels/webhook/messages, replies POSTed to `deliver_url`."""

    enabled: bool = False
    #: the environment variable holding the shared secret (sent as `Authorization: Bearer …`)
    secret_env: str = "BOT_WEBHOOK_SECRET"
    deliver_url: str = ""
    #: a request that asks to wait gets its replies inline if ready within this many seconds
    wait_seconds: float = Field(4.0, ge=0, le=30)

    @model_validator(mode="after")
    def _delivers(self) -> WebhookChannelConfig:
        """Replies that are not returned inline (late ones, notices at opening time) need
        somewhere to go."""
        if self.enabled and not self.deliver_url.startswith(("http://", "https://")):
            raise ValueError(
                "deliver_url must be the http(s) address replies are POSTed to when the webhook "
                "channel is enabled"
            )
        return self


#: an origin a page is served from: scheme, host and port, nothing after
ORIGIN = r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?"


class WebchatChannelConfig(ChannelSection):
    """The web chat: a widget any page embeds with one script tag (a launcher button and a
    chat panel in an iframe served by `bot run`), live both ways over Server-Sent Events."""

    path: str = "/webchat"
    #: signs visitors' ids and checks the shop's `data-user-hash` (HMAC-SHA256 of the user id)
    secret: str = ""
    secret_env: str = "BOT_WEBCHAT_SECRET"
    #: the sites whose pages may embed the panel and call its API (CORS, CSP frame-ancestors),
    #: e.g. "https://shop.example.com"; "*" lets any site; none: only this service's own pages
    allowed_origins: list[str] = []
    title: LocalText = {"zh": "在线客服", "en": "Chat with us"}
    #: the launcher's and the header's colour
    colour: str = "#1f6feb"
    #: an https:// image shown in the header; "" for none
    avatar: str = ""
    #: shown first in an empty conversation; none: `texts.welcome`
    greeting: LocalText = {}
    #: the panel's languages; the browser's language picks one, else the first
    languages: list[Language] = ["zh", "en"]
    #: messages one visitor may send a minute, and POSTs one address may make (0: no limit)
    per_visitor_per_minute: int = Field(20, ge=0)
    per_ip_per_minute: int = Field(120, ge=0)
    #: the longest message a visitor may send, in characters (longer: 413)
    max_message_chars: int = Field(2000, ge=1, le=20000)
    #: live streams (open panels) one address may hold on one worker (an office behind one
    #: address has many visitors; 0: no limit)
    streams_per_ip: int = Field(500, ge=0)

    def _required_secrets(self) -> list[tuple[str, str]]:
        return [("secret", "the web chat's signing secret (32 or more random characters)")]

    def _secret_shapes(self) -> list[tuple[str, str, str]]:
        return [("secret", r"\S{32,}", "must be 32 or more characters without spaces")]

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not re.fullmatch(ORIGIN, origin):
                raise ValueError(
                    f"{origin!r} is not an origin: scheme and host (and port), nothing after, "
                    'e.g. "https://shop.example.com", or "*" for any site'
                )
        return value

    @field_validator("colour")
    @classmethod
    def _colour(cls, value: str) -> str:
        if not re.fullmatch(r"#[0-9A-Fa-f]{6}", value):
            raise ValueError('a colour as #rrggbb, e.g. "#1f6feb"')
        return value

    @field_validator("avatar")
    @classmethod
    def _avatar(cls, value: str) -> str:
        if value and not re.fullmatch(r"https://\S+", value):
            raise ValueError('an https:// address of an image, or "" for none')
        return value

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[Language]) -> list[Language]:
        if not value:
            raise ValueError('at least one language, e.g. ["zh", "en"]')
        return value


class ChannelsConfig(_Section):
    webhook: WebhookChannelConfig = WebhookChannelConfig()
    webchat: WebchatChannelConfig = WebchatChannelConfig()
    telegram: TelegramChannelConfig = TelegramChannelConfig()
    wechat: WechatChannelConfig = WechatChannelConfig()
    wecom: WecomChannelConfig = WecomChannelConfig()

    def enabled(self) -> list[tuple[str, _Section]]:
        """Every channel section switched on, in the order declared above: a new channel's
        section is checked by `bot check` as soon as it is declared here."""
        return [
            (name, section)
            for name in type(self).model_fields
            if getattr(section := getattr(self, name), "enabled", False)
        ]


class TextsConfig(_Section):
    #: the answer to what the bot did not understand; {person_choice} is the button offered
    #: with it (`fallback_in`)
    fallback: LocalText
    suggest_intro: LocalText
    suggest_outro: LocalText
    handoff: LocalText
    handoff_closed: LocalText
    flood: LocalText
    released: LocalText
    not_text: LocalText
    #: put before the reply to a message cut at guard.max_message_chars; a default, so that
    #: config files written before the key still load
    too_long: LocalText = {
        "zh": (
            "您的消息比较长，我先阅读了开头部分。如果没有解答到您的问题，请把问题简短地再发一次。"
        ),
        "en": (
            "Your message was long, so I read only the beginning. If I missed your question, "
            "please send it again in a sentence or two."
        ),
    }
    #: 首问语: the answer to a customer who just followed the account, pressed Start or opened
    #: the chat (an Inbound of kind "event" with the text "welcome"); a default, so that config
    #: files written before the key still load
    welcome: LocalText = {
        "zh": "您好，欢迎咨询！我是智能客服，请直接输入您的问题；需要人工服务请回复“人工”。",
        "en": (
            "Hello and welcome! I'm the service assistant: type your question, or reply "
            '"agent" to talk to a person.'
        ),
    }
    #: put before an answer given on thin evidence, so a wrong one is seen at once; {question}
    #: is the entry's question (a default, so that config files written before it still load)
    answer_about: LocalText = {"zh": "关于『{question}』：", "en": "On “{question}”: "}
    #: the one-tap way to a person offered with the fallback and the suggestions (a button where
    #: the channel has them); tapped or typed, it asks for a person
    person_choice: LocalText = {"zh": "转人工", "en": "Talk to a person"}
    #: the human side's words; defaults, so that config files written before them still load.
    #: Placeholders: {agent} the agent's name, {ahead} customers ahead, {minutes} expected wait.
    #: {ahead} may be 1 or 20: the English texts are worded so that one number reads right in
    #: both ("Customers ahead of you: 1"), not "There are 1 customers".
    agent_on_it: LocalText = {
        "zh": "您的问题已由客服{agent}跟进处理中，请稍候，我们会尽快回复您。",
        "en": "{agent} from our team is on your request and will reply shortly.",
    }
    queue_position: LocalText = {
        "zh": "您前面还有{ahead}位客户在等待，预计等待约{minutes}分钟。",
        "en": "Customers ahead of you: {ahead}; the expected wait is about {minutes} min.",
    }
    queue_next: LocalText = {
        "zh": "您是下一位，预计等待约{minutes}分钟。",
        "en": "You're next; the expected wait is about {minutes} min.",
    }
    queue_ahead: LocalText = {
        "zh": "您前面还有{ahead}位客户在等待，请稍候。",
        "en": "Customers ahead of you: {ahead}. Please hold on.",
    }
    #: a handoff while the queue is open but none of its agents is online (console.online_minutes):
    #: the ticket is made, and the customer hears so rather than "connecting you"
    handoff_unstaffed: LocalText = {
        "zh": (
            "您的问题已登记，但现在暂时没有客服在线。您可以直接在这里留言说明情况，"
            "客服一上线就会看到并回复您。"
        ),
        "en": (
            "Your request is recorded, but no one from our team is online right now. Leave a "
            "message here with the details: the first agent to come online will see it and "
            "reply."
        ),
    }
    #: sent once when no human has answered after care.apology_minutes
    waiting_care: LocalText = {
        "zh": "很抱歉让您久等了，您的问题已在人工客服队列中，我们会尽快为您处理，请不要离开。",
        "en": (
            "We're sorry to keep you waiting. Your request is in our team's queue and will be "
            "picked up as soon as possible."
        ),
    }
    #: sent at opening time for a ticket queued while closed when no agent of its queue is
    #: online yet (console.online_minutes): the customer is not told an agent is on it
    released_unstaffed: LocalText = {
        "zh": "您好，我们已开始服务，您的问题已在排队。客服上线后会尽快回复您，请稍候。",
        "en": (
            "Hello, we're open now and your request is in the queue. An agent will reply as "
            "soon as they're online."
        ),
    }
    #: the answer to a customer who says they need no person ("不用转人工了"): no ticket
    person_declined: LocalText = {
        "zh": "好的，不为您转人工。还有其他问题可以直接问我。",
        "en": "All right, no agent then. Ask me anything else here anytime.",
    }
    #: the answer to a waiting customer who complains about the wait (their ticket moves up)
    waiting_sorry: LocalText = {
        "zh": "非常抱歉让您久等了！已为您优先处理，客服会尽快回复您。",
        "en": "We're very sorry for the wait! We've moved your request up; an agent replies soon.",
    }
    #: 结束语, sent when an agent resolves the ticket, before the survey question
    closing: LocalText = {
        "zh": "感谢您的耐心等待与支持，本次服务已完成。如还有其他问题，欢迎随时咨询！",
        "en": "Thank you for your patience. If there's anything else, just write to us anytime!",
    }
    csat_question: LocalText = {
        "zh": "请为本次服务打分：回复 1–5（5 为非常满意）。",
        "en": "How did we do? Reply with a number from 1 to 5 (5 = very satisfied).",
    }
    nps_question: LocalText = {
        "zh": "您有多大可能向朋友推荐我们？请回复 0–10（10 为非常愿意）。",
        "en": "How likely are you to recommend us to a friend? Reply 0–10 (10 = very likely).",
    }
    survey_thanks: LocalText = {
        "zh": "感谢您的评价，祝您生活愉快！",
        "en": "Thank you for your feedback. Have a great day!",
    }
    forbidden_phrases: list[str] = []

    @field_validator("*")
    @classmethod
    def _has_chinese(cls, value: object) -> object:
        """Every text needs Chinese; English is used for English-speaking customers."""
        if isinstance(value, dict) and "zh" not in value:
            raise ValueError("needs at least a `zh` text")
        return value

    def fallback_in(self, language: str) -> str:
        """The fallback in the customer's language, `{person_choice}` filled with the words of
        the button offered with it, so the text never names another way to a person."""
        return pick(self.fallback, language).replace(
            "{person_choice}", pick(self.person_choice, language)
        )


class Config(_Section):
    storage: StorageConfig = StorageConfig()
    content: ContentConfig = ContentConfig()
    encoder: EncoderConfig = EncoderConfig()
    faq: FaqConfig = FaqConfig()
    intents: IntentsConfig = IntentsConfig()
    acts: ActsConfig = ActsConfig()
    queues: dict[str, QueueConfig]
    handoff: HandoffConfig = HandoffConfig()
    conversation: ConversationConfig = ConversationConfig()
    guard: GuardConfig = GuardConfig()
    service: ServiceConfig = ServiceConfig()
    console: ConsoleConfig = ConsoleConfig()
    brand: BrandConfig = BrandConfig()
    care: CareConfig = CareConfig()
    survey: SurveyConfig = SurveyConfig()
    reports: ReportsConfig = ReportsConfig()
    channels: ChannelsConfig = ChannelsConfig()
    texts: TextsConfig

    #: folder of the config file; relative paths in the config are relative to it
    base_dir: Path = Path(".")
    path: Path = Path("config.toml")

    @model_validator(mode="after")
    def _default_queue_exists(self) -> Config:
        if self.handoff.default_queue not in self.queues:
            raise ValueError(
                f"handoff.default_queue {self.handoff.default_queue!r} is not one of the queues "
                f"defined: {', '.join(sorted(self.queues))}"
            )
        return self

    @model_validator(mode="after")
    def _escalate_queue_exists(self) -> Config:
        """A breached ticket must land where agents look; a typo would hide it."""
        if self.care.escalate_queue and self.care.escalate_queue not in self.queues:
            queue = self.care.escalate_queue
            raise ValueError(
                f"care.escalate_queue {queue!r} is not one of the queues defined: "
                f"{', '.join(sorted(self.queues))}; add [queues.{queue}] or leave it empty "
                "(breached tickets then stay in their queue)"
            )
        return self

    @model_validator(mode="after")
    def _logo_exists(self) -> Config:
        """A logo that is not there would be a broken image on every console page."""
        if self.brand.logo and not self.resolve(self.brand.logo).is_file():
            raise ValueError(
                f"brand.logo: no file {str(self.resolve(self.brand.logo))!r}; give an image's "
                'path relative to config.toml, or "" for no logo'
            )
        return self

    @property
    def logo_path(self) -> Path | None:
        return self.resolve(self.brand.logo) if self.brand.logo else None

    def queue_name(self, queue: str, language: str) -> str:
        """A queue as agents read it: its configured name in the language, else its key."""
        section = self.queues.get(queue)
        return pick(section.name, language) if section and section.name else queue

    @property
    def front_schedule(self) -> str:
        """The schedule customers meet first (the default queue's): greetings, after-hours
        counts, "today" in reports."""
        return self.queues[self.handoff.default_queue].schedule

    def resolve(self, relative: str) -> Path:
        path = Path(relative)
        return path if path.is_absolute() else self.base_dir / path

    @property
    def storage_url(self) -> str:
        """The storage URL with a relative SQLite path made relative to the config folder."""
        url = self.storage.url
        prefix = "sqlite:///"
        if (
            url.startswith(prefix)
            and not url.startswith(prefix + "/")
            and url != prefix + ":memory:"
        ):
            return prefix + str(self.resolve(url[len(prefix) :]))
        return url

    @property
    def cache_dir(self) -> Path | None:
        """Where content embeddings and fitted models are cached; None when turned off."""
        return self.resolve(self.encoder.cache) if self.encoder.cache else None

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "var"


def find_config(explicit: str | None = None) -> Path:
    """`--config`, else $BOT_CONFIG, else ./config.toml."""
    return Path(explicit or os.environ.get("BOT_CONFIG") or "config.toml")


def load_config(path: Path) -> Config:
    """Read and validate config.toml; raises ProblemsError listing every mistake at once."""
    if not path.is_file():
        raise ProblemsError(
            [
                Problem(
                    path,
                    None,
                    "config file not found",
                    "run the command in your deployment's folder (the one `bot init DIR` made), "
                    "or name its config.toml before the command (`bot --config "
                    "DIR/config.toml COMMAND`) or with BOT_CONFIG=DIR/config.toml; no deployment "
                    "yet? `bot init DIR` makes one "
                    "from the sample shop",
                )
            ]
        )
    try:
        text = read_utf8(path)
    except UnicodeDecodeError as exc:
        raise ProblemsError([not_utf8(path, exc)]) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProblemsError(
            [
                Problem(
                    path,
                    toml_error_line(exc, text),
                    f"invalid TOML: {exc.msg if hasattr(exc, 'msg') else exc}",
                    "check quoting and brackets on this line",
                )
            ]
        ) from exc
    try:
        return Config.model_validate({**data, "base_dir": path.resolve().parent, "path": path})
    except ValidationError as exc:
        raise ProblemsError(_problems(path, exc)) from exc


def _problems(path: Path, exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            text, fix = (
                "unknown key (a typo?)",
                "remove it, or check its spelling against config.toml's comments",
            )
        elif error["type"] == "missing":
            text, fix = (
                "required key is missing",
                "add it; the shipped config.toml documents every key",
            )
        elif error["type"] == "value_error":
            text, fix = message, ""
        else:
            # pydantic says "Input should be …": as a fix, "it should be …"
            text = f"bad value {error.get('input')!r}"
            fix = (
                "it " + message.removeprefix("Input ") if message.startswith("Input ") else message
            )
        line = line_near_key(path, key) if key else 1
        problems.append(Problem(path, line, f"{key}: {text}" if key else text, fix))
    return problems
