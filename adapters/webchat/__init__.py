"""The web chat: a widget any page embeds with one script tag (`static/widget.js`), a chat
panel in an iframe served from here (`panel.py`), visitors' signed ids (`identity.py`), which
sites may embed it (`origins.py`), the live stream of replies over Server-Sent Events
(`stream.py`), replies marked delivered together (`deliveries.py`) and the channel that mounts it
all (`channel.py`)."""

from adapters.webchat.channel import WebchatChannel

__all__ = ["WebchatChannel"]
