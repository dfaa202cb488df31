"""Pinyin typos: customers type Chinese through pinyin input methods, so a typo is usually a
homophone (发或 for 发货). The FAQ's lexical score hears them; English is matched as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.assembly import read_content
from bot.content.config import load_config
from bot.content.entries import FaqEntry
from bot.domain.messages import Category
from bot.understanding.encoders import UseEncoder
from bot.understanding.faq import FaqIndex
from bot.understanding.textmatch import SoundAwareMatcher, char_vectorizer, sounds


def test_sounds_are_toneless_syllables_pairs_and_triples() -> None:
    assert sounds("发货了") == ["fa", "huo", "le", "fa huo", "huo le", "fa huo le"]
    assert sounds("发或") == sounds("发货")
    assert sounds("where is my parcel?") == []
    # mixed text: only the Chinese characters have sounds
    assert sounds("iPhone 发票") == ["fa", "piao", "fa piao"]


def _cosine(matcher: SoundAwareMatcher, a: str, b: str) -> float:
    rows = matcher.transform([a, b])
    return float((rows[0] @ rows[1].T).toarray()[0, 0])


def test_a_homophone_typo_scores_on_sound_and_english_keeps_its_character_score() -> None:
    questions = ["多久能发货", "什么时候补货", "怎么开发票", "How much is shipping?", "包邮吗"]
    matcher = SoundAwareMatcher().fit(questions)
    chars = char_vectorizer().fit(questions)

    def char_cosine(a: str, b: str) -> float:
        rows = chars.transform([a, b])
        return float((rows[0] @ rows[1].T).toarray()[0, 0])

    # 发漂 shares no character n-gram with 发票 beyond 发, but all its sounds
    assert _cosine(matcher, "发漂怎么开", "怎么开发票") > char_cosine("发漂怎么开", "怎么开发票")
    assert _cosine(matcher, "多久能发或", "多久能发货") > _cosine(
        matcher, "多久能发或", "什么时候补货"
    )
    # rows stay unit length, so an exact match still scores 1
    assert _cosine(matcher, "包邮吗", "包邮吗") == pytest.approx(1.0)
    english = "how much is shipping"
    assert _cosine(matcher, english, questions[3]) == pytest.approx(
        char_cosine(english, questions[3])
    )


def test_pinyin_typos_find_their_entry_in_the_shipped_faq() -> None:
    """Typos seen from pinyin input (bench/cases.jsonl typo-*): the right entry comes first."""
    config = load_config(Path(__file__).parent.parent / "config.toml")
    content, problems = read_content(config)
    assert not problems
    index = FaqIndex(content.faq, UseEncoder(), config.faq.dense_weight)
    for text, entry in (
        ("什么时候发或", "shipping-time"),  # 发货; without sounds 补货 (restock) came first
        ("发漂怎么开", "invoice"),
        ("退宽多久到帐", "refund-time"),
        ("怎么查物刘", "order-tracking"),
    ):
        best = index.search(text, 3)[0]
        assert best.entry.id == entry, (text, [m.entry.id for m in index.search(text, 3)])
        assert best.lexical > 0.3


def test_sound_scores_need_no_chinese_in_the_faq() -> None:
    """An English-only FAQ has no sounds to learn; matching still works."""
    entries = [
        FaqEntry("ship", ("How much is shipping?",), {"en": "A"}, Category.CONSULT, Path("f"), 1),
        FaqEntry("inv", ("How do I get an invoice?",), {"en": "B"}, Category.CONSULT, Path("f"), 3),
    ]
    index = FaqIndex(entries, UseEncoder())
    assert index.search("shipping cost?", 1)[0].entry.id == "ship"
    # a Chinese message against it has sounds the FAQ never heard: no error, no sound score
    assert index.search("发票", 1)[0].score < 0.5
    scores = index.entry_scores(["invoice please"], index.embed(["invoice please"]))
    assert np.argmax(scores[0]) == 1
