"""The quick TF-IDF transform gives scikit-learn's matrix, for every vectorizer the bot fits."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from bot.understanding.textmatch import (
    SoundAwareMatcher,
    char_vectorizer,
    quick_transform,
    sounds,
    word_vectorizer,
)

#: what customers type: Chinese, Latin letters, digits, spaces, punctuation, a few oddities
ALPHABET = "发货票快递退款运费多少怎么开可以吗的了 abcdeABC xyz123 ，。？!?-_\u3000\u200b😀"
TEXTS = st.text(alphabet=ALPHABET, min_size=0, max_size=30)
CORPUS = [
    "多久发货",
    "发票怎么开",
    "运费多少钱",
    "怎么退货退款",
    "When will my order ship?",
    "Can I get an invoice",
    "快递到哪了",
    "优惠券怎么用 coupon",
]


def _fitted() -> list[TfidfVectorizer]:
    return [
        char_vectorizer().fit(CORPUS),
        word_vectorizer().fit(CORPUS),
        TfidfVectorizer(analyzer=sounds, sublinear_tf=True).fit(CORPUS),
    ]


VECTORIZERS = _fitted()


@settings(max_examples=150, deadline=None)
@given(st.lists(TEXTS, min_size=1, max_size=6))
def test_quick_transform_is_scikit_learns_matrix(texts: list[str]) -> None:
    for vectorizer in VECTORIZERS:
        quick = quick_transform(vectorizer, texts)
        slow = vectorizer.transform(texts)
        assert quick.shape == slow.shape
        np.testing.assert_allclose(quick.toarray(), slow.toarray(), rtol=1e-12, atol=1e-15)


@settings(max_examples=100, deadline=None)
@given(st.lists(TEXTS, min_size=1, max_size=6))
def test_the_sound_aware_matcher_keeps_unit_rows_and_its_weights(texts: list[str]) -> None:
    matcher = SoundAwareMatcher().fit(CORPUS)
    rows = matcher.transform(texts)
    chars = VECTORIZERS[0].transform(texts).toarray()
    heard = matcher._sounds.transform(texts).toarray() if matcher._sounds else None
    assert heard is not None
    for i, row in enumerate(rows.toarray()):
        width = chars.shape[1]
        has_sounds = heard[i].any()
        weight = 1 / np.sqrt(2) if has_sounds else 1.0
        np.testing.assert_allclose(row[:width], chars[i] * weight, atol=1e-12)
        np.testing.assert_allclose(row[width:], heard[i] * (weight if has_sounds else 0.0))
        norm = float(np.linalg.norm(row))
        assert norm == 0.0 or abs(norm - 1.0) < 1e-9 or not chars[i].any()


def test_no_texts_are_an_empty_matrix_where_scikit_learn_refuses() -> None:
    for vectorizer in VECTORIZERS:
        assert quick_transform(vectorizer, []).shape == (0, len(vectorizer.vocabulary_))
