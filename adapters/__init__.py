"""Channel adapters: each speaks one platform's protocol and only Inbound/Outbound to the core."""

from __future__ import annotations

import os
from typing import Any

from bot.content.config import Config


def channels_from_config(config: Config) -> list[Any]:
    """The channels `config.toml` enables, ready to mount into `bot run`."""
    channels: list[Any] = []
    if config.channels.webhook.enabled:
        from adapters.webhook import WebhookChannel

        webhook = config.channels.webhook
        channels.append(WebhookChannel(webhook, os.environ.get(webhook.secret_env, "")))
    return channels
