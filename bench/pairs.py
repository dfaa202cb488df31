"""Does a "same question" scorer learnt over the sentence embedding read questions better than
the embedding's cosine? Prints JSON.

    python bench/pairs.py --data path/to/benchmarks [--devshops] [--per-intent 8000]

A logistic regression over a pair's features (the two unit vectors' element-wise product and
absolute difference, and their cosine) is learnt from pairs of the CC BY intent sets in
<--data> (CLINC150 with its out-of-scope rows, BANKING77, HWU64): for each sentence its two
nearest sentences of the same intent are "same", its two nearest of another intent (and, for
an out-of-scope row, its two nearest in-scope sentences) "not the same". Nearest on both sides,
so the cosine alone cannot tell them apart and the model has to learn something else.

Reported, as ROC AUC of "same question" (cosine / learnt):
- held-out English pairs of the same kind (a fifth of them, not learnt from);
- BQ dev and test and ATEC, Chinese customer-service question pairs: research-only, evaluated
  here and never learnt from;
- with --devshops, for every case of the five dev deployments (bench/devshops) that expects an
  FAQ entry or nothing: whether the bot's first entry is the right one, by its fused score, by
  the meaning score alone, by the learnt scorer against the entry's phrasings, and by the
  learnt scorer fitted on the deployment's own phrasings instead (pairs of one entry "same",
  of two entries or of an out_of_scope example and an entry "not the same": what start-up
  could learn).

The model is not shipped: docs/measurements.md ("Measured, not built") says why.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from devshops import HERE

from bot.assembly import content_encoder, load_knowledge
from bot.content.config import load_config
from bot.understanding.encoders import Encoder, UseEncoder

#: same-intent and other-intent neighbours taken per sentence
NEAREST = 2


def features(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.hstack([a * b, np.abs(a - b), (a * b).sum(axis=1, keepdims=True)])


def intent_sets(data: Path) -> dict[str, tuple[list[str], list[str]]]:
    clinc = json.loads((data / "clinc150/data_full.json").read_text("utf-8"))
    rows = clinc["train"] + clinc["oos_train"]
    sets = {"clinc150": ([t for t, _ in rows], [y for _, y in rows])}
    for name in ("banking77", "hwu64"):
        with (data / name / "train.csv").open(encoding="utf-8-sig") as f:
            table = list(csv.DictReader(f))
        sets[name] = ([r["text"] for r in table], [r["category"] for r in table])
    return sets


def nearest_pairs(vectors: np.ndarray, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) index pairs and whether each is the same intent (see the module's docstring)."""
    y = np.asarray(labels)
    similar = vectors @ vectors.T
    np.fill_diagonal(similar, -np.inf)
    pairs: list[tuple[int, int, int]] = []
    for i in range(len(y)):
        same = y == y[i]
        if y[i] != "oos":
            pairs += [
                (i, int(j), 1) for j in np.argsort(-np.where(same, similar[i], -np.inf))[:NEAREST]
            ]
        other = ~same if y[i] != "oos" else y != "oos"
        pairs += [
            (i, int(j), 0) for j in np.argsort(-np.where(other, similar[i], -np.inf))[:NEAREST]
        ]
    table = np.array(pairs)
    return table[:, :2], table[:, 2]


def auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    return round(float(roc_auc_score(labels, scores)), 4) if 0 < labels.mean() < 1 else None


def learn(
    data: Path, encoder: Encoder, per_intent_set: int, seed: int
) -> tuple[LogisticRegression, dict[str, Any]]:
    rng = np.random.default_rng(seed)
    a_parts, b_parts, labels = [], [], []
    for texts, intents in intent_sets(data).values():
        keep = rng.permutation(len(texts))[:per_intent_set]
        vectors = encoder.encode([texts[i] for i in keep])
        index, same = nearest_pairs(vectors, [intents[i] for i in keep])
        a_parts.append(vectors[index[:, 0]])
        b_parts.append(vectors[index[:, 1]])
        labels.append(same)
    a, b, y = np.vstack(a_parts), np.vstack(b_parts), np.concatenate(labels)
    order = rng.permutation(len(y))
    train, test = order[: len(y) * 4 // 5], order[len(y) * 4 // 5 :]
    model = LogisticRegression(C=0.1, max_iter=3000).fit(features(a[train], b[train]), y[train])
    held_out = {
        "pairs": len(test),
        "cosine": auc(y[test], (a[test] * b[test]).sum(axis=1)),
        "learnt": auc(y[test], model.decision_function(features(a[test], b[test]))),
    }
    return model, {"learnt_from_pairs": len(train), "english_held_out": held_out}


def chinese_pairs(data: Path) -> dict[str, list[tuple[str, str, int]]]:
    out: dict[str, list[tuple[str, str, int]]] = {}
    for split in ("dev", "test"):
        with (data / f"bq_corpus/{split}.csv").open(encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))[1:]
        out[f"bq_{split}"] = [(r[0], r[1], int(r[2])) for r in rows if len(r) >= 3]
    with (data / "atec/atec_nlp_sim_train.csv").open(encoding="utf-8-sig") as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    out["atec"] = [(r[1].lstrip("\ufeff"), r[2], int(r[3])) for r in rows if len(r) == 4]
    return out


