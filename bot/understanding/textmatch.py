"""TF-IDF over characters, their sounds and words: the lexical half of matching, good at product
names, codes, typos and the exact wording that sentence embeddings smooth over."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
from pypinyin import lazy_pinyin
from scipy.sparse import csr_matrix, diags, hstack
from sklearn.feature_extraction.text import TfidfVectorizer

__all__ = [
    "SoundAwareMatcher",
    "TfidfVectorizer",
    "char_vectorizer",
    "sounds",
    "word_vectorizer",
]

_HANZI = re.compile(r"[\u3400-\u9fff]")


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


def sounds(text: str) -> list[str]:
    """Toneless pinyin of the Chinese characters in `text`: syllables, pairs and triples.

    Customers type Chinese through pinyin input methods, so their typos are mostly homophones:
    发或 for 发货, 发漂 for 发票, 快第 for 快递. Such a typo shares no characters with the right
    word but all of its sounds. Text without Chinese characters has no sounds."""
    if not _HANZI.search(text):
        return []
    one = lazy_pinyin(text, errors="ignore")
    two = [f"{a} {b}" for a, b in pairwise(one)]
    three = [f"{a} {b} {c}" for a, b, c in zip(one, one[1:], one[2:], strict=False)]
    return one + two + three


class SoundAwareMatcher:
    """Character n-gram TF-IDF and pinyin TF-IDF, averaged: the cosine of two transformed Chinese
    texts is the mean of their character and their sound cosines; texts without Chinese keep the
    character cosine alone.

    Measured on bench/cases.jsonl with 17 pinyin-typo cases added (typo-*): FAQ recall 92.9% →
    96.9% at precision 98.9% → 99.0%; asked without itself, 60% of the FAQ's own variants found
    their entry against 55%. Pairs alone, or sounds mixed into the character space, did worse on
    both. The intent classifier keeps plain characters: sounds cost it 0.5 points on SMP2017 dev.
    """

    def fit(self, texts: Sequence[str]) -> SoundAwareMatcher:
        texts = list(texts)
        self._chars = char_vectorizer().fit(texts)
        # an FAQ without Chinese has no sounds to learn (and TF-IDF refuses an empty vocabulary)
        heard = any(_HANZI.search(text) for text in texts)
        self._sounds = (
            TfidfVectorizer(analyzer=sounds, sublinear_tf=True).fit(texts) if heard else None
        )
        return self

    def transform(self, texts: Sequence[str]) -> csr_matrix:
        texts = list(texts)
        chars = self._chars.transform(texts)
        if self._sounds is None:
            return csr_matrix(chars)
        heard = self._sounds.transform(texts)
        has_sounds = np.diff(heard.indptr) > 0  # rows with any known sound
        half = 1 / math.sqrt(2)  # two unit blocks at this weight make one unit row
        char_weight = np.where(has_sounds, half, 1.0)
        sound_weight = np.where(has_sounds, half, 0.0)
        return csr_matrix(hstack([diags(char_weight) @ chars, diags(sound_weight) @ heard]))

    def fit_transform(self, texts: Sequence[str]) -> csr_matrix:
        return self.fit(texts).transform(texts)
