"""Spotting what must never wait: urgent words (紧急, 着火, fraud …), but not the products and
settings that merely contain one (报警器, 紧急联系人)."""

from __future__ import annotations

import re


def urgent_signal(text: str, keywords: list[str], exclusions: list[str]) -> str | None:
    """The first urgent keyword in `text`, ignoring phrases that merely contain one; English
    keywords match whole words only."""
    lowered = text.lower()
    for phrase in exclusions:
        lowered = lowered.replace(phrase.lower(), " ")
    for keyword in keywords:
        word = keyword.lower()
        if word.isascii():
            if re.search(rf"\b{re.escape(word)}\b", lowered):
                return keyword
        elif word in lowered:
            return keyword
    return None
