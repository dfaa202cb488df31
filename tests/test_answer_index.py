"""The FAQ index searches an entry's answer in the languages none of its questions is written
in: an English question on a Chinese-only entry meets the English answer. (These tests look at
the answer rows alone, without the answer text's part in a thin entry's score: `mix=0`, and
where they bound the fused score, without coverage: `coverage=0`.)"""

from __future__ import annotations

from bot.understanding.encoders import MemoEncoder
from bot.understanding.faq import FaqIndex, answer_is_searched
from tests.support.faq import bilingual_entry

ENTRIES = [
    bilingual_entry(
        "certificate-name",
        ("证书上的名字写错了怎么办", "证书姓名有误能改吗"),
        "请在个人中心提交更名申请并上传身份证明，审核通过后 3 个工作日内重新签发证书。",
        "Submit a name-correction request in your profile with proof of identity; the "
        "certificate is reissued within 3 working days after review.",
    ),
    bilingual_entry(
        "shipping-time",
        ("多久能发货", "When will my order ship?"),
        "订单一般在付款后 48 小时内发货。",
        "Orders usually ship within 48 hours of payment.",
    ),
    bilingual_entry(
        "invoice",
        ("怎么开发票", "可以开发票吗"),
        "在订单详情中点击申请开票即可。",
        "Click 'request invoice' in the order details.",
    ),
]


def test_an_english_question_finds_a_chinese_only_entry_through_its_answer(
    encoder: MemoEncoder,
) -> None:
    # worded like the answer (name correction, proof of identity) more than like the questions
    question = "my certificate needs a name correction, is proof of identity required?"
    with_answers = FaqIndex(ENTRIES, encoder, 0.7, answer_weight=0.85, mix=0)
    questions_only = FaqIndex(ENTRIES, encoder, 0.7, answer_weight=0.0, mix=0)
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
        bilingual_entry(
            "a", ("怎么修改收货地址",), "在订单详情里修改地址。", "How do I cancel my order?"
        ),
        bilingual_entry(
            "b", ("How do I cancel my order?", "取消订单"), "在订单详情点取消。", "Cancel it."
        ),
    ]
    index = FaqIndex(entries, encoder, 0.7, answer_weight=0.85, mix=0)
    assert index.search("How do I cancel my order?", k=1)[0].entry.id == "b"


HOTEL = [
    bilingual_entry(
        "room-cleaning",
        ("房间每天打扫吗", "可以要求不打扫房间吗"),
        "客房每天上午10点至下午3点打扫；如不需要，请在门把手挂上“请勿打扰”牌。",
        "Rooms are cleaned daily between 10:00 and 15:00; hang the Do Not Disturb sign if "
        "you'd rather not.",
    ),
    bilingual_entry(
        "late-checkout",
        ("能延迟退房吗", "退房时间是几点", "What time is check-out?"),
        "退房时间为中午12点，可在前台申请延迟至下午2点，视房态而定。",
        "Check-out is at noon; ask the front desk to extend to 14:00, subject to availability.",
    ),
    bilingual_entry(
        "breakfast",
        ("早餐几点开始", "早餐在哪里吃", "Is breakfast included?"),
        "早餐6:30–10:00在二楼餐厅供应，含早房型免费。",
        "Breakfast is served 6:30–10:00 in the second-floor restaurant, free with "
        "breakfast-included rooms.",
    ),
    bilingual_entry(
        "luggage",
        ("可以寄存行李吗", "退房后行李放哪"),
        "前台可免费寄存行李至当天晚上。",
        "The front desk keeps your luggage for free until the evening.",
    ),
]


def test_a_chinese_only_entry_is_not_outranked_for_lack_of_english_words(
    encoder: MemoEncoder,
) -> None:
    """An English question meets a Chinese-only entry's phrasings by meaning alone (no shared
    characters), which a fused score used to count at 0.7 of their cosine: a neighbour with
    an English phrasing won on its n-grams. Such rows now count their full cosine."""
    index = FaqIndex(HOTEL, encoder, 0.7, answer_weight=0.85, mix=0, coverage=0)
    ranked = [m.entry.id for m in index.search("what time is housekeeping", k=3)]
    assert ranked.index("room-cleaning") < ranked.index("breakfast"), ranked
    # an English question on an entry asked in English is scored as before: its fused score
    # is no more than its best embedding cosine and n-gram cosine allow
    top = index.search("what time is check-out", k=1)[0]
    assert top.entry.id == "late-checkout"
    assert top.score <= 0.7 * top.dense + 0.3 * top.lexical + 1e-6


def test_search_and_calibration_score_alike(encoder: MemoEncoder) -> None:
    """Calibration (entry_scores) and search must see the same scores, in both languages."""
    index = FaqIndex(HOTEL, encoder, 0.7, answer_weight=0.85)
    texts = ["what time is housekeeping", "can I leave my bags after check-out", "早餐几点"]
    exact = index.entry_scores(texts, index.embed(texts))
    for text, row in zip(texts, exact, strict=True):
        for match in index.search(text, k=len(HOTEL)):
            assert abs(match.score - row[index.entries.index(match.entry)]) < 1e-5, text
