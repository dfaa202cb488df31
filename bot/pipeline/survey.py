"""Reading a customer's answer to the satisfaction question: "5", "５", "5分", "4星", "★★★★",
"五星", "10" for NPS. Anything else is not an answer: the customer moved on, and the message is
handled as usual."""

from __future__ import annotations

import re
import unicodedata

_CHINESE = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
            "八": 8, "九": 9, "十": 10}  # fmt: skip
_NUMBER = re.compile(
    r"^(?P<n>\d{1,2}|[零一二两三四五六七八九十])\s*(?:分|星|颗星|stars?|points?|/\s*(?:5|10))?$",
    re.I,
)
_TRAILING = " \t.!。！~～,，"


def parse_score(text: str, low: int, high: int) -> int | None:
    """The score in `text` when it is nothing but a score within [low, high]."""
    cleaned = unicodedata.normalize("NFKC", text).strip().strip(_TRAILING)
    if cleaned and set(cleaned) <= {"★", "⭐", "☆"}:
        stars = cleaned.count("★") + cleaned.count("⭐")
        return stars if low <= stars <= high else None
    match = _NUMBER.match(cleaned)
    if match is None:
        return None
    raw = match.group("n")
    value = int(raw) if raw.isdigit() else _CHINESE[raw]
    return value if low <= value <= high else None
