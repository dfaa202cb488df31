"""What the pipeline works from: everything learnt from the content files, swapped as a whole
when they change, and the one call that reads customer messages with it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from bot.content.entries import FaqEntry, IntentSpec
from bot.hours.schedule import Schedule
from bot.understanding.acts import ShopActs
from bot.understanding.background import Background
from bot.understanding.faq import EntryScores, FaqIndex, FaqMatch
from bot.understanding.intents import IntentClassifier, IntentGuess
from bot.understanding.third_parties import ThirdParties
from bot.understanding.usetokens import Tokens


@dataclass(frozen=True)
class Reading:
    """What the bot made of one text: its intent and the FAQ entries it may be asking."""

    guess: IntentGuess | None
    matches: list[FaqMatch]
    #: closeness to what no shop answers (bot.understanding.background)
    outside: float = 0.0
    #: other companies and public offices it names that the shop's content never mentions
    others: tuple[str, ...] = ()
    #: the probability of each customer act (bot.understanding.acts.ACTS), when known
    acts: tuple[float, ...] = ()
    #: the shop's intent model's probability of each of its intents, by name
    intents: dict[str, float] = field(default_factory=dict)
    #: every FAQ entry's scores, for scoring the text again in context (bot.pipeline.followup)
    scores: EntryScores | None = field(default=None, repr=False, compare=False)
    #: the text's embedding, for the rest of a reading begun with `Knowledge.score`
    vector: np.ndarray | None = field(default=None, repr=False, compare=False)
    #: the text's token vectors, when the FAQ weighs coverage (bot.understanding.wording)
    tokens: Tokens | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Knowledge:
    faq: FaqIndex
    classifier: IntentClassifier
    intents: dict[str, IntentSpec]
    schedules: dict[str, Schedule]
    background: Background | None = None
    third_parties: ThirdParties | None = None
    acts: ShopActs | None = None

    @property
    def intent_acts(self) -> dict[str, str]:
        """The act each of the shop's intents is taken as (bot.understanding.acts.intent_act)."""
        return self.acts.intents if self.acts is not None else {}

    @property
    def acts_answered(self) -> frozenset[str]:
        """FAQ entries that answer a report or a request (bot.understanding.acts.ShopActs)."""
        return self.acts.faq_answers_acts if self.acts is not None else frozenset()

    def faq_entry(self, entry_id: str) -> FaqEntry | None:
        return self.faq.by_id.get(entry_id)

    def read(self, texts: Sequence[str], k: int = 3) -> list[Reading]:
        """Read several texts at once: one encoder batch shared by the intent classifier and
        the FAQ search, one scoring pass each. Empty texts (images, stickers) get nothing."""
        return self.finish(texts, self.score(texts, k))

    def score(self, texts: Sequence[str], k: int = 3, depth: int | None = None) -> list[Reading]:
        """The FAQ half of `read`: each text's best `k` entries, every entry's scores and the
        text's vector, without the intent, acts or names (`finish`): a follow-up's reading in
        context needs those only when it is taken (bot.pipeline.followup). `depth`: how many
        entries an approximate index looks for (`k` by default; see `context_depth`)."""
        live = [i for i, text in enumerate(texts) if text.strip()]
        out = [Reading(None, []) for _ in texts]
        if not live:
            return out
        batch = [texts[i] for i in live]
        vectors, tokens = self.faq.read(batch)
        vectors = np.asarray(vectors)
        scores = self.faq.score_many(batch, vectors, depth or k, tokens)
        for n, i in enumerate(live):
            entry_scores = scores[n]
            out[i] = Reading(
                None,
                [] if entry_scores is None else entry_scores.best(self.faq.entries, k),
                scores=entry_scores,
                vector=vectors[n],
                tokens=tokens[n] if tokens is not None else None,
            )
        return out

    def context_depth(self, k: int) -> int:
        """How many entries to look for when a follow-up is scored on every entry: `k` where
        the search is exact (every entry is scored anyway), all of them on an approximate
        index, whose graph otherwise scores only the entries it finds near the text."""
        return len(self.faq.entries) if self.faq.approximate else k

    def own_scores(self, text: str, reading: Reading, k: int) -> Reading:
        """`reading` of `text` with every entry scored by this knowledge's FAQ, to blend with
        a reading in context: itself when this FAQ scored it exactly; scored again from its
        vector (not encoded again) when another FAQ scored it (a reload came between the
        message's arrival and its reading) or when the index is approximate."""
        scores = reading.scores
        if scores is not None and scores.index is self.faq and not self.faq.approximate:
            return reading
        if reading.vector is not None:
            vectors = reading.vector[None, :]
            tokens = [reading.tokens] if reading.tokens is not None else None
        else:
            vectors, tokens = self.faq.read([text])
        [again] = self.faq.score_many([text], np.asarray(vectors), self.context_depth(k), tokens)
        if again is None:
            return reading
        return replace(reading, matches=again.best(self.faq.entries, k), scores=again)

    def finish(self, texts: Sequence[str], readings: Sequence[Reading]) -> list[Reading]:
        """The rest of `read` for readings from `score` of the same `texts`: the shop's
        intent, the customer's act, the closeness to what no shop answers and the other
        companies named; one batch each."""
        live = [i for i, reading in enumerate(readings) if reading.vector is not None]
        out = list(readings)
        if not live:
            return out
        batch = [texts[i] for i in live]
        vectors = np.stack([v for i in live if (v := readings[i].vector) is not None])
        table = self.classifier.probabilities(batch, vectors)
        guesses = self.classifier.guesses(table)
        acts = self.acts.model.probabilities(vectors) if self.acts is not None else None
        outside = (
            self.background.closeness(batch, vectors)
            if self.background is not None
            else np.zeros(len(batch))
        )
        for n, i in enumerate(live):
            out[i] = replace(
                readings[i],
                guess=guesses[n],
                outside=float(outside[n]),
                others=tuple(self.third_parties.named(texts[i])) if self.third_parties else (),
                acts=tuple(float(p) for p in acts[n]) if acts is not None else (),
                intents=dict(
                    zip(self.classifier.classes, (float(p) for p in table[n]), strict=True)
                ),
            )
        return out
