"""Channel adapters: each speaks one platform's protocol and only Inbound/Outbound to the core."""

from __future__ import annotations

import os
from typing import Any

from bot.content.config import Config


def channels_from_config(config: Config) -> list[Any]:
    """The channels `config.toml` enables, ready to mount into `bot run`. Each reads its
    credentials from the environment (or config.toml) and raises ValueError naming what is
    missing; `bot check` reports the same beforehand."""
    channels: list[Any] = []
    settings = config.channels
    if settings.webhook.enabled:
        from adapters.webhook import WebhookChannel

        webhook = settings.webhook
        channels.append(WebhookChannel(webhook, os.environ.get(webhook.secret_env, "")))
    if settings.telegram.enabled:
        from adapters.telegram import TelegramChannel

        channels.append(TelegramChannel(settings.telegram))
    if settings.wechat.enabled:
        from adapters.wechat import WechatChannel

        channels.append(WechatChannel(settings.wechat))
    if settings.wecom.enabled:
        from adapters.wecom import WecomChannel

        channels.append(WecomChannel(settings.wecom))
    return channels