def pair_figures(
    model: LogisticRegression, encoder: Encoder, pairs: list[tuple[str, str, int]]
) -> dict[str, Any]:
    a = encoder.encode([p[0] for p in pairs])
    b = encoder.encode([p[1] for p in pairs])
    y = np.array([p[2] for p in pairs])
    return {
        "pairs": len(pairs),
        "cosine": auc(y, (a * b).sum(axis=1)),
        "learnt": auc(y, model.decision_function(features(a, b))),
    }


def own_model(
    phrasings: np.ndarray, entry_of: np.ndarray, outside: np.ndarray
) -> LogisticRegression:
    """The scorer learnt from one deployment's content alone, as start-up could."""
    i, j = np.meshgrid(np.arange(len(phrasings)), np.arange(len(phrasings)), indexing="ij")
    off = i != j
    a, b = phrasings[i[off]], phrasings[j[off]]
    y = (entry_of[i[off]] == entry_of[j[off]]).astype(int)
    if len(outside):
        o, q = np.meshgrid(np.arange(len(outside)), np.arange(len(phrasings)), indexing="ij")
        a = np.vstack([a, outside[o.ravel()]])
        b = np.vstack([b, phrasings[q.ravel()]])
        y = np.concatenate([y, np.zeros(o.size, dtype=int)])
    weight = np.where(y == 1, 1 / max(y.sum(), 1), 1 / max((1 - y).sum(), 1)) * len(y)
    return LogisticRegression(C=0.1, max_iter=3000).fit(features(a, b), y, sample_weight=weight)


def devshop_figures(model: LogisticRegression, folder: Path) -> dict[str, Any]:
    config = load_config(folder / "config.toml")
    encoder = content_encoder(config)
    knowledge = load_knowledge(config, encoder)
    skip = set()
    for listed in ("followup_ids.txt", "time_ids.txt"):
        if (folder / listed).is_file():
            skip |= set((folder / listed).read_text("utf-8").split())
    cases = [
        json.loads(line)
        for line in (folder / "cases.jsonl").read_text("utf-8").splitlines()
        if line.strip()
    ]
    kept = [
        (c["text"], c["expect"].get("faq"))
        for c in cases
        if c["id"] not in skip
        and "faq" in c["expect"]
        and (c["expect"]["faq"] or not (c["expect"].get("intent") or c["expect"].get("handoff")))
    ]
    readings = knowledge.read([text for text, _ in kept], k=1)
    entries = knowledge.faq.entries
    phrasings = [(e.id, q) for e in entries for q in e.questions]
    vectors = encoder.encode([q for _, q in phrasings])
    entry_of = np.array([e for e, _ in phrasings])
    outside_texts = [
        x for i in knowledge.intents.values() if i.name == "out_of_scope" for x in i.examples
    ]
    own = own_model(vectors, entry_of, encoder.encode(outside_texts))
    rows = [
        (r, expected)
        for r, (_, expected) in zip(readings, kept, strict=True)
        if r.matches and r.vector is not None
    ]
    right = np.array([r.matches[0].entry.id == expected for r, expected in rows])

    def against_entry(scorer: LogisticRegression) -> np.ndarray:
        out = []
        for r, _ in rows:
            own_rows = vectors[entry_of == r.matches[0].entry.id]
            query = np.repeat(np.asarray(r.vector)[None, :], len(own_rows), axis=0)
            out.append(scorer.decision_function(features(query, own_rows)).max())
        return np.array(out)

    return {
        "cases": len(rows),
        "first_entry_right": int(right.sum()),
        "fused": auc(right, np.array([r.matches[0].score for r, _ in rows])),
        "meaning": auc(right, np.array([r.matches[0].dense for r, _ in rows])),
        "learnt_public": auc(right, against_entry(model)),
        "learnt_own_content": auc(right, against_entry(own)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the public benchmarks' folder")
    parser.add_argument("--per-intent", type=int, default=8000, help="sentences per intent set")
    parser.add_argument("--devshops", action="store_true", help="also the five dev deployments")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    encoder = UseEncoder()
    model, report = learn(args.data, encoder, args.per_intent, args.seed)
    for name, pairs in chinese_pairs(args.data).items():
        report[name] = pair_figures(model, encoder, pairs)
    if args.devshops:
        report["devshops"] = {
            folder.name: devshop_figures(model, folder)
            for folder in sorted(HERE.joinpath("devshops").iterdir())
            if (folder / "cases.jsonl").is_file()
        }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
