"""Follow-ups read in context ahead of the customer's lock.

A follow-up ("那周末呢") is scored a second time as "previous line + message"
(bot.pipeline.followup). Which previous line is known for sure only under the customer's lock,
where every other customer of the round waits for it; so this worker remembers each
conversation's last lines as it decided them (`LastLines`), guesses the joined text while the
message is read with everyone else's, in the reading thread, and scores it there
(`read_ahead`). Under the lock the guess is used only when its text is exactly the one
`followup.question` asks for, scored by the same FAQ: the scores are a function of the text and
the FAQ alone, so a used guess decides as the lock's own scoring would. A wrong or missing
guess (the previous line went to another worker, came at the same moment, or the worker
started since) is scored again under the lock, as before. Where most guesses miss (workers
behind a proxy that spreads a customer's messages over them), guessing would only double the
work, so a worker that finds its guesses mostly wrong guesses only now and then, to notice
when they come right again (`Record`).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from bot.domain.conversation import ConversationKey, CustomerLine
from bot.pipeline import followup
from bot.pipeline.context import Context
from bot.pipeline.knowledge import Knowledge, Reading
from bot.store.conversations import LINES_KEPT

log = logging.getLogger("bot.pipeline")

#: conversations remembered per worker (the least recently decided are forgotten first)
REMEMBERED = 10_000
#: guesses are made while at least this share of the last `CHECKED` guesses was right (and the
#: first `CHECKED` whatever their share); below it, one guess in `PROBE_EVERY`
RIGHT_SHARE = 0.5
CHECKED = 100
PROBE_EVERY = 20


@dataclass(frozen=True)
class Ahead:
    """ "Previous line + message" as guessed before the lock, and its `Knowledge.score`."""

    text: str
    reading: Reading

    def fits(self, text: str, knowledge: Knowledge) -> bool:
        """Whether this is the reading in context of `text` that `knowledge` would make."""
        scores = self.reading.scores
        return self.text == text and scores is not None and scores.index is knowledge.faq


class LastLines:
    """Each conversation's last customer lines (masked, as the database keeps them) as this
    worker decided them, newest first; safe to use from several threads."""

    def __init__(self, size: int = REMEMBERED) -> None:
        self.size = size
        self._lines: OrderedDict[ConversationKey, tuple[CustomerLine, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, key: ConversationKey, line: CustomerLine) -> None:
        with self._lock:
            earlier = self._lines.pop(key, ())
            self._lines[key] = (line, *earlier)[:LINES_KEPT]
            while len(self._lines) > self.size:
                self._lines.popitem(last=False)

    def lines(self, key: ConversationKey) -> tuple[CustomerLine, ...]:
        with self._lock:
            return self._lines.get(key, ())


class Record:
    """Whether this worker's recent guesses were right, and so whether guessing is worth it;
    safe to use from several threads."""

    def __init__(self) -> None:
        self._right: deque[bool] = deque(maxlen=CHECKED)
        self._passed = 0
        self._lock = threading.Lock()

    def checked(self, right: bool) -> None:
        """A guess was compared with what the customer's lock found."""
        with self._lock:
            self._right.append(right)

    def tally(self) -> tuple[int, int]:
        """How many of the last guesses checked were right, of how many."""
        with self._lock:
            return sum(self._right), len(self._right)

    def worth_guessing(self) -> bool:
        with self._lock:
            right = self._right
            if len(right) < CHECKED or sum(right) >= RIGHT_SHARE * len(right):
                return True
            self._passed += 1
            if self._passed < PROBE_EVERY:
                return False
            self._passed = 0
            return True


def read_ahead(
    contexts: Sequence[Context],
    readings: Sequence[Reading],
    knowledge: Knowledge,
    last: LastLines,
    record: Record,
    idle: timedelta,
    k: int,
) -> None:
    """Score the guessed "previous line + message" of each message that may be a follow-up,
    in one encoder call, and keep it on its context (`Context.ahead`). Never raises: what is
    not scored here is scored under the lock."""
    guessed: list[tuple[Context, str]] = []
    for ctx, reading in zip(contexts, readings, strict=True):
        if ctx.knowledge is not knowledge:
            continue  # a reload came between its arrival and its reading
        leaning = followup.leans(ctx, reading)
        if leaning is None or not followup.asks_again(leaning):
            continue
        previous = followup.topic(last.lines(ctx.inbound.conversation_key), ctx.now, idle)
        if previous is not None and record.worth_guessing():
            question = followup.Question(leaning[0], previous, leaning[1])
            guessed.append((ctx, question.joined(ctx.text)))
    if not guessed:
        return
    try:
        together = knowledge.score(
            [text for _, text in guessed], k=k, depth=knowledge.context_depth(k)
        )
    except Exception:
        log.exception("%d follow-up(s) could not be read in context ahead", len(guessed))
        return
    for (ctx, text), reading in zip(guessed, together, strict=True):
        ctx.ahead = Ahead(text, reading)
