"""The built-in sense of "out of scope": a message much closer to what no shop answers than to
the FAQ is not answered or suggested from it; the margin is calibrated on the FAQ itself, so
the FAQ's own questions keep being answered."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bot.content.config import load_config
from bot.domain.messages import Action
from bot.understanding.background import Background, builtin_texts
from bot.understanding.encoders import MemoEncoder
from tests.support.harness import make_harness


def test_the_weather_is_not_suggested_from_the_faq(
    shop: Path, encoder: MemoEncoder, tmp_path: Path
) -> None:
    harness = make_harness(load_config(shop / "config.toml"), encoder, tmp_path / "on")
    background = harness.pipeline.knowledge.background
    assert background is not None and background.margin is not None and background.margin >= 0
    ctx = harness.say("比特币还能买吗")
    assert ctx.decision is not None and ctx.decision.action == Action.FALLBACK, ctx.decision
    assert any("no shop answers" in r for r in ctx.decision.reasons)
    # the FAQ's own questions, typos included, are answered as before
    for text, entry in [("运费多少", "shipping-fee"), ("可以开发票吗", "invoice")]:
        ctx = harness.say(text)
        assert ctx.decision is not None and ctx.decision.faq_id == entry, (text, ctx.decision)

    path = shop / "config.toml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("[faq]\n", "[faq]\nbackground = false\n"),
        encoding="utf-8",
    )
    without = make_harness(load_config(path), encoder, tmp_path / "off")
    assert without.pipeline.knowledge.background is None
    ctx = without.say("比特币还能买吗")
    assert ctx.decision is not None and ctx.decision.action == Action.SUGGEST


def test_the_admins_out_of_scope_examples_join_the_built_in_ones(
    shop: Path, encoder: MemoEncoder, tmp_path: Path
) -> None:
    harness = make_harness(load_config(shop / "config.toml"), encoder, tmp_path)
    background = harness.pipeline.knowledge.background
    assert background is not None
    own = harness.pipeline.knowledge.intents["out_of_scope"].examples
    assert set(own) <= set(background.texts)
    assert set(builtin_texts()) <= set(background.texts)


def test_the_built_in_set_speaks_both_languages() -> None:
    from bot.understanding.language import detect

    texts = builtin_texts()
    languages = [detect(t, default="zh") for t in texts]
    assert languages.count("zh") >= 80 and languages.count("en") >= 60
    assert len(set(texts)) == len(texts)


def test_the_margin_never_vetoes_what_is_closer_to_the_faq(encoder: MemoEncoder) -> None:
    background = Background(["明天会下雨吗", "will it rain tomorrow"], encoder)
    texts = [f"问题{i}" for i in range(12)]
    vectors = encoder.encode(texts)
    # every held-out phrasing is far closer to the FAQ than to the background
    assert background.calibrate(texts, vectors, np.full(len(texts), 5.0)) == 0.0
    assert not background.vetoes(0.6, 0.6) and background.vetoes(0.61, 0.6)
    # too few phrasings to measure: nothing is vetoed
    assert background.calibrate(texts[:3], vectors[:3], np.zeros(3)) is None
    assert not background.vetoes(1.0, 0.0)
