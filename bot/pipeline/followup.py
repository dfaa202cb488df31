"""Follow-ups read in context: a short or elliptical line ("那周末呢", "and to Canada?") that only
makes sense after the customer's previous line is read together with it.

The message is read alone first, with everyone else's (`Pipeline.read`). Inside the customer's
lock, once the conversation is known, a message that looks elliptical and has a previous line
within the idle window (`question`) is read a second time as "previous line + message", in one
encoder call with the other follow-ups of its round, and each FAQ entry is scored on both
readings (`blend`, from the scores each reading keeps). The context reading is taken when its
best entry is also one the message alone comes close to (then it is answered, naming its
question), or when it is clearly more confident than the message alone. A full sentence on a
new topic is read alone, and so is anything after the conversation went idle.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np

from bot.content.config import Config
from bot.content.entries import FaqEntry
from bot.domain.conversation import ConversationState, CustomerLine
from bot.domain.messages import Kind
from bot.pipeline.context import Context
from bot.pipeline.knowledge import Reading
from bot.store.batch import DecisionBatch
from bot.understanding.faq import EntryScores

#: a Chinese line of at most this many characters, or an English one of at most this many
#: words, leans on what was said before it
SHORT_CHARS = 8
SHORT_WORDS = 4
#: in context, an entry scores this share on the message alone and the rest on "previous line +
#: message" (see `blend`)
OWN_SHARE = 0.6
#: the context reading is taken when its best entry is also among the message's own first
#: AGREE_WITHIN and clears the answer threshold (the two readings agree: answered without
#: the lead a lone message needs, its question named); else "previous line + message" is
#: taken when its own best score beats the message's by LEAD. Chosen leave-one-deployment-out
#: on the dev deployments (docs/measurements.md): every fold chose a share of 0.6 over 0.5
#: and 0.7; agreeing within the first 2, 3 or 5 tied.
AGREE_WITHIN = 3
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


def leaning(ctx: Context) -> str | None:
    """Why the message may lean on the previous line, from its words alone (`elliptical`):
    None for a line that stands alone or a message that is not words. What `question` asks
    first, and all that a guess before the lock can ask (bot.pipeline.ahead)."""
    if ctx.inbound.kind != Kind.TEXT or not ctx.text.strip():
        return None
    return elliptical(ctx.text)


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


@dataclass(frozen=True)
class Question:
    """A message to read again in context: why it leans on what came before, and the lines
    it leans on."""

    cue: str
    previous: Topic
    answered_alone: bool

    def joined(self, text: str) -> str:
        """What to read besides the message alone: "previous line + message"."""
        return joined(self.previous, text)


def joined(previous: Topic, text: str) -> str:
    """ "previous line + message", the text a follow-up is read as in context."""
    return f"{previous.text} {text}"


def question(
    ctx: Context, reading: Reading, batch: DecisionBatch, config: Config
) -> Question | None:
    """Whether the message is an elliptical follow-up to read again with the customer's
    previous line (known only once the conversation is loaded under the customer's lock), or
    None: it is read alone."""
    conv = ctx.conversation
    if conv is None or conv.is_new or conv.state == ConversationState.HANDOFF:
        return None  # nothing before it, or a human reads it
    cue = leaning(ctx)
    if cue is None or _stands_alone(reading):
        return None
    answered_alone = _answered_alone(reading, ctx)
    idle = timedelta(minutes=config.conversation.idle_minutes)
    previous = topic(batch.previous_lines(conv.id), ctx.now, idle)
    if previous is None:
        return None
    if answered_alone and previous.faq_id == reading.matches[0].entry.id:
        # "and how much a day in Vietnam?" after roaming: a name the shop never mentions is a
        # detail of the question it continues, not someone else's question (bot.pipeline.steps)
        ctx.continues_entry = previous.faq_id
    if cue != "short" and answered_alone:
        return None  # "and who pays the return postage": a full question of its own
    return Question(cue, previous, answered_alone)


def settle(
    ctx: Context, reading: Reading, asked: Question, joined: Reading, config: Config
) -> Reading:
    """The reading to decide with: the message's own, or the blended reading in context when
    the two agree or context is clearly more confident (`ctx.followup` then says so for the
    decision's reasons, and `ctx.followup_agrees` lets the FAQ answer without a lone message's
    lead). `joined` is "previous line + message" (`asked.joined`) read with every entry's
    scores kept, as `reading` was."""
    previous, cue, answered_alone = asked.previous, asked.cue, asked.answered_alone
    k = max(config.faq.suggestions, 3)
    blended = blend(reading, joined, ctx.knowledge.faq.entries, k)
    if not blended.matches:
        return reading
    top = blended.matches[0]
    if answered_alone and top.entry.id == reading.matches[0].entry.id:
        return reading  # "运费多少": answered as it stands, context only agrees
    if top.score >= ctx.knowledge.faq.thresholds.answer and top.entry.id in {
        m.entry.id for m in reading.matches[:AGREE_WITHIN]
    }:
        chosen, how = blended, f"in context, and among the message's own first {AGREE_WITHIN}"
        ctx.followup_agrees = True
    elif not answered_alone and joined.matches and joined.matches[0].score >= _best(reading) + LEAD:
        # "那喷砂呢" after the cleaning price: the message alone says too little to agree with
        # anything, and "previous line + message" is clearly surer than it
        chosen = replace(joined, matches=joined.matches[:k], others=reading.others)
        how = "previous line + message"
    else:
        return reading
    best = chosen.matches[0]
    if best.entry.id == previous.faq_id:
        ctx.continues_entry = previous.faq_id  # read in context, it continues that question
    alone = (
        f"{reading.matches[0].entry.id} {reading.matches[0].score:.2f}"
        if reading.matches
        else "nothing"
    )
    ctx.followup = (
        f"read with the previous line ({previous.label()}): {previous.text!r} ({cue}; "
        f"faq {best.entry.id} {best.score:.2f} {how}; alone: {alone})"
    )
    return chosen


def blend(own: Reading, joined: Reading, entries: Sequence[FaqEntry], k: int) -> Reading:
    """Each FAQ entry scored OWN_SHARE on the message alone and the rest on "previous line +
    message", best `k` first (ties in the joined text's order); the intent and acts are the
    joined text's, the names of other companies the message's own: "is it crowded?" after a
    Chinese line is no Latin word in a Chinese sentence.
    The joined text alone leans to the previous line's own entry, which is longer and said it
    all; the message's own share keeps "那怎么约" after a vaccine question on booking, and the
    joined share keeps "冰袋呢" after the cool box on the cool box."""
    mine, theirs = own.scores, joined.scores
    if mine is None or theirs is None:
        return replace(joined, matches=[], others=own.others)
    order = np.argsort(-theirs.fused)
    fused = _mix(mine.fused, theirs.fused)
    first = order[np.argsort(-fused[order], kind="stable")[:k]].tolist()
    mixed = EntryScores(
        fused,
        _mix(mine.dense, theirs.dense),
        _mix(mine.lexical, theirs.lexical),
        _mix(mine.answer, theirs.answer),
    )
    return replace(joined, matches=mixed.pick(entries, first), others=own.others)


def _mix(alone: np.ndarray, joined: np.ndarray) -> np.ndarray:
    return OWN_SHARE * alone.astype(np.float64) + (1 - OWN_SHARE) * joined.astype(np.float64)


def _answered_alone(reading: Reading, ctx: Context) -> bool:
    thresholds = ctx.knowledge.faq.thresholds
    matches = reading.matches
    return (
        bool(matches)
        and matches[0].score >= thresholds.answer
        and thresholds.leads_clearly(matches)
    )


def _best(reading: Reading) -> float:
    return reading.matches[0].score if reading.matches else 0.0


def _stands_alone(alone: Reading) -> bool:
    """A message confidently read as a request for a person or as small talk ("谢谢", "ok
    thanks") stands on its own, whatever came before."""
    guess = alone.guess
    return bool(guess and guess.intent and guess.intent.action in ("handoff", "reply"))
