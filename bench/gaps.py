"""How close two unanswered questions must be to be grouped (bot/understanding/gaps.py
GROUP_AT), measured on the hand-made set in tests/fixtures/gaps_questions.yaml; prints JSON.

    python bench/gaps.py

Prints {"encoder", "questions", "topics", "sweep": {"<threshold>": {"ari", "groups"}}}: the
adjusted Rand index between the groups `bot faq gaps` would show and the hand-made topics (each
noise line its own topic), and how many groups it made.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sklearn.metrics import adjusted_rand_score

from bot.store.gap_reads import FELL_BACK, Unanswered
from bot.understanding.encoders import UseEncoder
from bot.understanding.gaps import groups

SET = Path(__file__).parent.parent / "tests" / "fixtures" / "gaps_questions.yaml"
THRESHOLDS = (0.35, 0.40, 0.42, 0.45, 0.48, 0.50, 0.55, 0.60)


def labelled() -> tuple[list[str], list[str]]:
    """The set's texts and their topics (each noise line a topic of its own)."""
    data = yaml.safe_load(SET.read_text(encoding="utf-8"))
    texts, topics = [], []
    for topic, phrasings in data["topics"].items():
        texts += phrasings
        topics += [topic] * len(phrasings)
    texts += data["noise"]
    topics += [f"noise-{n}" for n in range(len(data["noise"]))]
    return texts, topics


def sweep(encoder: Any, thresholds: tuple[float, ...] = THRESHOLDS) -> dict[str, dict[str, float]]:
    texts, topics = labelled()
    # each text asked once, by a customer of its own (grouping reads only the text)
    now = datetime.now(UTC)
    asked = [Unanswered(n, n, f"c{n}", t, now, FELL_BACK) for n, t in enumerate(texts)]
    vectors = encoder.encode(texts)
    result = {}
    for threshold in thresholds:
        predicted = [0] * len(texts)
        for n, group in enumerate(groups(asked, vectors, threshold)):
            for members in group:
                for i in members:
                    predicted[i] = n
        result[f"{threshold:.2f}"] = {
            "ari": round(float(adjusted_rand_score(topics, predicted)), 3),
            "groups": len(set(predicted)),
        }
    return result


if __name__ == "__main__":
    encoder = UseEncoder()
    texts, topics = labelled()
    print(
        json.dumps(
            {
                "encoder": encoder.name,
                "questions": len(texts),
                "topics": len(set(topics)),
                "sweep": sweep(encoder),
            },
            ensure_ascii=False,
        )
    )
