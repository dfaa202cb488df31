"""Follow-ups read in context ahead of the customer's lock, in the same encoder call as the
message alone.

A follow-up ("那周末呢") is scored a second time as "previous line + message"
(bot.pipeline.followup). Which previous line is known for sure only under the customer's lock;
scoring it there costs a second encoder call per round, and the encoder streams all its weights
once a call whatever the batch, so for a lone customer that call weighs nearly as much as the
message's own reading. So this worker remembers each conversation's last lines as it decided
them (`LastLines`), guesses the joined text of each message that may be a follow-up from its
words alone (`guesses`), and scores the guess in the reading thread together with the
messages themselves: one encoder call for both. Under the lock the guess is used only when its
text is exactly the one `followup.question` asks for, scored by the same FAQ, so a used guess
decides as the lock's own scoring would, up to the last digits of the encoder's floats, which
depend on what else is in its batch (as every reading in the service already does: concurrent
customers share batches). A wrong or missing guess (the previous line went to another worker,
came at the same moment, or the worker started since) is scored again under the lock, as
before; a wrong guess costs one more text in a batch that is encoded anyway.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from bot.domain.conversation import ConversationKey, CustomerLine
from bot.pipeline import followup
from bot.pipeline.context import Context
from bot.pipeline.knowledge import Knowledge, Reading
from bot.store.conversations import LINES_KEPT

#: conversations remembered per worker (the least recently decided are forgotten first) ...
REMEMBERED = 10_000
#: ... and characters, all lines together (at most 4 bytes each: 4 MB)
REMEMBERED_CHARS = 1_000_000
#: a longer line is not remembered (its conversation is forgotten instead): a guess of it would
#: rarely be asked for, and would crowd out the short lines that are
LONGEST = 300


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

    def __init__(self, size: int = REMEMBERED, chars: int = REMEMBERED_CHARS) -> None:
        self.size = size
        self.chars = chars
        self._lines: OrderedDict[ConversationKey, tuple[CustomerLine, ...]] = OrderedDict()
        self._held = 0  # characters of every line remembered
        self._lock = threading.Lock()

    def remember(self, key: ConversationKey, line: CustomerLine) -> None:
        with self._lock:
            earlier = self._forget(key)
            if len(line.text) > LONGEST:
                return  # nothing guessed for this conversation until its next shorter line
            kept = (line, *earlier)[:LINES_KEPT]
            self._lines[key] = kept
            self._held += _chars(kept)
            while len(self._lines) > self.size or self._held > self.chars:
                self._forget(next(iter(self._lines)))

    def _forget(self, key: ConversationKey) -> tuple[CustomerLine, ...]:
        lines = self._lines.pop(key, ())
        self._held -= _chars(lines)
        return lines

    def lines(self, key: ConversationKey) -> tuple[CustomerLine, ...]:
        with self._lock:
            return self._lines.get(key, ())


def _chars(lines: tuple[CustomerLine, ...]) -> int:
    return sum(len(line.text) for line in lines)


def guesses(
    contexts: Sequence[Context], knowledge: Knowledge, last: LastLines, idle: timedelta
) -> list[tuple[int, str]]:
    """Which messages may be follow-ups, by their words alone (`followup.leaning`), with
    the "previous line + message" this worker remembers for each: (position, joined text).
    Whether the lock reads one in context also depends on the message's own reading; a guess
    it does not ask for is left unused. None on an approximate index, where a reading in
    context looks deeper than the message's own (`Knowledge.context_depth`)."""
    if knowledge.faq.approximate:
        return []
    out: list[tuple[int, str]] = []
    for n, ctx in enumerate(contexts):
        if ctx.knowledge is not knowledge or ctx.stop or followup.leaning(ctx) is None:
            continue  # a reload came between its arrival and its reading; not a follow-up
        previous = followup.topic(last.lines(ctx.inbound.conversation_key), ctx.now, idle)
        if previous is not None:
            out.append((n, followup.joined(previous, ctx.text)))
    return out
