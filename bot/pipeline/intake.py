"""What a customer's text becomes before the bot reads, stores, logs or echoes it.

Customers paste from terminals, spreadsheets and other chats. Control characters and terminal
escape sequences in a message would be stored and logged raw and could repaint an operator's
terminal (colours, window title, cursor moves); bidi overrides and zero-width characters can make
text read differently from what it is. A very long message costs seconds to understand and fills
the store and the logs. `clean` is the one place all of that is decided: the pipeline calls it
where a message enters, and the terminal channel uses `printable` on everything it prints.

Pure functions, no configuration read here: the caller passes `guard.max_message_chars`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Cleaned:
    """The text to use from here on, and whether it had to be cut."""

    text: str
    truncated: bool
    #: characters (code points) in the message as received, before cleaning and cutting
    original_length: int


_ST = r"(?:\x07|\x1b\\|\x9c)"  # string terminator: BEL, ESC \ or the 8-bit ST
_ESCAPES = re.compile(
    "|".join(
        [
            # OSC, DCS, SOS, PM, APC strings (window titles, hyperlinks, ...) up to their terminator
            rf"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*{_ST}",
            # CSI: colours, cursor moves, erasing (ESC [ or the 8-bit CSI, then parameters)
            r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]",
            # the other escape sequences: ESC, intermediates, one final character (ESC ( B, ESC 7)
            r"\x1b[ -/]*[0-~]",
        ]
    )
)
_INVISIBLE = (
    "\u061c"  # Arabic letter mark
    "\u200b\u200e\u200f"  # zero-width space, left-to-right and right-to-left marks
    "\u202a-\u202e"  # bidi embeddings and overrides
    "\u2060-\u2064"  # word joiner and invisible operators
    "\u2066-\u2069"  # bidi isolates
    "\ufeff"  # zero-width no-break space (a byte-order mark mid-text)
)
# C0 and C1 controls but newline and tab, DEL, what disguises text, lone surrogates (which cannot be
# written as UTF-8, so the store and the log would fail on them)
_DROPPED = re.compile(rf"[\x00-\x08\x0b-\x1f\x7f-\x9f{_INVISIBLE}\ud800-\udfff]")
_NEWLINES = re.compile(r"\r\n?")

#: how many characters are cleaned per character kept, at most (escape sequences take room)
_ROOM = 8
_ZWJ = "\u200d"
_REGIONAL = range(0x1F1E6, 0x1F200)  # two of these make a flag


def printable(text: str) -> str:
    """The text without control characters, escape sequences or disguising invisible characters;
    newlines (\\r\\n and \\r become \\n) stay, a tab becomes a space. Length is not limited."""
    text = _NEWLINES.sub("\n", text)
    text = _ESCAPES.sub("", text)
    return _DROPPED.sub("", text.replace("\t", " "))


def clean(text: str, limit: int) -> Cleaned:
    """The message as the bot should read, store and log it: `printable`, trimmed of surrounding
    whitespace, and cut to at most `limit` characters (code points, so 2,000 Chinese characters
    are 2,000). A cut never separates an accent from its letter or splits an emoji sequence or a
    flag; it may then keep a little less than `limit`."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    # Far more than the limit can only be cut: clean no more of it than can be kept, so a
    # megabyte pasted by mistake costs what a long message costs.
    budget = limit * _ROOM + 4096
    kept = printable(text[:budget]).strip()
    if len(kept) <= limit and len(text) <= budget:
        return Cleaned(kept, False, len(text))
    return Cleaned(kept[: _boundary(kept, limit)].rstrip(), True, len(text))


def _boundary(text: str, cut: int) -> int:
    """`cut`, moved back to the start of the user-perceived character it falls in."""
    start = cut
    while cut > 0 and (_continues(text[cut]) or text[cut - 1] == _ZWJ):
        cut -= 1
    if cut > 0 and ord(text[cut]) in _REGIONAL and ord(text[cut - 1]) in _REGIONAL:
        run = cut
        while run > 0 and ord(text[run - 1]) in _REGIONAL:
            run -= 1
        cut -= (cut - run) % 2  # inside a pair: keep the whole flag out
    return cut if cut > 0 else start  # one enormous cluster: cut it rather than drop it all


def _continues(char: str) -> bool:
    """Whether `char` belongs to the character before it (a mark, a joiner, a modifier)."""
    code = ord(char)
    return (
        unicodedata.category(char) in ("Mn", "Mc", "Me")
        or char == _ZWJ
        or 0xFE00 <= code <= 0xFE0F  # variation selectors (text or emoji style)
        or 0x1F3FB <= code <= 0x1F3FF  # skin tones
        or 0xE0020 <= code <= 0xE007F  # tags (subdivision flags)
        or 0xE0100 <= code <= 0xE01EF
    )


#: the most of a message's details (as JSON) that is stored
MAX_DETAILS = 2000


def details(raw: Mapping[str, Any], masker: Callable[[str], str]) -> dict[str, Any] | None:
    """What the channel told about a message besides its words (`Inbound.raw`: an image's media
    id, an edit, a location's label), fit to store: plain values only, every text cleaned and
    masked like the message itself, at most MAX_DETAILS characters of JSON. None when empty."""
    kept: dict[str, Any] = {}
    size = 2
    for key, value in raw.items():
        if isinstance(value, bool | int | float) or value is None:
            plain: Any = value
        elif isinstance(value, str):
            plain = masker(clean(value, 500).text)
        else:
            continue  # nested structures are the platform's business, not the transcript's
        size += len(json.dumps({str(key): plain}, ensure_ascii=False))
        if size > MAX_DETAILS:
            break
        kept[str(key)[:64]] = plain
    return kept or None
