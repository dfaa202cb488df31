"""FAQ search: every question variant embedded in faiss, fused with a character and pinyin
(homophone) score, and the answer / suggest thresholds calibrated from the FAQ's own variants."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import faiss
import numpy as np
from scipy.sparse import csr_matrix

from bot.content.entries import FaqEntry
from bot.understanding.encoders import Encoder, token_encoder
from bot.understanding.language import detect
from bot.understanding.textmatch import SoundAwareMatcher
from bot.understanding.usetokens import Tokens
from bot.understanding.wording import Coverage, piece_weights

#: the suggest threshold lies at least this far below the answer threshold. On a FAQ with two or
#: three phrasings an entry, leave-one-out leaves so little evidence that calibration put both at
#: 0.38 on the dev shop: no "did you mean…?" at all, where a close-but-unsure question should get
#: one. (0.1 there: 2.6 more questions in 100 offered the right entry; the shipped shop's band is
#: wider and did not move.)
MIN_SUGGEST_BAND = 0.1

#: an entry with fewer phrasings than this is answered outright only when it leads the runner-up
#: by the calibrated margin (`Thresholds.margin`); with one to three wordings its best score says
#: little about its neighbours. The shipped FAQ (7+ an entry) is untouched; on the dev shop (2–3
#: an entry) a margin of 0.044 took answer precision 74.6% → 81%, suggestions holding the rest.
FEW_PHRASINGS = 4
#: a thin entry leading a neighbour by less than this is answered only if its own answer text
#: is at least as close to the question as the neighbour's (`Thresholds.doubt`). Two or three
#: phrasings leave an entry's question side thin; the paragraph the admin wrote is the rest of
#: what it is about. On the dev shop (2–3 phrasings an entry), checking the next two entries
#: within 0.15: precision 90.8% → 96.4%, recall 72.4% → 69.3%, covered 90.6% → 94.3%; within
#: 0.1, 94.5% / 71.4%; within 0.2, 97.8% / 68.8%; without a limit recall fell to 64.1%.
CLOSE = 0.15
#: how many entries after the best one its answer text is compared with (the suggestion list's)
NEIGHBOURS = 2
#: an answer scoring less than this above the answer threshold names the entry's question
THIN_BAND = 0.05
#: a question this close to one of the entry's phrasings by meaning is asked as written
ASKED_AS_WRITTEN = 0.9
#: the margin when calibration saw too few wrong leaders to measure one
DEFAULT_MARGIN = 0.05
#: wrong leaders calibration needs before it trusts its own margin
ENOUGH_WRONG_LEADERS = 10

#: how much an entry's answer text counts beside its best question phrasing in its score, for an
#: entry with few phrasings (`answer_mix`). With two or three phrasings an entry, the paragraph
#: the admin wrote says more about what the entry is about than the phrasings do: on the five
#: dev deployments (bench/devshops), ranking by (question + 1.5 × answer) / 2.5 put the right
#: entry first for 78–90% of customers' questions against 70–85% by the phrasings alone; every
#: leave-one-deployment-out fold chose 1.5 from 0.25–1.5 (docs/measurements.md).
ANSWER_MIX = 1.5

#: how much the share of a question an entry's own words account for counts in the fused score
#: of an entry with fewer than FEW_PHRASINGS phrasings (bot.understanding.wording;
#: `faq.coverage`). Chosen leave-one-deployment-out on the five dev deployments; on the shipped
#: FAQ (seven phrasings an entry and more) it cost a pinyin typo (docs/measurements.md).
COVERAGE = 0.1

#: variants per chunk when scoring many queries at once (bounds memory to chunk × variants)
CHUNK = 256


@dataclass(frozen=True)
class FaqMatch:
    entry: FaqEntry
    score: float  # fused
    dense: float
    lexical: float
    #: the question against the entry's answer text (fused alike, best language)
    answer: float = 0.0


@dataclass(frozen=True)
class EntryScores:
    """Every entry's scores for one text, arrays in `index.entries` order: a search's best
    entries are taken from them, and a follow-up is scored again from them in context
    (bot.pipeline.followup) without reading the message twice."""

    fused: np.ndarray
    dense: np.ndarray
    lexical: np.ndarray
    answer: np.ndarray
    #: the index that scored them: after a reload, another index's entries are in another order
    index: FaqIndex | None = field(default=None, repr=False, compare=False)

    def best(self, entries: Sequence[FaqEntry], k: int) -> list[FaqMatch]:
        """The best `k` entries, best first."""
        return self.pick(entries, np.argsort(-self.fused)[:k].tolist())

    def pick(self, entries: Sequence[FaqEntry], chosen: Sequence[int]) -> list[FaqMatch]:
        """The matches of the entries at positions `chosen`, in that order."""
        return [
            FaqMatch(
                entries[e],
                float(self.fused[e]),
                float(self.dense[e]),
                float(self.lexical[e]),
                float(self.answer[e]),
            )
            for e in chosen
        ]


@dataclass(frozen=True)
class Thresholds:
    """Fused scores at or above `answer` are answered; at or above `suggest`, suggested.

    An entry with fewer than FEW_PHRASINGS phrasings (or a runner-up with so few) is answered
    only when it leads the runner-up by `margin`; otherwise it is suggested with its neighbours.
    `source` is "calibrated" (leave-one-variant-out on the FAQ itself) or "config"; the figures
    are what calibration measured at these thresholds (None when there was too little to measure).
    `wrong_leaders` is how many held-out phrasings came first with a wrong entry: the evidence
    the margin was measured on (fewer than ENOUGH_WRONG_LEADERS: DEFAULT_MARGIN is used).
    """

    answer: float
    suggest: float
    source: str
    precision: float | None = None
    recall: float | None = None
    samples: int = 0
    margin: float = DEFAULT_MARGIN
    wrong_leaders: int = 0
    #: within this lead of a neighbour, a thin entry's answer text must be as close (CLOSE)
    close: float = CLOSE

    def leads_clearly(self, matches: Sequence[FaqMatch]) -> bool:
        """Is the best match far enough ahead of its neighbours to answer it outright?"""
        return bool(matches) and self.doubt(matches) is None

    def doubt(self, matches: Sequence[FaqMatch]) -> str | None:
        """Why the best match is not answered outright, or None. Only asked where it or a
        neighbour has few phrasings; a well-phrased pair of neighbours is told apart by its
        phrasings (a margin on the shipped FAQ cost 11 points of recall, no precision).

        A thin best entry must lead the runner-up by `margin`, and when a neighbour is within
        CLOSE its answer text must not be closer to the question than the best entry's own:
        "where is the recording of the live session" ties the timetable entry's phrasing, but
        the replay entry's answer is the one about recordings."""
        if not matches:
            return "nothing matched"
        top = matches[0]
        for rank, other in enumerate(matches[1 : 1 + NEIGHBOURS], start=1):
            if min(len(top.entry.questions), len(other.entry.questions)) >= FEW_PHRASINGS:
                continue
            lead = top.score - other.score
            if rank == 1 and lead < self.margin:
                return (
                    f"{top.entry.id} leads {other.entry.id} by less than {self.margin:.2f}: "
                    "suggested, not answered"
                )
            if lead < self.close and other.answer > top.answer:
                return (
                    f"{top.entry.id} leads {other.entry.id} by less than {self.close:.2f} and "
                    f"{other.entry.id}'s answer is closer to the question ({other.answer:.2f} "
                    f"against {top.answer:.2f}): suggested, not answered"
                )
        return None

    def thin(self, matches: Sequence[FaqMatch]) -> bool:
        """Answered, but on thin evidence: the best score barely clears the answer threshold,
        or a thin entry barely clears its margin. The answer then names its question."""
        if not matches:
            return False
        top = matches[0]
        if top.dense >= ASKED_AS_WRITTEN:
            return False  # asked (almost) as one of its phrasings: nothing to name
        if top.score < self.answer + THIN_BAND:
            return True
        if len(matches) < 2 or len(top.entry.questions) >= FEW_PHRASINGS:
            return False
        return top.score - matches[1].score < 2 * self.margin

    def describe(self) -> str:
        lead = (
            f"lead ≥ {self.margin:.2f} over the runner-up where an entry has fewer than "
            f"{FEW_PHRASINGS} phrasings, and within {self.close:.2f} of a neighbour an answer text "
            "as close to the question as the neighbour's"
        )
        if self.precision is None or self.recall is None:
            return (
                f"answer ≥ {self.answer:.2f}, suggest ≥ {self.suggest:.2f}, {lead} ({self.source})"
            )
        measured = (
            f"the median lead of {self.wrong_leaders} wrong entries that came first"
            if self.wrong_leaders >= ENOUGH_WRONG_LEADERS
            else f"default: only {self.wrong_leaders} wrong entries came first, too few to measure"
        )
        return (
            f"answer ≥ {self.answer:.2f}, suggest ≥ {self.suggest:.2f}, {lead} ({self.source}; "
            f"asked without itself, {self.recall:.0%} of {self.samples} question variants got "
            f"their own entry, {self.precision:.0%} of answers were right; margin: {measured})"
        )


