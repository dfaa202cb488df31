"""Character n-gram TF-IDF: the lexical half of matching, good at product names, codes and typos."""

from __future__ import annotations

from collections.abc import Sequence

from scipy.sparse import csr_matrix
from sklearn.feature_extraction.text import TfidfVectorizer


def char_vectorizer() -> TfidfVectorizer:
    """Unigrams matter in Chinese (one character is often a word); 2–3-grams carry phrases."""
    return TfidfVectorizer(
        analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, lowercase=True
    )


def fit_transform(vectorizer: TfidfVectorizer, texts: Sequence[str]) -> csr_matrix:
    return csr_matrix(vectorizer.fit_transform(list(texts)))
