"""What customers write to say an answer did not help ("没用", "不对", "useless") or to ask for a
person ("转人工", "agent"): read live by the pipeline (`rules.did_not_help`) and afterwards by
`bot faq gaps` (bot/store/gap_reads.py), so both read the same words the same way."""

from __future__ import annotations

import re

#: what customers say when an answer did not help them (matched without case, spaces and
#: punctuation, in a short message: the phrase plus a few characters, "这个没用啊")
REACTIONS = (
    "没用",
    "没有用",
    "不对",
    "不是这个",
    "不是我要的",
    "不是我问的",
    "答非所问",
    "没解决",
    "没有解决",
    "还是不行",
    "都不是",
    "没帮助",
    "看不懂",
    "useless",
    "not helpful",
    "didn't help",
    "doesn't help",
    "not what i asked",
    "wrong answer",
    "none of these",
)
#: what customers say to ask for a person, matched like REACTIONS: after a right answer as
#: often as after a wrong one, so not a verdict on the answer
PERSON_REQUESTS = ("转人工", "人工", "真人", "客服", "agent", "human", "a person", "real person")
#: characters a reaction may carry besides its phrase (Chinese; twice that for English)
REACTION_SLACK = 4


def _squeezed(text: str) -> str:
    return re.sub(r"[\s\W_]+", "", text.casefold())


def _keys(phrases: tuple[str, ...]) -> tuple[tuple[str, bool], ...]:
    return tuple((_squeezed(p), p.isascii()) for p in phrases)


_REACTION_KEYS = _keys(REACTIONS)
_PERSON_KEYS = _keys(PERSON_REQUESTS)


def _short_saying(text: str, keys: tuple[tuple[str, bool], ...]) -> bool:
    said = _squeezed(text)
    return bool(said) and any(
        phrase in said and len(said) <= len(phrase) + REACTION_SLACK * (2 if ascii_ else 1)
        for phrase, ascii_ in keys
    )


def is_reaction(text: str) -> bool:
    """A short message saying the last answer did not help ("没用", "这个不对吧", "useless")."""
    return _short_saying(text, _REACTION_KEYS)


def names_a_person(text: str) -> bool:
    """The message names a person anywhere ("还是不行，转人工"): whatever else it says, it asks
    for one."""
    said = _squeezed(text)
    return any(phrase in said for phrase, _ in _PERSON_KEYS)


def asks_for_person(text: str) -> bool:
    """A short message asking for a person ("转人工", "人工客服", "agent please")."""
    return _short_saying(text, _PERSON_KEYS)