class FaqIndex:
    """An index over one version of the FAQ, calibrated once after it is built and not changed
    after that; a new edit builds a new index.

    Up to `approximate_above` variants the dense search is exact (every variant); past it, an HNSW
    graph keeps a search in milliseconds at a small cost in recall."""

    def __init__(
        self,
        entries: Sequence[FaqEntry],
        encoder: Encoder,
        dense_weight: float = 0.6,
        approximate_above: int = 20_000,
        answer_weight: float = 0.0,
        mix: float = ANSWER_MIX,
        coverage: float = COVERAGE,
    ) -> None:
        self.entries = list(entries)
        self.by_id = {e.id: e for e in self.entries}
        self.dense_weight = dense_weight
        self._encoder = encoder
        # Rows are stored entry by entry — its question variants, then (with `answer_weight`)
        # its answer in each language no question is written in — so entry i owns rows
        # _starts[i] .. _starts[i+1]-1. An answer row's scores count `answer_weight` times: it
        # can bring a question to its entry, but a question variant that matches as well wins.
        rows = []
        for i, e in enumerate(self.entries):
            rows += [(i, q, 1.0, True) for q in e.questions]
            if answer_weight:
                rows += [
                    (i, a, answer_weight, False)
                    for language, a in e.answer.items()
                    if answer_is_searched(e, language)
                ]
        self._variant_entry = np.array([r[0] for r in rows], dtype=np.int64)
        self._texts = [r[1] for r in rows]
        self._weight = np.array([r[2] for r in rows], dtype=np.float32)
        self._is_question = np.array([r[3] for r in rows], dtype=bool)
        self._starts = np.searchsorted(self._variant_entry, np.arange(len(self.entries)))
        self.variants = [q for e in self.entries for q in e.questions]
        # Character n-grams cannot match across languages, so a fused score holds a row in
        # another language than the customer's to 0.6-0.7 of its cosine. Where the entry has a
        # question in the customer's language that is fair: that question says it better. Where
        # it has none (an English question on a Chinese-only entry), the entry would lose to any
        # neighbour asked in English; there its other-language rows score by the embedding
        # alone. _across[language] marks those rows.
        row_language = [detect(t, default="") for t in self._texts]
        asked_in = [{detect(q, default="") for q in e.questions} for e in self.entries]
        self._across = {
            language: np.array(
                [
                    other not in ("", language) and language not in asked_in[e]
                    for other, e in zip(row_language, self._variant_entry, strict=True)
                ],
                dtype=bool,
            )
            for language in set(row_language) - {""}
        }
        self._vectors = encoder.encode(self._texts)
        dim = self._vectors.shape[1]
        # an exact search is one product over every variant; a graph only past approximate_above
        self._index: faiss.Index | None = None
        if len(self._texts) > approximate_above:
            self._index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            self._index.hnsw.efConstruction = 80
            self._index.hnsw.efSearch = 128
            self._index.add(self._vectors)
        self._tfidf = SoundAwareMatcher()
        # n-grams × variants (and × answers below): kept transposed, as every product with
        # the customers' texts wants it, rather than transposed again for each batch
        self._lexical = (
            self._tfidf.fit_transform(self._texts).T.tocsr() if self._texts else csr_matrix((0, 0))
        )
        # every answer in every language, to ask which of two close entries' answers speaks
        # to the question (`Thresholds.doubt`); not searched
        answers = [(i, a) for i, e in enumerate(self.entries) for a in e.answer.values() if a]
        self._answer_entry = np.array([i for i, _ in answers], dtype=np.int64)
        self._answer_vectors = encoder.encode([a for _, a in answers]) if answers else None
        self._answer_lexical = (
            self._tfidf.transform([a for _, a in answers]).T.tocsr()
            if answers and self._texts
            else None
        )
        self._mix = np.array([answer_mix(len(e.questions), mix) for e in self.entries])
        # like the answer text, coverage speaks for an entry with few phrasings; one the admin
        # phrased four ways or more is told apart by its phrasings
        self._coverage_share = np.array(
            [coverage if len(e.questions) < FEW_PHRASINGS else 0.0 for e in self.entries],
            dtype=np.float32,
        )
        self._coverage = self._wording(encoder) if self._coverage_share.any() else None
        self.thresholds = Thresholds(0.6, 0.45, "default")

    def _wording(self, encoder: Encoder) -> Coverage | None:
        """Every entry's word pieces (its phrasings and its answer in every language), when
        the encoder gives token vectors (the default one does; others: no coverage)."""
        tokens_from = token_encoder(encoder)
        if tokens_from is None or not self.entries:
            return None
        counts = self._coverage_share > 0
        texts = [
            (int(self._variant_entry[r]), r, self._texts[r])
            for r in range(len(self._texts))
            if self._is_question[r] and counts[self._variant_entry[r]]
        ]
        texts += [
            (i, -1, a)
            for i, e in enumerate(self.entries)
            if counts[i]
            for a in e.answer.values()
            if a
        ]
        _, tokens = tokens_from.encode_tokens([t for _, _, t in texts])
        weights = piece_weights(tokens_from.piece_ids)
        return Coverage(
            [(e, source, t) for (e, source, _), t in zip(texts, tokens, strict=True)],
            len(self.entries),
            weights,
        )

    @property
    def reads_wording(self) -> bool:
        """Does scoring want each text's token vectors (`read`)?"""
        return self._coverage is not None

    def read(self, texts: Sequence[str]) -> tuple[np.ndarray, list[Tokens] | None]:
        """`embed`, and with coverage on, each text's token vectors from the same encoder pass."""
        tokens_from = token_encoder(self._encoder) if self._coverage is not None else None
        if tokens_from is None:
            return self.embed(texts), None
        vectors, tokens = tokens_from.encode_tokens(texts)
        return vectors, tokens

    def _tokens(
        self,
        texts: Sequence[str],
        rows: Sequence[int] | None = None,
        given: Sequence[Tokens | None] | None = None,
    ) -> list[Tokens]:
        """Token vectors of `texts`: those `given`, a FAQ phrasing's (row `rows[i]`) as kept,
        the others read."""
        assert self._coverage is not None
        kept: list[Tokens | None] = []
        for i in range(len(texts)):
            if given is not None and given[i] is not None:
                kept.append(given[i])
            else:
                kept.append(self._coverage.tokens_of(int(rows[i])) if rows is not None else None)
        missing = [i for i, t in enumerate(kept) if t is None]
        tokens_from = token_encoder(self._encoder)
        if missing and tokens_from is not None:
            _, read = tokens_from.encode_tokens([texts[i] for i in missing])
            for i, t in zip(missing, read, strict=True):
                kept[i] = t
        empty = Tokens(np.zeros(0, np.int64), np.zeros((0, 512), np.float32))
        return [t if t is not None else empty for t in kept]

    @property
    def variant_count(self) -> int:
        return len(self.variants)

    @property
    def approximate(self) -> bool:
        return self._index is not None

    def held_out(self, limit: int = 4000) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Question phrasings of entries that have several (at most `limit`, evenly spread),
        their vectors, and the best fused score each gets from the FAQ without itself — what a
        customer asking it in other words would meet."""
        rows = [
            r
            for r, e in enumerate(self._variant_entry)
            if self._is_question[r] and len(self.entries[e].questions) > 1
        ]
        if len(rows) > limit:
            rows = [rows[int(i)] for i in np.linspace(0, len(rows) - 1, limit)]
        texts = [self._texts[r] for r in rows]
        if not rows:
            return texts, np.zeros((0, self._vectors.shape[1]), dtype=np.float32), np.zeros(0)
        vectors = self._vectors[rows]
        best = self.entry_scores(texts, vectors, rows).max(axis=1)
        return texts, vectors, best

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of `texts` by this index's encoder, to share with the intent classifier."""
        return self._encoder.encode(texts)

    def search(self, text: str, k: int = 5, vector: np.ndarray | None = None) -> list[FaqMatch]:
        """The best `k` entries for `text`, best first; an entry scores as its best variant.
        `vector`: the text's embedding (1 × dim) when the caller has it already."""
        query, tokens = self.read([text]) if vector is None else (vector, None)
        return self.search_many([text], query, k, tokens)[0]

    def search_many(
        self,
        texts: Sequence[str],
        vectors: np.ndarray,
        k: int = 5,
        tokens: Sequence[Tokens] | None = None,
    ) -> list[list[FaqMatch]]:
        """`search` for several texts at once (one product over the variants, one sparse
        product): concurrent messages are scored together."""
        return [
            [] if scores is None else scores.best(self.entries, k)
            for scores in self.score_many(texts, vectors, k, tokens)
        ]

    def score_many(
        self,
        texts: Sequence[str],
        vectors: np.ndarray,
        k: int = 5,
        tokens: Sequence[Tokens] | None = None,
    ) -> list[EntryScores | None]:
        """Every entry's scores for each text (None for an empty text): exact up to
        `approximate_above` variants; past it, the variants the graph finds among the first
        `k` × 8 (at least 32), the others scoring 0 by meaning. `tokens`: the texts' token
        vectors from `read` (read here when coverage wants them and they are not given)."""
        results: list[EntryScores | None] = [None for _ in texts]
        live = [i for i, text in enumerate(texts) if text.strip()]
        if not self.entries or not live:
            return results
        asked = [texts[i] for i in live]
        queries = self._tfidf.transform(asked)
        if self.approximate:
            dense, lexical = self._found_scores(asked, vectors[live], queries, k)
        else:
            dense, lexical = self._question_scores(asked, vectors[live], queries)
        fused = self.dense_weight * dense + (1 - self.dense_weight) * lexical
        answers = self._answer_scores(vectors[live], queries)
        fused = with_answers(fused, answers, self._mix)
        if self._coverage is not None:
            read = [tokens[i] for i in live] if tokens is not None else self._tokens(asked)
            fused = self._coverage.mix(fused, read, self._coverage_share)
        for n, i in enumerate(live):
            results[i] = EntryScores(fused[n], dense[n], lexical[n], answers[n], self)
        return results

    def _question_scores(
        self,
        texts: Sequence[str],
        vectors: np.ndarray,
        queries: csr_matrix,
        leave_out: Sequence[int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each text's best variant of each entry, by meaning (≥ 0) and by wording, over every
        variant (texts × entries each). With `leave_out`, text i does not see variant row
        leave_out[i] (-1: sees all)."""
        dense = (vectors @ self._vectors.T) * self._weight
        lexical = (queries @ self._lexical).toarray().astype(np.float32) * self._weight
        # rows in another language on an entry never asked in the customer's: the embedding
        # stands in for the n-grams that cannot match (see __init__)
        lexical = np.where(self._reach(texts), np.maximum(lexical, dense), lexical)
        if leave_out is not None:
            rows = np.arange(len(texts))
            cols = np.asarray(leave_out)
            keep = cols >= 0
            dense[rows[keep], cols[keep]] = -1.0
            lexical[rows[keep], cols[keep]] = 0.0
        return (
            np.maximum(np.maximum.reduceat(dense, self._starts, axis=1), 0.0),
            np.maximum.reduceat(lexical, self._starts, axis=1),
        )

    def _found_scores(
        self, texts: Sequence[str], vectors: np.ndarray, queries: csr_matrix, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """`_question_scores` over the variants the HNSW graph finds for each text."""
        assert self._index is not None
        dense_scores, rows = self._index.search(
            np.ascontiguousarray(vectors), min(len(self._texts), max(k * 8, 32))
        )
        # an entry scores as its best variant among the rows faiss found (-1: none found)
        found = rows >= 0
        queries_at = np.broadcast_to(np.arange(len(texts))[:, None], rows.shape)[found]
        rows_found = rows[found]
        entries_found = self._variant_entry[rows_found]
        weighted = (dense_scores[found] * self._weight[rows_found]).astype(np.float32)
        dense = np.full((len(texts), len(self.entries)), -1.0, dtype=np.float32)
        np.maximum.at(dense, (queries_at, entries_found), weighted)
        reached = self._reach(texts)[queries_at, rows_found]
        across = np.zeros((len(texts), len(self.entries)), dtype=np.float32)
        np.maximum.at(across, (queries_at[reached], entries_found[reached]), weighted[reached])
        lexical_variants = (queries @ self._lexical).toarray().astype(np.float32) * self._weight
        lexical = np.maximum(np.maximum.reduceat(lexical_variants, self._starts, axis=1), across)
        return np.maximum(dense, 0.0), lexical

    def _reach(self, texts: Sequence[str]) -> np.ndarray:
        """texts × variant rows: the rows each text is matched with by meaning in place of
        wording (`_across`)."""
        nowhere = np.zeros(len(self._texts), dtype=bool)
        return np.stack([self._across.get(detect(t, default=""), nowhere) for t in texts])

    def _answer_scores(self, vectors: np.ndarray, queries: csr_matrix) -> np.ndarray:
        """Each query against each entry's answer texts (queries × entries), fused as an
        entry's questions are: the closest language by meaning and the closest by wording (an
        English question can come nearer the Chinese answer by meaning than the English one)."""
        out = np.zeros((vectors.shape[0], len(self.entries)), dtype=np.float32)
        if self._answer_vectors is None or self._answer_lexical is None:
            return out
        answered, first = np.unique(self._answer_entry, return_index=True)
        dense = np.maximum.reduceat(vectors @ self._answer_vectors.T, first, axis=1)
        lexical = np.maximum.reduceat((queries @ self._answer_lexical).toarray(), first, axis=1)
        out[:, answered] = (
            self.dense_weight * np.maximum(dense, 0.0) + (1 - self.dense_weight) * lexical
        )
        return out

    def entry_scores(
        self,
        texts: Sequence[str],
        vectors: np.ndarray,
        leave_out: Sequence[int] | None = None,
        tokens: Sequence[Tokens | None] | None = None,
    ) -> np.ndarray:
        """Exact fused scores (len(texts) × entries). With `leave_out`, query i does not see
        variant row leave_out[i] (-1: sees all) — how calibration asks "would this question be
        answered if the FAQ did not contain it word for word?". `tokens`: the texts' token
        vectors where the caller has them (None: read here when coverage wants them)."""
        out = np.zeros((len(texts), len(self.entries)), dtype=np.float32)
        for first in range(0, len(texts), CHUNK):
            last = min(first + CHUNK, len(texts))
            queries = self._tfidf.transform(texts[first:last])
            dense, lexical = self._question_scores(
                texts[first:last],
                vectors[first:last],
                queries,
                None if leave_out is None else leave_out[first:last],
            )
            questions = self.dense_weight * dense + (1 - self.dense_weight) * lexical
            answers = self._answer_scores(vectors[first:last], queries)
            out[first:last] = with_answers(questions, answers, self._mix)
            if self._coverage is not None:
                held = None if leave_out is None else leave_out[first:last]
                given = None if tokens is None else tokens[first:last]
                out[first:last] = self._coverage.mix(
                    out[first:last],
                    self._tokens(texts[first:last], held, given),
                    self._coverage_share,
                    held,
                )
        return out

    def calibrate(
        self,
        negatives: Sequence[str] = (),
        target_precision: float = 0.95,
        suggestions: int = 3,
        answer: float | None = None,
        suggest: float | None = None,
        margin: float | None = None,
        close: float = CLOSE,
    ) -> Thresholds:
        """Set the thresholds from the FAQ's own variants, leave-one-variant-out.

        Each variant of an entry with several asks the index without itself; `negatives`
        (messages the FAQ must not answer: greetings, thanks, out-of-scope examples) ask it too.
        The answer threshold is the lowest score at which at least `target_precision` of what
        is answered are FAQ questions and at most 1 - `target_precision` of the negatives are
        answered; the suggest threshold the lowest below it where at least half the suggestion
        lists hold the right entry. The thresholds record the precision and recall of the right
        entry coming first at the chosen answer threshold.

        The margin is the median lead over the runner-up of the held-out phrasings answered
        with a wrong entry: half of those wrong answers become suggestions. It is asked only of
        entries with few phrasings (see `Thresholds.leads_clearly`).
        `answer` / `suggest` / `margin` from config.toml override the calibrated values;
        `close` is config.toml's `neighbour_window` (see `Thresholds.doubt`)."""
        rows = [
            r
            for r, e in enumerate(self._variant_entry)
            if self._is_question[r] and len(self.entries[e].questions) > 1
        ]
        texts = [self._texts[r] for r in rows] + list(negatives)
        samples = len(rows)
        pinned = answer is not None or suggest is not None or margin is not None
        if samples < 10:
            chosen = answer if answer is not None else 0.6
            self.thresholds = Thresholds(
                chosen,
                min(suggest if suggest is not None else 0.45, chosen),
                "config" if pinned else "default (too few variants to calibrate)",
                margin=margin if margin is not None else DEFAULT_MARGIN,
                close=close,
            )
            return self.thresholds
        # the negatives read once, with their token vectors when coverage wants them
        negative_vectors, negative_tokens = self.read(list(negatives))
        vectors = np.vstack([self._vectors[rows], negative_vectors])
        tokens = None
        if negative_tokens is not None:
            tokens = [None for _ in rows] + list(negative_tokens)
        scores = self.entry_scores(texts, vectors, rows + [-1] * len(negatives), tokens)
        own = np.concatenate([self._variant_entry[rows], np.full(len(negatives), -1)])
        top = scores.argmax(axis=1)
        best = scores.max(axis=1)
        order = np.argsort(-scores, axis=1)[:, :suggestions]
        right = top == own
        in_list = (order == own[:, None]).any(axis=1)

        # Is it a FAQ question at all? Positives are the held-out variants, whichever entry
        # comes first; choosing between close entries is the index's job, not the threshold's.
        positives = own >= 0
        calibrated_answer = _lowest_with_precision(best, positives, target_precision)
        if len(negatives):
            # ... and at most 1 - target_precision of the non-FAQ messages get a FAQ answer
            calibrated_answer = max(
                calibrated_answer, float(np.quantile(best[~positives], target_precision))
            )
        chosen_answer = answer if answer is not None else calibrated_answer
        below = best < chosen_answer
        calibrated_suggest = _lowest_with_precision(
            np.where(below, best, -np.inf), positives & in_list & below, 0.5, ceiling=chosen_answer
        )
        chosen_suggest = (
            suggest
            if suggest is not None
            else min(calibrated_suggest, chosen_answer - MIN_SUGGEST_BAND)
        )
        answered = best >= chosen_answer
        ranked = np.sort(scores, axis=1)
        lead = ranked[:, -1] - ranked[:, -2] if scores.shape[1] > 1 else ranked[:, -1]
        wrong = positives & answered & ~right
        calibrated_margin = (
            float(np.median(lead[wrong])) if wrong.sum() >= ENOUGH_WRONG_LEADERS else DEFAULT_MARGIN
        )
        self.thresholds = Thresholds(
            round(float(chosen_answer), 3),
            round(float(chosen_suggest), 3),
            "config" if pinned else "calibrated",
            float(right[answered].mean()) if answered.any() else 1.0,
            float((right & answered)[positives].mean()),
            samples,
            round(margin if margin is not None else calibrated_margin, 3),
            int(wrong.sum()),
            close,
        )
        return self.thresholds


#: below these, calibration measures too little to be trusted (see `calibration_evidence`)
ENOUGH_HELD_OUT = 30
ENOUGH_NEGATIVES = 20
MAX_THIN_SHARE = 0.25


def calibration_evidence(entries: Sequence[FaqEntry], negatives: int) -> list[tuple[str, str]]:
    """What calibration will lack on this content, as (problem, fix) pairs; empty when it has
    enough. Calibration asks each phrasing of an entry with two or more without itself, and the
    examples of what the FAQ must not answer (small talk, out-of-scope): with few of either the
    thresholds it sets are guesses."""
    weak: list[tuple[str, str]] = []
    held_out = sum(len(e.questions) for e in entries if len(e.questions) > 1)
    thin = [e.id for e in entries if len(e.questions) < 3]
    if entries and held_out < ENOUGH_HELD_OUT:
        weak.append(
            (
                f"FAQ calibration has too little evidence: only {held_out} phrasings can be asked "
                f"without themselves (it needs {ENOUGH_HELD_OUT} or more to set the answer "
                "threshold)",
                "give more entries a second and third way to ask, as customers would",
            )
        )
    if entries and len(thin) > MAX_THIN_SHARE * len(entries):
        shown = ", ".join(thin[:5]) + (" …" if len(thin) > 5 else "")
        weak.append(
            (
                f"{len(thin)} of {len(entries)} FAQ entries have fewer than three phrasings "
                f"({shown}): asked without itself, each phrasing meets one other or none, so "
                "calibration sets the thresholds on thin evidence",
                "give these entries three or more ways to ask, as customers would",
            )
        )
    if entries and negatives < ENOUGH_NEGATIVES:
        weak.append(
            (
                f"FAQ calibration has too little evidence: only {negatives} examples of what the "
                f"FAQ must not answer (it needs {ENOUGH_NEGATIVES} or more)",
                "add examples of questions the shop does not handle to the out_of_scope intent "
                "in intents/ (other shops' products, weather, chit-chat)",
            )
        )
    return weak


def answer_mix(phrasings: int, mix: float = ANSWER_MIX) -> float:
    """How much an entry's answer counts beside its phrasings: `mix` for an entry with fewer
    than FEW_PHRASINGS, none for one the admin gave more (its phrasings say what it is about:
    mixing the answer in for those cost the shipped FAQ 6 of 144 cases)."""
    return mix if phrasings < FEW_PHRASINGS else 0.0


def with_answers(questions: np.ndarray, answers: np.ndarray, mix: np.ndarray) -> np.ndarray:
    """Entries' scores: their best question phrasing's, mixed with their answer text's."""
    return np.asarray((questions + mix * answers) / (1 + mix), dtype=np.float32)


def answer_is_searched(entry: FaqEntry, language: str) -> bool:
    """An answer is searched in a language none of the entry's questions is written in: an
    English question on a Chinese-only entry then meets the English answer. Where the admin
    wrote questions in the language, they say it better than a paragraph does (indexing every
    answer cost the shipped FAQ 3 points of recall on bench/cases.jsonl)."""
    return not any(detect(question) == language for question in entry.questions)


def _lowest_with_precision(
    scores: np.ndarray, good: np.ndarray, target: float, ceiling: float = 1.0
) -> float:
    """The lowest score t such that, of everything scoring ≥ t, at least `target` is good;
    `ceiling` when no such t exists."""
    finite = np.isfinite(scores)
    scores, good = scores[finite], good[finite]
    if not len(scores):
        return ceiling
    order = np.argsort(-scores, kind="stable")
    precision = np.cumsum(good[order]) / np.arange(1, len(order) + 1)
    sorted_scores = scores[order]
    # only cut between distinct scores
    last_of_run = np.append(sorted_scores[1:] != sorted_scores[:-1], True)
    ok = np.flatnonzero((precision >= target) & last_of_run)
    if not len(ok):
        return ceiling
    return float(min(sorted_scores[ok[-1]], ceiling))
