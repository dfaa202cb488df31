"""The Telegram channel: aiogram, long polling (`polling.py`) or a webhook (`channel.py`), and
the sender with its rate limits (`sender.py`)."""

from adapters.telegram.channel import TelegramChannel, callback_inbound, message_inbound

__all__ = ["TelegramChannel", "callback_inbound", "message_inbound"]
