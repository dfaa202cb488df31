"""The bot's built-in sense of "out of scope": a background set of things customers ask a
shop's service account that no shop answers (weather, markets, other companies' services,
homework, chit-chat), in Chinese and English, plus the deployment's own out_of_scope examples.

A FAQ answer is vetoed when the message is much closer to the background than to its best FAQ
entry, both scored alike (embedding cosine fused with character and sound n-grams, as
bot.understanding.faq scores an entry, the background counting as one more entry). "Much
closer" is calibrated on the deployment's own FAQ: each phrasing, asked without
itself, measures how close real questions come to the background compared with the FAQ; the
margin is set so that only `1 - keep` of them (2%) would have been vetoed. A FAQ with many
phrasings per entry gets a tight margin, a sparse one a loose margin, and neither needs
out-of-scope examples written by its admin.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

import numpy as np
import yaml

from bot.understanding.encoders import Encoder
from bot.understanding.textmatch import SoundAwareMatcher

#: the share of the FAQ's own held-out phrasings that must stay answerable
KEEP = 0.98
#: with fewer held-out phrasings than this the margin is not calibrated and nothing is vetoed
MIN_HELD_OUT = 10


def builtin_texts() -> list[str]:
    """The shipped background set (bot/understanding/data/background.yaml), every language."""
    data = yaml.safe_load(
        resources.files("bot.understanding").joinpath("data/background.yaml").read_text("utf-8")
    )
    return [str(text) for texts in data.values() for text in texts]


class Background:
    def __init__(self, texts: Sequence[str], encoder: Encoder, dense_weight: float = 0.6) -> None:
        self.texts = list(dict.fromkeys(t for t in texts if t.strip()))
        self.dense_weight = dense_weight
        vectors = np.asarray(encoder.encode(self.texts), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self._vectors = vectors / np.where(norms == 0, 1, norms)
        self._matcher = SoundAwareMatcher()
        # n-grams × examples: transposed once, for every product with the customers' texts
        self._lexical = self._matcher.fit_transform(self.texts).T.tocsr() if self.texts else None
        #: veto when closeness to the background exceeds the FAQ's fused score by more than
        #: this; None until calibrated (then nothing is vetoed)
        self.margin: float | None = None
        self.samples = 0

    def closeness(self, texts: Sequence[str], vectors: np.ndarray) -> np.ndarray:
        """How close each text comes to the background, scored as a FAQ entry is: the best
        embedding cosine and the best n-gram cosine among its examples, fused."""
        if not self.texts or not len(texts) or self._lexical is None:
            return np.zeros(len(texts), dtype=np.float32)
        vectors = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = vectors / np.where(norms == 0, 1, norms)
        dense = np.maximum((unit @ self._vectors.T).max(axis=1), 0.0)
        lexical = (self._matcher.transform(list(texts)) @ self._lexical).toarray().max(axis=1)
        return np.asarray(self.dense_weight * dense + (1 - self.dense_weight) * lexical)

    def calibrate(
        self, held_out_texts: Sequence[str], held_out_vectors: np.ndarray, held_out: np.ndarray
    ) -> float | None:
        """Set the margin from the FAQ's phrasings asked without themselves: their best score
        from the rest of the FAQ, and their closeness to the background."""
        self.samples = len(held_out)
        if self.samples < MIN_HELD_OUT:
            self.margin = None
            return None
        gap = self.closeness(held_out_texts, held_out_vectors) - held_out
        # never veto a message that is closer to the FAQ than to the background
        self.margin = round(max(float(np.quantile(gap, KEEP)), 0.0), 3)
        return self.margin

    def vetoes(self, closeness: float, faq_score: float, elsewhere: bool = False) -> bool:
        """Keep the FAQ from answering, or even suggesting: the message is closer to the
        background than to the FAQ by more than the margin, or, when it names another company
        or public office (`elsewhere`, bot.understanding.third_parties: not answered outright
        anyway), closer to the background than to the FAQ at all. A named thing alone leaves
        the suggestions: "I'm a student at SYSU, is there a student price?" still gets the
        student entry to pick. Against vetoing within the margin, on the dev deployments 11
        more questions in scope got their entry among the suggestions, and 16 more out of scope
        got suggestions (and the way to a person) instead of the fallback."""
        if self.margin is None:
            return False
        gap = closeness - faq_score
        return gap > 0 if elsewhere else gap > self.margin

    def describe(self) -> str:
        if self.margin is None:
            return f"{len(self.texts)} background examples (margin not calibrated)"
        return (
            f"{len(self.texts)} background examples; veto a FAQ answer when the message is "
            f"closer to them by more than {self.margin:+.2f} (kept {KEEP:.0%} of "
            f"{self.samples} held-out phrasings)"
        )
