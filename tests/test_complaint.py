"""Anger and complaint win over the FAQ: a customer who complains about a FAQ topic gets a
person, not the FAQ paragraph."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.content.config import load_config
from bot.domain.messages import Action
from bot.pipeline.complaint import complaint_signal
from bot.understanding.encoders import MemoEncoder
from tests.support.harness import Harness, make_harness


@pytest.mark.parametrize(
    "text",
    [
        "退款拖了两周了 你们到底管不管",  # no complaint word: waiting + repetition + exasperation
        "发票开错三次了 你们财务是摆设吗",
        "什么垃圾服务",
        "快递还没到！！！一直在等",
        "my parcel still hasn't arrived after three emails",
        "worst shop ever",
        "I want to file a complaint",
    ],
)
def test_complaints_and_anger_are_spotted(text: str) -> None:
    assert complaint_signal(text)


@pytest.mark.parametrize(
    "text",
    [
        "多久能发货",
        "我的快递一直没到，怎么查？",  # one cue is not anger
        "有效期到底多久",  # 到底 only stresses a question
        "快递三天了还没到",
        "When will my order ship?",
        "I still cannot log in",
        "可以开发票吗",
    ],
)
def test_ordinary_questions_are_not_complaints(text: str) -> None:
    assert complaint_signal(text) == []


def test_a_shop_adds_its_own_complaint_words() -> None:
    assert complaint_signal("这课就是智商税") == []
    assert complaint_signal("这课就是智商税", ["智商税"]) == ["智商税"]


def test_an_angry_customer_naming_a_faq_topic_gets_a_human(harness: Harness) -> None:
    ctx = harness.say("退货拖了两周了 你们到底管不管")
    decision = ctx.decision
    assert decision is not None and decision.action == Action.HANDOFF
    assert (decision.queue, decision.intent) == ("complaints", "complaint")
    assert any("complaint signal" in reason for reason in decision.reasons)
    calm = harness.say("怎么退货", user="calm")
    assert calm.decision is not None and calm.decision.action == Action.ANSWER
    assert calm.decision.faq_id == "return-policy"


def test_without_the_named_intent_the_complaint_category_is_used(
    shop: Path, encoder: MemoEncoder, tmp_path: Path
) -> None:
    path = shop / "config.toml"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "[guard]\n", '[guard]\ncomplaint_intent = "grievance"\n'
        ),
        encoding="utf-8",
    )
    harness = make_harness(load_config(path), encoder, tmp_path)
    ctx = harness.say("什么垃圾服务 发票开了三次都错")
    assert ctx.decision is not None and ctx.decision.intent == "complaint"
