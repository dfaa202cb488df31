"""Channel adapters: each speaks one platform's protocol, and uses of the core only what the
channel contract hands it (`bot.web.channels`: `Channel`, `ChannelContext`) and the typed
messages (`bot.domain`). One package per channel — `telegram/`, `wechat/`, `wecom/`,
`webchat/` (the widget) — plus the JSON `webhook.py`, the `terminal.py` of `bot chat`, and
`common/` for what several share.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from bot.content.config import Config

if TYPE_CHECKING:  # `bot chat` imports adapters.terminal without the service's web stack
    from bot.web.channels import Channel


def channels_from_config(config: Config) -> list[Channel]:
    """The channels `config.toml` enables, ready to mount into `bot run`. Each reads its
    credentials from the environment (or config.toml) and raises ValueError naming what is
    missing; `bot check` reports the same beforehand."""
    channels: list[Channel] = []
    settings = config.channels
    if settings.webhook.enabled:
        from adapters.webhook import WebhookChannel

        webhook = settings.webhook
        channels.append(WebhookChannel(webhook, os.environ.get(webhook.secret_env, "")))
    if settings.webchat.enabled:
        from adapters.webchat import WebchatChannel

        channels.append(WebchatChannel(settings.webchat, settings.webchat.credential("secret")))
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
