"""Cutting a long reply into the parts a platform takes: WeChat's customer-service messages and
WeCom's send_msg both cap a text at 2048 bytes of UTF-8. (Telegram counts UTF-16 units and
cuts at spaces too: adapters/telegram/sender.py.)"""

from __future__ import annotations

#: where a cut is best made, most preferred first; a break kept with the part before it
BREAKS = ("\n\n", "\n")


def split_utf8(text: str, limit: int = 2048) -> list[str]:
    """Parts of at most `limit` UTF-8 bytes, cut after a paragraph or line break when one is in
    the second half of the part, else between characters (never inside one). Nothing is lost:
    the parts joined are the text."""
    parts: list[str] = []
    rest = text
    while len(rest.encode()) > limit:
        cut = _fit(rest, limit)
        for mark in BREAKS:
            at = rest.rfind(mark, 0, cut)
            if at >= cut // 2:
                cut = at + len(mark)
                break
        parts.append(rest[:cut])
        rest = rest[cut:]
    if rest or not parts:
        parts.append(rest)
    return parts


def _fit(text: str, limit: int) -> int:
    """How many characters of `text` fit in `limit` UTF-8 bytes (at least one)."""
    size = 0
    for index, char in enumerate(text):
        size += len(char.encode())
        if size > limit:
            return max(index, 1)
    return len(text)
