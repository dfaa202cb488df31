"""Intent classification: a linear model over [sentence embedding, character n-gram TF-IDF]."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.linear_model import LogisticRegression

from bot.content import OUT_OF_SCOPE, FaqEntry, IntentSpec
from bot.embeddings import Encoder
from bot.textmatch import char_vectorizer


@dataclass(frozen=True)
class IntentGuess:
    """`intent` is None when out of scope: predicted `out_of_scope`, or not confident enough."""

    intent: IntentSpec | None
    score: float
    best: str  # the top class even when below the threshold, for the reasons log


class IntentClassifier:
    def __init__(
        self,
        intents: Sequence[IntentSpec],
        encoder: Encoder,
        threshold: float,
        faq: Sequence[FaqEntry] = (),
        faq_intent: str = "faq",
    ) -> None:
        """Train on the intents' examples; the FAQ's question variants also count as `faq_intent`
        examples, so every question the FAQ can answer is recognised as a FAQ question."""
        self.by_name = {i.name: i for i in intents}
        self.threshold = threshold
        self._encoder = encoder
        texts: list[str] = []
        labels: list[str] = []
        for intent in intents:
            texts.extend(intent.examples)
            labels.extend([intent.name] * len(intent.examples))
        if faq_intent in self.by_name:
            for entry in faq:
                texts.extend(entry.questions)
                labels.extend([faq_intent] * len(entry.questions))
        self._tfidf = char_vectorizer()
        lexical = self._tfidf.fit_transform(texts)
        features = hstack([csr_matrix(encoder.encode(texts)), lexical]).tocsr()
        self._model = LogisticRegression(C=10.0, class_weight="balanced", max_iter=3000)
        self._model.fit(features, labels)
        self.classes: list[str] = list(self._model.classes_)

    def _features(self, texts: Sequence[str]) -> csr_matrix:
        return hstack(
            [csr_matrix(self._encoder.encode(texts)), self._tfidf.transform(texts)]
        ).tocsr()

    def predict(self, text: str) -> IntentGuess:
        return self.predict_many([text])[0]

    def predict_many(self, texts: Sequence[str]) -> list[IntentGuess]:
        """One guess per text; batching makes encoding several times faster (benchmarks)."""
        guesses = []
        for probabilities in self._model.predict_proba(self._features(texts)):
            top = int(np.argmax(probabilities))
            name, score = self.classes[top], float(probabilities[top])
            if name == OUT_OF_SCOPE or score < self.threshold:
                guesses.append(IntentGuess(None, score, name))
            else:
                guesses.append(IntentGuess(self.by_name[name], score, name))
        return guesses
