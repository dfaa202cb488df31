"""Start-up and per-message cost of the whole pipeline on the embedded defaults; prints JSON.

`learn_content_s` is learning the FAQ and intents with an empty embedding cache (first start),
`learn_content_cached_s` a restart that finds the content's embeddings in the disk cache.

    python bench/pipeline.py [--config config.toml] [--cases bench/cases.jsonl] [--rounds 3]

Every case text goes through the real pipeline (masking, dedupe, SQLite writes, intent, FAQ
search, hours, compose, outbox) as a new message; latency is wall time per message.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bot.assembly import build_pipeline, load_knowledge
from bot.content.config import load_config
from bot.domain.clock import FixedClock
from bot.domain.messages import Inbound, Outbound
from bot.evaluation import evaluate, read_cases
from bot.understanding.encoders import MemoEncoder, make_encoder


class _Discard:
    def send(self, message: Outbound) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("config.toml"))
    parser.add_argument("--cases", type=Path, default=Path(__file__).parent / "cases.jsonl")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    config = load_config(args.config)
    cases = read_cases(args.cases)
    started = time.perf_counter()
    inner = make_encoder(config.encoder)
    inner.encode(["预热"])
    model_load_s = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as folder:
        encoder = MemoEncoder(inner, cache=Path(folder, "cache"))
        clock = FixedClock(datetime(2026, 11, 24, 2, 0, tzinfo=UTC))  # Tuesday 10:00 in Shanghai
        started = time.perf_counter()
        pipeline = build_pipeline(
            config, clock, _Discard(), store_url=f"sqlite:///{folder}/b.sqlite3", encoder=encoder
        )
        learn_s = time.perf_counter() - started
        started = time.perf_counter()
        load_knowledge(config, MemoEncoder(inner, cache=Path(folder, "cache")))
        learn_cached_s = time.perf_counter() - started
        thresholds = pipeline.knowledge.faq.thresholds
        # Each message from a new customer, so no conversation is handed off or flood-limited.
        # Texts are varied by round so the encoder's memo does not hide the encoding cost.
        latencies = []
        for round_ in range(args.rounds):
            for n, case in enumerate(cases):
                text = case.text if round_ == 0 else f"{case.text} {round_}"
                user = f"r{round_}-{n}"
                message = Inbound("bench", f"{user}-m", user, user, text, clock.now())
                t0 = time.perf_counter()
                pipeline.handle(message)
                latencies.append(time.perf_counter() - t0)
        pipeline.store.close()

    result = evaluate(config, cases, encoder)["summary"]
    latencies.sort()
    print(
        json.dumps(
            {
                "encoder": encoder.name,
                "model_load_s": round(model_load_s, 2),
                "learn_content_s": round(learn_s, 2),
                "learn_content_cached_s": round(learn_cached_s, 2),
                "faq_thresholds": thresholds.describe(),
                "messages": len(latencies),
                "latency_ms": {
                    "p50": round(1000 * statistics.median(latencies), 1),
                    "p95": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 1),
                    "max": round(1000 * latencies[-1], 1),
                },
                "messages_per_s": round(len(latencies) / sum(latencies), 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "eval": result,
            },
            ensure_ascii=False,
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
