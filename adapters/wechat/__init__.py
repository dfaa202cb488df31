"""The WeChat Official Account channel: signed pushes in (`push.py`), the passive reply or the
customer-service message API out (`api.py`), wired together in `channel.py`."""

from adapters.wechat.channel import WechatChannel

__all__ = ["WechatChannel"]
