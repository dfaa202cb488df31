"""Someone else's version of a FAQ topic: a message naming another company or public office the
shop's content never mentions is not answered from the FAQ outright; a name the shop itself
uses is no cue."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.content.config import load_config
from bot.domain.messages import Action
from bot.understanding.background import Background
from bot.understanding.encoders import MemoEncoder
from bot.understanding.language import detect
from bot.understanding.third_parties import ThirdParties, _pattern, builtin_names
from tests.support.harness import make_harness


def test_a_name_the_shop_never_uses_is_someone_else() -> None:
    parties = ThirdParties(
        [], ["我们支持微信支付", "Mapleleaf boards and Gantt charts"], ["refund"]
    )
    assert parties.named("how do I get a refund from Asana") == ["Asana"]
    assert parties.named("what does monday.com charge") == ["monday.com"]
    assert parties.named("Notion的团队版多少钱一个月") == ["Notion"]
    assert parties.named("ClickUp rate limits?") == ["ClickUp"]
    # the shop's own names, ordinary words, and a capital that starts a sentence are not
    assert parties.named("Mapleleaf boards: can I share one?") == []
    assert parties.named("Refund please") == []


def test_names_are_found_in_chinese_anywhere_and_in_english_as_whole_words() -> None:
    parties = ThirdParties(["腾讯视频", "抖音", "抖音商城", "12306", "Netflix", "Apple ID"], [])
    assert parties.named("腾讯视频会员怎么退订") == ["腾讯视频"]
    assert parties.named("抖音商城买的能退吗") == ["抖音商城"]
    assert parties.named("how do I cancel my NETFLIX plan") == ["Netflix"]
    assert parties.named("reset my appleid please") == ["Apple ID"]
    assert parties.named("12306改签") == ["12306"]
    # a name running on into more letters or digits is another word
    assert parties.named("订单号 2023123061 到哪了") == []
    assert parties.named("netflixing all night") == []
    assert parties.named("多久能发货") == []


def test_a_listed_name_is_found_however_its_hyphens_and_apostrophes_are_written() -> None:
    # a continued question is still someone else's when it names a listed company
    # (bot.pipeline.steps), so a listed name must be found as customers write it
    parties = ThirdParties(["T-Mobile", "McDonald's", "Apple ID"], [], ["plan", "burger"])
    for text in ["my TMobile plan", "my T Mobile plan", "my t-mobile plan"]:
        assert parties.named(text)[0] == "T-Mobile", text
    for text in ["a McDonalds burger", "a McDonald’s burger", "a McDonald's burger"]:
        assert parties.named(text)[0] == "McDonald's", text
    assert all(parties.listed(name) for name in ["T-Mobile", "McDonald's", "apple id"])
    assert not parties.listed("Hongqiao")  # written as a name, not a known company


def test_a_name_in_the_shops_own_words_is_not_a_cue() -> None:
    parties = ThirdParties(
        ["淘宝", "京东", "Amazon"], ["我们在淘宝和天猫都有店铺", "Sold on amazon too"]
    )
    assert parties.own == ["淘宝", "Amazon"]
    assert parties.named("淘宝店铺的订单能开发票吗") == []
    assert parties.named("京东买的能在这退吗") == ["京东"]


def test_the_shipped_list_speaks_both_languages_and_has_no_duplicates() -> None:
    names = builtin_names()
    assert len(set(names)) == len(names)
    languages = [detect(n, default="zh") for n in names]
    assert languages.count("zh") >= 100 and languages.count("en") >= 60


def test_another_companys_invoice_is_not_answered_with_the_shops(
    shop: Path, encoder: MemoEncoder, tmp_path: Path
) -> None:
    question = "淘宝买的东西怎么开发票"
    harness = make_harness(load_config(shop / "config.toml"), encoder, tmp_path / "cue")
    ctx = harness.say(question)
    assert ctx.decision is not None and ctx.decision.faq_id is None, ctx.decision
    assert ctx.decision.action in (Action.SUGGEST, Action.FALLBACK)
    assert any("淘宝" in r and "never mentions" in r for r in ctx.decision.reasons)
    # the shop's own invoice question is answered as before
    ctx = harness.say("怎么开发票")
    assert ctx.decision is not None and ctx.decision.faq_id == "invoice", ctx.decision

    # once the shop says it sells on 淘宝, the same question is its own
    faq = shop / "faq" / "shop.yaml"
    faq.write_text(
        faq.read_text(encoding="utf-8").replace(
            "即可开具电子发票。", "即可开具电子发票，淘宝店铺的订单也一样。"
        ),
        encoding="utf-8",
    )
    own = make_harness(load_config(shop / "config.toml"), encoder, tmp_path / "own")
    assert own.pipeline.knowledge.third_parties is not None
    assert "淘宝" in own.pipeline.knowledge.third_parties.own
    ctx = own.say(question)
    assert ctx.decision is not None and ctx.decision.faq_id == "invoice", ctx.decision

    # and with the cue switched off, it is answered too
    path = shop / "config.toml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("[faq]\n", "[faq]\nthird_parties = false\n"),
        encoding="utf-8",
    )
    faq.write_text(
        faq.read_text(encoding="utf-8").replace("，淘宝店铺的订单也一样。", "。"),
        encoding="utf-8",
    )
    off = make_harness(load_config(path), encoder, tmp_path / "off")
    assert off.pipeline.knowledge.third_parties is None
    ctx = off.say(question)
    assert ctx.decision is not None and ctx.decision.faq_id == "invoice", ctx.decision


def test_out_of_scope_examples_do_not_make_a_name_the_shops(
    shop: Path, encoder: MemoEncoder, tmp_path: Path
) -> None:
    intents = shop / "intents" / "intents.yaml"
    intents.write_text(
        intents.read_text(encoding="utf-8").replace(
            "examples: [今天天气怎么样,", "examples: [京东的客服电话是多少, 今天天气怎么样,"
        ),
        encoding="utf-8",
    )
    harness = make_harness(load_config(shop / "config.toml"), encoder, tmp_path)
    parties = harness.pipeline.knowledge.third_parties
    assert parties is not None and "京东" in parties.names


def test_a_named_thing_closer_to_the_background_gets_no_suggestion_either(
    encoder: MemoEncoder,
) -> None:
    background = Background(["明天会下雨吗"], encoder)
    texts = [f"问题{i}" for i in range(12)]
    background.calibrate(texts, encoder.encode(texts), np.full(len(texts), 0.0))
    background.margin = 0.1
    # without a name: vetoed only when the background is ahead by more than the margin
    assert not background.vetoes(0.55, 0.6) and background.vetoes(0.71, 0.6)
    # with one: vetoed as soon as the background is ahead of the FAQ at all; behind it, the
    # customer still gets the suggestions ("I study at SYSU, is there a student price?")
    assert background.vetoes(0.62, 0.6, elsewhere=True)
    assert not background.vetoes(0.55, 0.6, elsewhere=True)


_NAMES = builtin_names()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(_NAMES),
            st.sampled_from(_NAMES).map(str.lower),
            st.sampled_from(_NAMES).map(lambda n: n.replace(" ", "-")),
            st.sampled_from(["的", "会员", "怎么", " ", "s", "9", "x", "-", "。", "er", "ID"]),
        ),
        max_size=12,
    ).map("".join)
)
def test_names_are_found_as_one_expression_of_every_name_finds_them(text: str) -> None:
    """`named` files the names by first letter for speed; it finds what one regular
    expression of every name (longest first) finds, in the same order."""
    parties = ThirdParties(_NAMES, own=["我们的店"])
    ordered = sorted(parties.names, key=len, reverse=True)
    every = re.compile("|".join(f"({_pattern(n)})" for n in ordered), re.IGNORECASE)
    expected: list[str] = []
    for match in every.finditer(text):
        name = ordered[(match.lastindex or 1) - 1]
        if name not in expected:
            expected.append(name)
    assert parties.named(text) == expected
