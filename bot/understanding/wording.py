"""How much of a question an FAQ entry's own words account for.

The sentence embedding hears a question's topic; it does not notice the words the question adds
that the entry never speaks to. "上海市消保委的电话是多少" lands near a grocery shop's delivery-area
entry (Shanghai), "牛油果怎么判断熟没熟" near its freshness guarantee, "what's the refund policy
for the bundle" near the single-course refund. Here every word piece of the question looks for
its closest word piece anywhere in the entry (its phrasings and its answer, every language),
by the encoder's token vectors (bot.understanding.usetokens), and the entry's coverage is the
mean of those closenesses, each piece weighted by how rare it is in ordinary customer language
(the act corpus, every trade): 是/多少/the count little, 消保委/牛油果/bundle a lot. A question
asked about the entry's subject is mostly accounted for; someone else's question, or the
neighbouring entry's, leaves its own words alone.

FaqIndex mixes coverage into the fused score of its best few entries (`faq.coverage` in
config.toml), so it reorders close entries and is calibrated with everything else. Measured on
five deployments in docs/measurements.md.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from bot.understanding.usetokens import Tokens

log = logging.getLogger("bot.faq")

#: entries (the best by fused score) whose coverage of a text is measured
CANDIDATES = 12


class PieceWeights:
    """Inverse document frequency of word pieces in ordinary customer language."""

    def __init__(self, document_frequency: dict[int, int], documents: int) -> None:
        self._df = document_frequency
        self._n = documents
        size = max(document_frequency, default=0) + 1
        frequency = np.zeros(size, dtype=np.float64)
        frequency[list(document_frequency)] = list(document_frequency.values())
        self._table = (np.log((documents + 1) / (frequency + 1)) + 1).astype(np.float32)
        self._unseen = np.float32(math.log(documents + 1) + 1)

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        seen = ids < len(self._table)
        return np.where(seen, self._table[np.where(seen, ids, 0)], self._unseen)

    @classmethod
    def counted(cls, texts: Sequence[str], piece_ids: Callable[[str], list[int]]) -> PieceWeights:
        df: Counter[int] = Counter()
        for text in texts:
            df.update(set(piece_ids(text)))
        return cls(dict(df), len(texts))


def corpus_texts() -> list[str]:
    from bot.understanding.acts import corpus

    return [text for texts in corpus().values() for text in texts]


def corpus_files_key() -> str:
    """What the counts were made from: the act corpus's files as they are (hashing their bytes
    is quick; parsing them takes a second)."""
    folder = resources.files("bot.understanding").joinpath("data/acts")
    digest = hashlib.sha256()
    for name in sorted(p.name for p in folder.iterdir() if p.name.endswith(".yaml")):
        digest.update(name.encode("utf-8") + b"\0" + folder.joinpath(name).read_bytes() + b"\0")
    return digest.hexdigest()


def shipped_weights_path() -> Path:
    return Path(str(resources.files("bot.understanding").joinpath("data/pieces.npz")))


_loaded: PieceWeights | None = None


def piece_weights(piece_ids: Callable[[str], list[int]]) -> PieceWeights:
    """The weights for the shipped act corpus: read from data/pieces.npz (written by
    `python -m bot.understanding.wording`), counted again when the corpus has changed since."""
    global _loaded
    if _loaded is not None:
        return _loaded
    key = corpus_files_key()
    try:
        with np.load(shipped_weights_path()) as data:
            if str(data["key"]) == key:
                _loaded = PieceWeights(
                    dict(zip(data["ids"].tolist(), data["df"].tolist(), strict=True)),
                    int(data["documents"]),
                )
                return _loaded
    except Exception as exc:  # missing, torn or not an npz: counted again below
        log.warning("ignoring the word-piece counts in %s: %s", shipped_weights_path(), exc)
    log.info("counting word pieces in the act corpus (its shipped counts are out of date)")
    _loaded = PieceWeights.counted(corpus_texts(), piece_ids)
    return _loaded


class Coverage:
    """Each entry's word pieces (phrasings and answers), to measure how much of a question they
    account for. `texts` are (entry index, source, tokens); `source` is the FAQ index's row of a
    question phrasing (so calibration can ask a phrasing without itself), -1 for an answer.

    A piece an entry's answers repeat is kept once, its vectors averaged: a question's word
    finds it as well, and long answers cost a third less to compare with."""

    def __init__(
        self,
        texts: Sequence[tuple[int, int, Tokens]],
        entries: int,
        weights: PieceWeights,
    ) -> None:
        self.weights = weights
        self.entries = entries
        vectors: list[np.ndarray] = []
        ids: list[np.ndarray] = []
        source: list[np.ndarray] = []
        #: the token rows of each kept phrasing, by its FAQ row
        self._spans: dict[int, tuple[int, int]] = {}
        self._first = np.zeros(entries, dtype=np.int64)
        self._last = np.zeros(entries, dtype=np.int64)
        by_entry: dict[int, list[tuple[int, Tokens]]] = {}
        for entry, origin, tokens in texts:
            if len(tokens):
                by_entry.setdefault(entry, []).append((origin, tokens))
        at = 0
        for entry in range(entries):
            start = at
            found = by_entry.get(entry, [])
            phrasings = [(o, t) for o, t in found if o >= 0]
            for origin, tokens in phrasings:
                self._spans[origin] = (at, at + len(tokens))
                at += len(tokens)
                vectors.append(tokens.vectors)
                ids.append(tokens.ids)
                source.append(np.full(len(tokens), origin, dtype=np.int64))
            answers = [t for o, t in found if o < 0]
            if answers:
                piece = np.concatenate([t.ids for t in answers])
                unique, which = np.unique(piece, return_inverse=True)
                summed = np.zeros((len(unique), answers[0].vectors.shape[1]), dtype=np.float32)
                np.add.at(summed, which, np.vstack([t.vectors for t in answers]))
                summed /= np.maximum(np.linalg.norm(summed, axis=1, keepdims=True), 1e-12)
                vectors.append(summed)
                ids.append(unique.astype(np.int64))
                source.append(np.full(len(unique), -1, dtype=np.int64))
                at += len(unique)
            self._first[entry], self._last[entry] = start, at
        self._vectors = np.ascontiguousarray(np.vstack(vectors)) if vectors else np.zeros((0, 0))
        self._ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        self._source = np.concatenate(source) if source else np.zeros(0, np.int64)

    @property
    def rows(self) -> int:
        return len(self._vectors)

    def tokens_of(self, source: int) -> Tokens | None:
        """The tokens of the phrasing at FAQ row `source`, as they were read (None: not kept)."""
        if source not in self._spans:
            return None
        first, last = self._spans[source]
        return Tokens(self._ids[first:last], self._vectors[first:last])

    def of(self, text: Tokens, entries: Sequence[int], leave_out: int = -1) -> np.ndarray:
        """The coverage (0..1) of one text by each of `entries` (indexes); with `leave_out`, the
        pieces of the phrasing at that FAQ row do not count."""
        out = np.zeros(len(entries), dtype=np.float32)
        if not len(text) or not self.rows:
            return out
        weight = self.weights(text.ids)
        weight /= weight.sum()
        for n, entry in enumerate(entries):
            first, last = int(self._first[entry]), int(self._last[entry])
            if last == first:
                continue
            similar = text.vectors @ self._vectors[first:last].T
            if leave_out >= 0:
                similar[:, self._source[first:last] == leave_out] = -1.0
            out[n] = weight @ np.maximum(similar.max(axis=1), 0.0)
        return out

    def scores(
        self, tokens: Sequence[Tokens], leave_out: Sequence[int] | None = None
    ) -> np.ndarray:
        """Every entry's coverage of each text (texts × entries)."""
        every = list(range(self.entries))
        return (
            np.stack(
                [
                    self.of(t, every, -1 if leave_out is None else int(leave_out[q]))
                    for q, t in enumerate(tokens)
                ]
            )
            if len(tokens)
            else np.zeros((0, self.entries), dtype=np.float32)
        )

    def mix(
        self,
        fused: np.ndarray,
        tokens: Sequence[Tokens],
        share: float | np.ndarray,
        leave_out: Sequence[int] | None = None,
    ) -> np.ndarray:
        """`fused` (texts × entries) with coverage mixed in at `share` (one for all entries, or
        one per entry): measured for each text's
        best CANDIDATES entries by `fused`; every other entry is taken to cover the text as
        little as the least covering of those (not less: that would sink it for not being
        measured, and a follow-up read alone and in context would disagree about it).

        One product per candidate entry with every text that has it among its candidates, so
        a batch of a hundred messages costs about as many products as a single one."""
        out = (1 - share) * fused
        shares = np.broadcast_to(np.asarray(share, dtype=np.float32), (fused.shape[1],))
        # measured only where it counts: among the entries it is mixed into, that have words
        eligible = (shares > 0) & (self._last > self._first)
        depth = min(CANDIDATES, int(eligible.sum()))
        live = [q for q, t in enumerate(tokens) if len(t)]
        if not depth or not live or not self.rows:
            return np.asarray(out, dtype=np.float32)
        lengths = np.array([len(tokens[q]) for q in live])
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        stacked = np.vstack([tokens[q].vectors for q in live])
        weight = self.weights(np.concatenate([tokens[q].ids for q in live]))
        weight /= np.repeat(np.add.reduceat(weight, offsets[:-1]), lengths)
        text_of_row = np.repeat(np.arange(len(live)), lengths)
        ranked = np.where(eligible, fused[live], -np.inf)
        best = np.argpartition(-ranked, depth - 1, axis=1)[:, :depth]
        cover = np.zeros((len(live), fused.shape[1]), dtype=np.float32)
        held = None if leave_out is None else np.asarray([leave_out[q] for q in live])
        for entry in np.unique(best).tolist():
            first, last = int(self._first[entry]), int(self._last[entry])
            if last == first:
                continue
            wants = (best == entry).any(axis=1)
            asking = np.flatnonzero(wants)
            rows = np.flatnonzero(wants[text_of_row])
            similar = stacked[rows] @ self._vectors[first:last].T
            if held is not None:
                own = self._source[first:last]
                mask = (held[text_of_row[rows]][:, None] == own[None, :]) & (own >= 0)[None, :]
                similar[mask] = -1.0
            closest = np.maximum(similar.max(axis=1), 0.0) * weight[rows]
            starts = np.concatenate([[0], np.cumsum(lengths[asking])[:-1]])
            cover[asking, entry] = np.add.reduceat(closest, starts)
        measured = np.take_along_axis(cover, best, axis=1)
        floor = measured.min(axis=1, keepdims=True)
        filled = np.broadcast_to(floor, cover.shape).copy()
        np.put_along_axis(filled, best, measured, axis=1)
        out[live] += share * filled
        return np.asarray(out, dtype=np.float32)


