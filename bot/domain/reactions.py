"""What customers write to say an answer did not help ("没用", "不对", "useless"), to ask for a
person ("转人工", "agent") or to decline one ("不用转人工了"): read live by the pipeline
(`rules.did_not_help`, `steps.apply_reading`) and afterwards by `bot faq gaps`
(bot/store/gap_reads.py), so both read the same words the same way."""

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
    for one, unless it declines one ("不用转人工了")."""
    said = _squeezed(text)
    return any(phrase in said for phrase, _ in _PERSON_KEYS) and not declines_person(text)


def asks_for_person(text: str) -> bool:
    """A short message asking for a person ("转人工", "人工客服", "agent please"), not one
    declining a person ("不用转人工了")."""
    return _short_saying(text, _PERSON_KEYS) and not declines_person(text)


#: words that say a person is not wanted or needed, read just before a person word ("不用转人工",
#: "不需要客服了", "别转人工", "no need for an agent", "don't transfer me")
_DECLINE_BEFORE = re.compile(
    r"(?:不用|不需要|不必|无需|别|不要|用不着|没必要|不想)"
    r"|\b(?:no need|not necessary|no longer need|(?:don['’]?t|do not|doesn['’]?t|does not)"
    r"(?: really)?(?: need| want)?|never mind)\b",
    re.IGNORECASE,
)
#: ... and just after one ("人工就不用了", "an agent is not needed")
_DECLINE_AFTER = re.compile(
    r"^(?:就|也|暂时|先)?(?:不用了|不需要了|不必了|不用|不需要)"
    r"|^\s*(?:is |are )?(?:not needed|not necessary|no longer needed|unnecessary)\b",
    re.IGNORECASE,
)
#: naming a person or being passed to one: a Chinese span ("转人工客服") or an English word
_PERSON = re.compile(
    r"(?:转接|转|找|接|叫)?(?:人工|真人|客服|坐席)(?:客服|服务|坐席)?"
    r"|\b(?:transfer(?:red)?|agents?|humans?|persons?|people|representatives?|operators?|staff)\b",
    re.IGNORECASE,
)
#: where one clause ends: a negation reads only inside its own clause
_CLAUSE = re.compile(r"[，,。.!！?？;；~～\n]|但是|可是|\bbut\b", re.IGNORECASE)
#: what may stand between the negation and the person word: two characters ("不用帮我转人工"),
#: three words besides articles ("don't want to talk to a person"), none of them the customer
#: starting over ("I don't want a bot, I want a human")
_GAP_CHARS = 2
_GAP_WORDS = 3
_ARTICLES = frozenset({"a", "an", "the", "any", "some"})
_RESTART = frozenset({"i", "we", "i'd", "i'm", "just", "but"})


def _negated(clause: str, start: int, end: int) -> bool:
    """The person word at clause[start:end] is declined by the words just before or after."""
    after = clause[end:]
    if _DECLINE_AFTER.match(after) or _DECLINE_AFTER.match(after.lstrip()):
        return True
    before = clause[:start]
    for negation in _DECLINE_BEFORE.finditer(before):
        gap = before[negation.end() :]
        if gap.isascii():
            words = [w for w in gap.casefold().split() if w not in _ARTICLES]
            if len(words) <= _GAP_WORDS and not _RESTART.intersection(words):
                return True
        elif len(gap.strip()) <= _GAP_CHARS:
            return True
    return False


def declines_person(text: str) -> bool:
    """The message says the customer does NOT want or need a person ("不用转人工了", "人工就不用
    了", "no need for an agent", "don't transfer me"): every person it names is declined in its
    own clause. "不要机器人，转人工" names one it does not decline, so it still asks."""
    mentions = [
        _negated(clause, m.start(), m.end())
        for clause in _CLAUSE.split(text)
        for m in _PERSON.finditer(clause)
    ]
    return bool(mentions) and all(mentions)
