"""The WeCom 微信客服 channel: encrypted callbacks (`channel.py`), messages pulled with
kf/sync_msg (`pull.py`), and WeCom's API client (`api.py`)."""

from adapters.wecom.channel import WecomChannel

__all__ = ["WecomChannel"]
