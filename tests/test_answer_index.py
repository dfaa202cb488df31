"""The FAQ index searches an entry's answer in the languages none of its questions is written
in: an English question on a Chinese-only entry meets the English answer."""

from __future__ import annotations

from pathlib import Path

from bot.content.entries import FaqEntry
from bot.domain.messages import Category
from bot.understanding.encoders import MemoEncoder
from bot.understanding.faq import FaqIndex, answer_is_searched


def _entry(entry_id: str, questions: tuple[str, ...], zh: str, en: str) -> FaqEntry:
    return FaqEntry(entry_id, questions, {"zh": zh, "en": en}, Category.CONSULT, Path("x"), 1)


ENTRIES = [
    _entry(
        "certificate-name",
        ("证书上的名字写错了怎么办", "证书姓名有误能改吗"),
        "请在个人中心提交更名申请并上传身份证明，审核通过后 3 个工作日内重新签发证书。",
        "Submit a name-correction request in your profile with proof of identity; the "
        "certificate is reissued within 3 working days after review.",
    ),
    _entry(
        "shipping-time",
        ("多久能发货", "When will my order ship?"),
        "订单一般在付款后 48 小时内发货。",
        "Orders usually ship within 48 hours of payment.",
    ),
    _entry(
        "invoice",
        ("怎么开发票", "可以开发票吗"),
        "在订单详情中点击申请开票即可。",
        "Click 'request invoice' in the order details.",
    ),
]


def test_an_english_question_finds_a_chinese_only_entry_through_its_answer(
    encoder: MemoEncoder,
) -> None:
    question = "the name on my certificate is wrong, can it be reissued?"
    with_answers = FaqIndex(ENTRIES, encoder, 0.7, answer_weight=0.85)
    questions_only = FaqIndex(ENTRIES, encoder, 0.7, answer_weight=0.0)
    found = with_answers.search(question, k=1)[0]
    before = {m.entry.id: m.score for m in questions_only.search(question, k=3)}
    assert found.entry.id == "certificate-name"
    assert found.score > before["certificate-name"]


def test_answers_are_searched_only_where_no_question_speaks_the_language() -> None:
    certificate, shipping, _ = ENTRIES
    assert answer_is_searched(certificate, "en") and not answer_is_searched(certificate, "zh")
    assert not answer_is_searched(shipping, "en") and not answer_is_searched(shipping, "zh")


def test_a_question_variant_still_beats_an_answer(encoder: MemoEncoder) -> None:
    """The same words as a variant and as an answer: the variant's entry wins."""
    entries = [
        _entry("a", ("怎么修改收货地址",), "在订单详情里修改地址。", "How do I cancel my order?"),
        _entry("b", ("How do I cancel my order?", "取消订单"), "在订单详情点取消。", "Cancel it."),
    ]
    index = FaqIndex(entries, encoder, 0.7, answer_weight=0.85)
    assert index.search("How do I cancel my order?", k=1)[0].entry.id == "b"
