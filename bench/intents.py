"""Intent classification on public benchmarks with the bot's own classifier; prints JSON.

    python bench/intents.py [--data ../shared/benchmarks] [--datasets banking77,clinc150,...]

Prints {"<dataset>": {"accuracy", "macro_f1", "train_s", ...}, ...}; clinc150 also carries
in-scope accuracy and out-of-scope recall/precision, trained with and without `oos_train`. The
data are read from the shared benchmarks folder and never shipped with the package.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections.abc import Sequence
from pathlib import Path

from sklearn.metrics import accuracy_score, f1_score

from bot.content import OUT_OF_SCOPE, IntentSpec
from bot.embeddings import MemoEncoder, UseEncoder
from bot.intents import IntentClassifier
from bot.messages import Category, Priority

OOS = "oos"


def _csv(path: Path, label: str) -> tuple[list[str], list[str]]:
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


def _run(
    train: tuple[list[str], list[str]],
    test: tuple[list[str], list[str]],
    encoder: MemoEncoder,
    threshold: float,
) -> tuple[list[str], float]:
    started = time.perf_counter()
    with encoder.learning():
        classifier = IntentClassifier(_specs(*train), encoder, threshold, faq_intent="-")
    train_s = time.perf_counter() - started
    with encoder.learning():  # benchmark texts, not customer messages: cache them for re-runs
        guesses = classifier.predict_many(test[0])
    return [g.intent.name if g.intent else OOS for g in guesses], train_s


def _scores(gold: list[str], predicted: list[str], train_s: float) -> dict[str, float]:
    return {
        "accuracy": round(accuracy_score(gold, predicted), 4),
        "macro_f1": round(f1_score(gold, predicted, average="macro"), 4),
        "train_s": round(train_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parent
    parser.add_argument("--data", type=Path, default=here.parent.parent / "shared" / "benchmarks")
    parser.add_argument("--datasets", default="banking77,clinc150,hwu64,smp2017")
    args = parser.parse_args()
    encoder = MemoEncoder(UseEncoder())
    wanted = args.datasets.split(",")
    result: dict[str, dict[str, float]] = {}
    no_threshold = 1e-9  # closed-set datasets: always take the best class

    for name, folder, label in (
        ("banking77", "banking77", "category"),
        ("hwu64", "hwu64", "category"),
        ("smp2017", "smp2017_ecdt_task1", "label"),
    ):
        if name in wanted:
            train, test = (
                _csv(args.data / folder / "train.csv", label),
                _csv(args.data / folder / "test.csv", label),
            )
            predicted, train_s = _run(train, test, encoder, no_threshold)
            result[name] = _scores(test[1], predicted, train_s)

    if "clinc150" in wanted:
        data = json.loads((args.data / "clinc150" / "data_full.json").read_text(encoding="utf-8"))
        test_rows = data["test"] + data["oos_test"]
        test = ([t for t, _ in test_rows], [label for _, label in test_rows])
        for variant, rows in (
            ("", data["train"] + data["oos_train"]),
            ("_no_oos_train", data["train"]),
        ):
            train = ([t for t, _ in rows], [label for _, label in rows])
            # The threshold is the product's default; issue 3 calibrates it on the val split.
            predicted, train_s = _run(train, test, encoder, 0.45)
            gold = test[1]
            in_scope = [i for i, g in enumerate(gold) if g != OOS]
            oos_gold = [i for i, g in enumerate(gold) if g == OOS]
            oos_predicted = [i for i, p in enumerate(predicted) if p == OOS]
            scores = _scores(gold, predicted, train_s)
            scores.update(
                {
                    "in_scope_accuracy": round(
                        sum(predicted[i] == gold[i] for i in in_scope) / len(in_scope), 4
                    ),
                    "oos_recall": round(
                        sum(predicted[i] == OOS for i in oos_gold) / len(oos_gold), 4
                    ),
                    "oos_precision": round(
                        sum(gold[i] == OOS for i in oos_predicted) / max(1, len(oos_predicted)), 4
                    ),
                }
            )
            result[f"clinc150{variant}"] = scores
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
