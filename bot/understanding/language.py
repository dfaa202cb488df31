"""Which language to answer in: the one the customer wrote in."""

from __future__ import annotations

import re

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def detect(text: str, default: str = "zh") -> str:
    """`zh` when Chinese characters are present in earnest, `en` for Latin text, else `default`.

    A Chinese message with an English product name ("iPhone 充电器坏了") is Chinese; an English
    message with one Chinese word is English. Word counts decide: each Han character counts as a
    word, each Latin word as one.
    """
    han = len(_HAN.findall(text))
    latin_words = len(re.findall(r"[A-Za-z]+", text))
    if han == 0 and latin_words == 0:
        return default
    return "zh" if han >= latin_words else "en"
