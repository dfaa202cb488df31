"""Follow-ups read in context: a short or elliptical line ("那周末呢", "and to Canada?") that only
makes sense after the customer's previous line is read together with it.

The message is read alone first, with everyone else's (`Pipeline.read`). Inside the customer's
lock, once the conversation is known, a message that looks elliptical and has a previous line
within the idle window is read a second time as "previous line + message"; that reading is
taken when it is clearly more confident about a FAQ entry than the message alone. A full
sentence on a new topic is read alone, and so is anything after the conversation went idle.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.content.config import Config
from bot.domain.conversation import ConversationState, CustomerLine
from bot.domain.messages import Kind
from bot.pipeline.context import Context
from bot.pipeline.knowledge import Reading
from bot.store.batch import DecisionBatch

#: a Chinese line of at most this many characters, or an English one of at most this many
#: words, leans on what was said before it
SHORT_CHARS = 8
SHORT_WORDS = 4
#: the context reading's best FAQ score must beat the message's own by this much. Chosen
#: leave-one-deployment-out on the dev deployments (docs/measurements.md): 0.03 and 0.06 tied
#: on every fold and 0.10 lost a follow-up on one, once an entry's answer text counted in its
#: score; below it the previous line's entry takes over follow-ups that move on to a
#: neighbouring entry, above it real follow-ups stay unread.
LEAD = 0.06

#: discourse markers that continue the previous line (general Chinese and English usage)
_OPENERS = re.compile(
    r"^\W*(?:(?:ok|okay|好的?|行|嗯)\W*)?"
    r"(?:那么?|还有|另外|再问|也|and|also|so|then|what about|how about|what if)(?:\b|(?=\W)|$)",
    re.IGNORECASE,
)
_OPENERS_ZH = re.compile(r"^\W*(?:(?:好的?|行|嗯)\W*)?(?:那么?|还有|另外|再问一下|还)")
#: a question left hanging on 呢 ("…呢?"): "what about …?"
_HANGING = re.compile(r"呢\W*$")
#: pronouns and demonstratives pointing back at something already named
_POINTERS = re.compile(
    r"(?:它|他们|她们|那边|这个|那个|这种|那种|该)|\b(?:it|its|that|those|them|they|there|this|one)\b",
    re.IGNORECASE,
)
_CJK = re.compile(r"[\u3400-\u9fff]")
_WORD = re.compile(r"[A-Za-z0-9']+")


@dataclass(frozen=True)
class Topic:
    """What the customer was talking about: their previous line (with the one before it when
    that was a follow-up too), and what the bot made of it."""

    text: str
    faq_id: str | None
    intent: str | None
    suggestions: tuple[str, ...]

    def label(self) -> str:
        if self.faq_id:
            return f"faq {self.faq_id}"
        if self.suggestions:
            return f"suggested {', '.join(self.suggestions)}"
        return f"intent {self.intent}" if self.intent else "no answer"


def elliptical(text: str) -> str | None:
    """Why the line seems to lean on the previous one, or None for a line that stands alone."""
    stripped = text.strip()
    chars, words = _length(stripped)
    if chars <= SHORT_CHARS and words <= SHORT_WORDS:
        return "short"
    if chars > 2 * SHORT_CHARS or words > 3 * SHORT_WORDS:
        return None  # a long line says what it is about
    if _OPENERS.match(stripped) or _OPENERS_ZH.match(stripped):
        return "starts as a continuation"
    if _HANGING.search(stripped):
        return "ends with 呢"
    if _POINTERS.search(stripped):
        return "points back"
    return None


def _length(text: str) -> tuple[int, int]:
    """Chinese characters, and words in other scripts."""
    return len(_CJK.findall(text)), len(_WORD.findall(_CJK.sub(" ", text)))


def topic(lines: Sequence[CustomerLine], now: datetime, idle: timedelta) -> Topic | None:
    """The topic of the previous line, if it came within the idle window."""
    recent = [line for line in lines if now - line.at < idle]
    if not recent:
        return None
    last = recent[0]
    texts = [last.text]
    if len(recent) > 1 and elliptical(last.text):
        texts.insert(0, recent[1].text)
    return Topic(" ".join(texts), last.faq_id, last.intent, last.suggestions)


def in_context(ctx: Context, reading: Reading, batch: DecisionBatch, config: Config) -> Reading:
    """The reading to decide with: the message's own, or, for an elliptical follow-up, the
    reading of "previous line + message" when that is clearly more confident (`ctx.followup`
    then says so for the decision's reasons)."""
    conv = ctx.conversation
    if conv is None or conv.is_new or conv.state == ConversationState.HANDOFF:
        return reading  # nothing before it, or a human reads it
    if ctx.inbound.kind != Kind.TEXT or not ctx.text.strip():
        return reading
    cue = elliptical(ctx.text)
    if cue and cue != "short" and _answered_alone(reading, ctx):
        cue = None  # "and who pays the return postage": a full question of its own
    idle = timedelta(minutes=config.conversation.idle_minutes)
    previous = topic(batch.previous_lines(conv.id), ctx.now, idle) if cue else None
    if previous is None:
        return reading
    # A second encoder call inside the customer's lock, but only for the few messages that
    # qualify (short or elliptical, with a previous line in the idle window): the previous
    # line is known only once the conversation is loaded under the lock.
    k = max(config.faq.suggestions, 3)
    [joined] = ctx.knowledge.read([f"{previous.text} {ctx.text}"], k=k)
    if not _more_confident(joined, reading, config):
        return reading
    alone = f"{reading.matches[0].score:.2f} alone" if reading.matches else "nothing alone"
    ctx.followup = (
        f"read with the previous line ({previous.label()}): {previous.text!r} ({cue}; "
        f"faq {joined.matches[0].entry.id} {joined.matches[0].score:.2f}, against {alone})"
    )
    return joined


def _answered_alone(reading: Reading, ctx: Context) -> bool:
    thresholds = ctx.knowledge.faq.thresholds
    matches = reading.matches
    return (
        bool(matches)
        and matches[0].score >= thresholds.answer
        and thresholds.leads_clearly(matches)
    )


def _more_confident(joined: Reading, alone: Reading, config: Config) -> bool:
    """The context reading wins when its best FAQ entry beats the message's own by LEAD, and
    the message alone is not confidently a request for a person or small talk ("谢谢", "ok
    thanks"): that stands on its own, whatever came before."""
    guess = alone.guess
    if guess and guess.intent and guess.intent.action in ("handoff", "reply"):
        return False
    if not joined.matches:
        return False
    own = alone.matches[0].score if alone.matches else 0.0
    return joined.matches[0].score >= own + LEAD
