"""Spotting an angry or complaining customer, whatever topic they name.

"退款拖了两周了 你们到底管不管" names a FAQ topic (refunds), and the intent classifier, trained
on a few complaint examples against a FAQ's many refund phrasings, reads it as a refund
question. A cold FAQ paragraph is the worst answer to it. These are the signals the classifier
lacks: words people use only when they complain or are angry (one is enough), and signs of
exasperation — waiting long, asking again and again, 到底, !!! — of which two together count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: one of these is enough: a complaint said outright, an insult, anger
STRONG = (
    "投诉", "差评", "举报", "维权", "曝光", "垃圾", "骗子", "骗人", "骗钱", "坑人", "坑爹",
    "忽悠", "黑心", "恶心", "太过分", "过分了", "气死", "无语", "摆设", "敷衍", "什么玩意",
    "什么破", "耍我", "欺负人", "不要脸",
    "complain", "complaint", "worst", "terrible", "awful", "horrible", "furious", "angry",
    "unacceptable", "ridiculous", "disgusting", "useless", "scam", "rip-off", "ripoff", "fed up",
    "pathetic", "outrageous", "fraudulent",
)  # fmt: skip

#: two different ones together: waiting long, asking again, exasperation
_WEAK = [
    re.compile(p, re.I)
    for p in (
        r"[两三四五六七八九十几多n]\s*[次遍回]",
        r"一直|总是|老是|迟迟|仍然|拖了|拖着|还没|还是没|都没|还不",
        r"半个?月|[一二两三四五六七八九十几多\d]+\s*个?\s*(?:周|星期|礼拜|月)",
        # "到底" alone only stresses a question (有效期到底多久); aimed at the shop it is anger
        r"你们到底|到底(?:管不管|什么意思|怎么回事|要不要|还要)|凭什么|管不管|有没有人|什么意思",
        r"[!！]{2,}|[?？]{2,}",
        r"\b(?:again|still|never|nobody|no one|keeps?)\b",
        r"\b(?:\d+|two|three|four|five|several|many)\s+(?:times|requests|emails|weeks|months)\b",
    )
]


def complaint_signal(text: str, extra_words: Iterable[str] = ()) -> list[str]:
    """What in `text` says the customer complains or is angry: the strong words found, or
    the weak cues when there are two or more kinds; empty when neither."""
    lowered = text.lower()
    strong = [w for w in (*STRONG, *extra_words) if _has(lowered, w.lower())]
    if strong:
        return strong
    weak = [m.group(0) for pattern in _WEAK if (m := pattern.search(text))]
    return weak if len(weak) >= 2 else []


def _has(text: str, word: str) -> bool:
    if word.isascii():
        return re.search(rf"\b{re.escape(word)}", text) is not None
    return word in text
