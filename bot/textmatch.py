"""TF-IDF over characters and words: the lexical half of matching, good at product names, codes,
typos and the exact wording that sentence embeddings smooth over."""

from __future__ import annotations

from collections.abc import Sequence

from scipy.sparse import csr_matrix
from sklearn.feature_extraction.text import TfidfVectorizer

__all__ = ["TfidfVectorizer", "char_vectorizer", "fit_transform", "word_vectorizer"]


def char_vectorizer() -> TfidfVectorizer:
    """Unigrams matter in Chinese (one character is often a word); 2–3-grams carry phrases."""
    return TfidfVectorizer(
        analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, lowercase=True
    )


def word_vectorizer() -> TfidfVectorizer:
    """Words and word pairs, for languages written with spaces ("card arrival", "top up")."""
    return TfidfVectorizer(
        analyzer="word",
        ngram_range=(1, 2),
        sublinear_tf=True,
        lowercase=True,
        token_pattern=r"(?u)\b\w+\b",
    )


def fit_transform(vectorizer: TfidfVectorizer, texts: Sequence[str]) -> csr_matrix:
    return csr_matrix(vectorizer.fit_transform(list(texts)))
