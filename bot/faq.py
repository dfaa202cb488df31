"""FAQ search: every question variant embedded in faiss, fused with a character n-gram score."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import faiss
import numpy as np

from bot.content import FaqEntry
from bot.embeddings import Encoder
from bot.textmatch import char_vectorizer, fit_transform


@dataclass(frozen=True)
class FaqMatch:
    entry: FaqEntry
    score: float  # fused
    dense: float
    lexical: float


class FaqIndex:
    """An immutable index over one version of the FAQ; a new edit builds a new index."""

    def __init__(
        self, entries: Sequence[FaqEntry], encoder: Encoder, dense_weight: float = 0.6
    ) -> None:
        self.entries = list(entries)
        self.by_id = {e.id: e for e in self.entries}
        self.dense_weight = dense_weight
        self._encoder = encoder
        self._variant_entry = np.array(
            [i for i, e in enumerate(self.entries) for _ in e.questions], dtype=np.int64
        )
        variants = [q for e in self.entries for q in e.questions]
        vectors = encoder.encode(variants)
        self._index = faiss.IndexFlatIP(vectors.shape[1])
        self._index.add(vectors)
        self._tfidf = char_vectorizer()
        self._lexical = fit_transform(self._tfidf, variants)

    @property
    def variant_count(self) -> int:
        return int(self._index.ntotal)

    def search(self, text: str, k: int = 5) -> list[FaqMatch]:
        """The best `k` entries for `text`, best first; an entry scores as its best variant."""
        if not self.entries or not text.strip():
            return []
        query = self._encoder.encode([text])
        n = self.variant_count
        dense_scores, rows = self._index.search(query, min(n, max(k * 8, 32)))
        dense = np.full(len(self.entries), -1.0, dtype=np.float32)
        for score, row in zip(dense_scores[0], rows[0], strict=True):
            if row >= 0:
                e = self._variant_entry[row]
                dense[e] = max(dense[e], score)
        lexical_variants = (self._lexical @ self._tfidf.transform([text]).T).toarray().ravel()
        lexical = np.zeros(len(self.entries), dtype=np.float32)
        np.maximum.at(lexical, self._variant_entry, lexical_variants.astype(np.float32))
        dense = np.maximum(dense, 0.0)
        fused = self.dense_weight * dense + (1 - self.dense_weight) * lexical
        best = np.argsort(-fused)[:k]
        return [
            FaqMatch(self.entries[i], float(fused[i]), float(dense[i]), float(lexical[i]))
            for i in best
        ]
