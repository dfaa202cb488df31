"""Someone else's version of a FAQ topic: a message that names another company, app or public
office the shop never mentions (腾讯视频会员怎么退订, 身份证补办去哪, cancel my Netflix).

Such a question reads like the shop's own entry (membership, refund, a lost certificate) and
scores as close to it as a real question, and no closer to the background of what no shop
answers: the embedding hears the topic, not whose it is. The name is the cue. The shipped list
(bot/understanding/data/third_parties.yaml) holds well-known companies, brands, platforms,
public offices, public documents and public exams in Chinese and English; a name that appears
anywhere in the shop's own content (FAQ questions and answers, intent examples other than
out_of_scope, config texts) is the shop's business and is no cue there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib import resources

import yaml


def builtin_names() -> list[str]:
    """The shipped list of names that are not the shop, every language."""
    data = yaml.safe_load(
        resources.files("bot.understanding").joinpath("data/third_parties.yaml").read_text("utf-8")
    )
    return [str(name) for names in data.values() for name in names]


def _pattern(name: str) -> str:
    """Chinese matches anywhere; an edge in Latin letters or digits must not run on into more of
    them (Steam in steamer, 12306 inside an order number); a space or hyphen in an English name
    also matches the other or nothing (Apple ID, AppleID, T-Mobile, T Mobile), and an
    apostrophe may be curly or left out (McDonald's, McDonald’s, McDonalds)."""
    parts = (
        re.sub("['’]", "['’]?", re.escape(part)) for part in re.split(r"[\s\-]+", name.strip())
    )
    body = r"[\s\-]*".join(parts)
    before = r"(?<![A-Za-z0-9])" if name[:1].isascii() and name[:1].isalnum() else ""
    after = r"(?![A-Za-z0-9])" if name[-1:].isascii() and name[-1:].isalnum() else ""
    return before + body + after


#: a word in Latin letters, with the dots, hyphens and ampersands of names (monday.com, TP-LINK)
_LATIN = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[.\-&'][A-Za-z0-9]+)*")
_DOMAIN = re.compile(r"\.(?:com|net|org|io|app|ai|co|cn|uk)$", re.IGNORECASE)
_CJK = re.compile(r"[\u3400-\u9fff]")


def latin_words(texts: Iterable[str]) -> set[str]:
    """Every word in Latin letters the texts use, lower-cased."""
    return {w.lower() for text in texts for w in _LATIN.findall(text)}


def common_words(texts: Iterable[str]) -> set[str]:
    """The words the texts write in lower case somewhere: ordinary words, not names."""
    return {w for text in texts for w in _LATIN.findall(text) if w.islower()}


def looks_like_a_name(word: str, first: bool, in_chinese: bool, common: set[str]) -> bool:
    """Is this Latin word written as a name: a web address (monday.com), a capital inside the
    word (iPhone, ClickUp), an acronym (HMRC), a capital where a sentence does not start
    (our Zoom account), or any uncommon Latin word in a Chinese sentence (Notion的团队版)?"""
    lowered = word.lower()
    if _DOMAIN.search(word):
        return True
    if lowered in common or len(word) < 2:
        return False
    if in_chinese or re.search(r"[a-z][A-Z]", word) or (word.isupper() and len(word) <= 6):
        return True
    return word[0].isupper() and not first and word != "I"


class ThirdParties:
    """The names among `names` that the shop's `own` texts never mention, and which of them a
    customer's message names; with `common` (ordinary words in Latin letters), also any word
    written as a name (`looks_like_a_name`) that the shop's texts never use."""

    def __init__(
        self, names: Iterable[str], own: Iterable[str], common: Iterable[str] = ()
    ) -> None:
        unique = list(dict.fromkeys(n.strip() for n in names if n.strip()))
        own = list(own)
        self.own_words = latin_words(own)
        self.common = set(common)
        own_text = "\n".join(own)
        self.own = [n for n in unique if re.search(_pattern(n), own_text, re.IGNORECASE)]
        mentioned = set(self.own)
        self.names = [n for n in unique if n not in mentioned]
        self._listed = {n.lower() for n in self.names}
        # longest first, so that 抖音商城 is reported rather than 抖音; filed by first letter,
        # so a message is tried only against the names that can start where it stands (one
        # regular expression of every name costs milliseconds a message: it tries each name
        # at each character)
        self._by_first: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
        for name in sorted(self.names, key=len, reverse=True):
            self._by_first.setdefault(name[0].lower(), []).append(
                (name, re.compile(_pattern(name), re.IGNORECASE))
            )

    def named(self, text: str) -> list[str]:
        """The names in `text` that are not the shop's, in the order they appear; where two
        start at one place the longer, and a name found is not searched again for others."""
        found: list[str] = []
        at = 0
        while at < len(text):
            step = 1
            for name, pattern in self._by_first.get(text[at].lower(), ()):
                match = pattern.match(text, at)
                if match:
                    if name not in found:
                        found.append(name)
                    step = max(match.end() - at, 1)
                    break
            at += step
        if self.common:
            found += [w for w in self.unknown_names(text) if w not in found]
        return found

    def listed(self, name: str) -> bool:
        """Is `name` one of the known companies and public offices (not only written as a
        name)?"""
        return name.lower() in self._listed

    def unknown_names(self, text: str) -> list[str]:
        """Words written as names that the shop's own texts never use."""
        in_chinese = bool(_CJK.search(text))
        out = []
        for match in _LATIN.finditer(text):
            word = match.group(0)
            before = text[: match.start()].rstrip()
            first = not before or before[-1] in ".!?。！？\n"
            if word.lower() not in self.own_words and looks_like_a_name(
                word, first, in_chinese, self.common
            ):
                out.append(word)
        return out

    def describe(self) -> str:
        shown = ", ".join(self.own[:6]) + (" …" if len(self.own) > 6 else "")
        mentioned = f"; the shop's content names {len(self.own)} ({shown})" if self.own else ""
        return f"{len(self.names)} names of other companies and public offices{mentioned}"
