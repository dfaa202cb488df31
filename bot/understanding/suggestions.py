"""The "did you mean…?" turn: numbered FAQ suggestions and the customer's pick ("2", "第二个")."""

from __future__ import annotations

import re

from bot.content.entries import FaqEntry
from bot.understanding.language import detect

_ZH_NUMBERS = {
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_EN_NUMBERS = {"one": 1, "first": 1, "two": 2, "second": 2, "three": 3, "third": 3}
_NUMBER = r"([1-9]|[一二三四五六七八九])"
# "2", "2.", "#2", "选2", "2号", "第二个", "第2条", "选第二个吧", "the second one", "option 2";
# not "两个" or "要两个", which say how many, not which.
_PICK = re.compile(
    r"^\s*(?:选|选择|是|就是|我选)?\s*(?:第\s*"
    + _NUMBER
    + r"\s*(?:个|条|项)?|"
    + _NUMBER
    + r"\s*(?:号|条)?)"
    r"\s*(?:吧|问题)?\s*[.。!！)）]*\s*$"
)
_PICK_EN = re.compile(
    r"^\s*(?:(?:option|number|no\.?|#)\s*)?(?:the\s+)?(one|two|three|first|second|third|[1-9])"
    r"(?:\s+one)?\s*[.!)]*\s*$",
    re.I,
)


def parse_pick(text: str, count: int) -> int | None:
    """The 0-based index the customer picked among `count` suggestions, or None."""
    match = _PICK.match(text)
    if match:
        token = match.group(1) or match.group(2)
    else:
        english = _PICK_EN.match(text)
        if not english:
            return None
        token = english.group(1).lower()
    number = int(token) if token.isdigit() else _ZH_NUMBERS.get(token) or _EN_NUMBERS.get(token)
    if number is None or not 1 <= number <= count:
        return None
    return number - 1


def question_in(entry: FaqEntry, language: str) -> str:
    """The entry's first question variant written in `language`, to show as a suggestion."""
    return next((q for q in entry.questions if detect(q) == language), entry.questions[0])


def format_suggestions(entries: list[FaqEntry], language: str, intro: str, outro: str) -> str:
    lines = [
        intro,
        *(f"{i}. {question_in(e, language)}" for i, e in enumerate(entries, start=1)),
        outro,
    ]
    return "\n".join(line for line in lines if line)
