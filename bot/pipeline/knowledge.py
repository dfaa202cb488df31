"""What the pipeline works from: everything learnt from the content files, swapped as a whole
when they change, and the one call that reads customer messages with it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bot.content.entries import FaqEntry, IntentSpec
from bot.hours.schedule import Schedule
from bot.understanding.acts import ShopActs
from bot.understanding.background import Background
from bot.understanding.faq import EntryScores, FaqIndex, FaqMatch
from bot.understanding.intents import IntentClassifier, IntentGuess
from bot.understanding.third_parties import ThirdParties


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
        live = [i for i, text in enumerate(texts) if text.strip()]
        out = [Reading(None, []) for _ in texts]
        if not live:
            return out
        batch = [texts[i] for i in live]
        vectors = np.asarray(self.faq.embed(batch))
        table = self.classifier.probabilities(batch, vectors)
        guesses = self.classifier.guesses(table)
        acts = self.acts.model.probabilities(vectors) if self.acts is not None else None
        scores = self.faq.score_many(batch, vectors, k)
        outside = (
            self.background.closeness(batch, vectors)
            if self.background is not None
            else np.zeros(len(batch))
        )
        for n, i in enumerate(live):
            others = tuple(self.third_parties.named(texts[i])) if self.third_parties else ()
            entry_scores = scores[n]
            out[i] = Reading(
                guesses[n],
                [] if entry_scores is None else entry_scores.best(self.faq.entries, k),
                float(outside[n]),
                others,
                tuple(float(p) for p in acts[n]) if acts is not None else (),
                dict(zip(self.classifier.classes, (float(p) for p in table[n]), strict=True)),
                entry_scores,
            )
        return out