def main() -> int:
    """Count the act corpus's word pieces, find the principal directions of its token vectors,
    and write both to data/pieces.npz."""
    from bot.understanding.usetokens import TOKEN_DIM, TokenBackend

    backend = TokenBackend(projected=False)
    texts = corpus_texts()
    weights = PieceWeights.counted(texts, backend.piece_ids)
    ids = np.array(sorted(weights._df), dtype=np.int64)
    df = np.array([weights._df[int(i)] for i in ids], dtype=np.int32)
    _, tokens = backend.encode_tokens(texts)
    vectors = np.vstack([t.vectors for t in tokens])
    sample = np.random.default_rng(0).permutation(len(vectors))[:60_000]
    _, strength, directions = np.linalg.svd(vectors[sample], full_matrices=False)
    energy = float((strength[:TOKEN_DIM] ** 2).sum() / (strength**2).sum())
    path = shipped_weights_path()
    with path.open("wb") as out:
        np.savez_compressed(
            out,
            ids=ids,
            df=df,
            documents=np.array(len(texts)),
            key=np.array(corpus_files_key()),
            projection=directions[:TOKEN_DIM].T.astype(np.float32),
        )
    print(
        f"wrote {path} ({len(ids)} word pieces in {len(texts)} examples; {TOKEN_DIM} directions "
        f"hold {energy:.0%} of {len(vectors)} token vectors' energy)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
