"""Fuzzing at length: the properties tests/test_content_fuzz.py and tests/test_console_fuzz.py
check briefly in CI, each run on `--examples` inputs (10^5 by default); prints JSON.

    python bench/fuzz.py [--examples 100000] [--only config,faq,...]

Per parser: `inputs` run, `failures` found (a property broken, not a stop at the first),
`seconds`, the slowest input, and the first input of each kind of failure. The parsers:
`config`, `faq`, `intents`, `schedules` (a shipped file replaced by a wrong document or a byte
mutation of itself, then `bot check` and the schedule reload), `survey` (parse_score), `hours`
(the shipped schedules asked about any moment), `console` (every form and query string as a
logged-in supervisor, on the fixture shop). A `bot check` costs about 0.1-0.2 s, so 10^5
content inputs take hours on 2 cores; `--examples` lowers it.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import strategies as st

from bot.hours.schedule import load_schedules
from tests.support import fuzzing

PARSERS = ("config", "faq", "intents", "schedules", "survey", "hours", "console")


def _console(examples: int, scratch: Path) -> dict[str, Any]:
    """The console on a copy of the fixture shop, learnt with the real encoder once."""
    import shutil

    from bot.assembly import load_knowledge
    from bot.content.config import load_config
    from bot.understanding.encoders import MemoEncoder, UseEncoder
    from tests.support.shop import FIXTURE
    from tests.test_console_fuzz import logged_in

    shop = scratch / "shop"
    shutil.copytree(FIXTURE, shop, ignore=shutil.ignore_patterns("var"))
    config = load_config(shop / "config.toml")
    encoder = MemoEncoder(UseEncoder())
    knowledge = load_knowledge(config, encoder)
    loop = asyncio.new_event_loop()
    console, token = loop.run_until_complete(logged_in(config, encoder, scratch, knowledge))

    def prop(request: dict[str, Any]) -> list[str]:
        return loop.run_until_complete(fuzzing.console_property(console.client, token, request))

    try:
        return fuzzing.run_counting(prop, fuzzing.console_requests, examples)
    finally:
        loop.run_until_complete(console.client.close())
        console.pipeline.store.close()
        loop.close()


def run(name: str, examples: int, scratch: Path) -> dict[str, Any]:
    if name in fuzzing.SHIPPED:
        config_path = fuzzing.copy_shipped(scratch / name)
        prop = functools.partial(fuzzing.content_property, config_path, name)
        return fuzzing.run_counting(prop, fuzzing.documents(name), examples)
    if name == "survey":
        return fuzzing.run_counting(
            fuzzing.survey_property,
            st.tuples(fuzzing.survey_texts, fuzzing.survey_scales).map(
                lambda pair: (pair[0], *pair[1])
            ),
            examples,
        )
    if name == "hours":
        schedules = load_schedules(fuzzing.ROOT / "schedules")
        return fuzzing.run_counting(
            fuzzing.schedule_property,
            st.tuples(st.sampled_from(sorted(schedules)).map(schedules.get), fuzzing.moments),
            examples,
        )
    return _console(examples, scratch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000, help="inputs per parser")
    parser.add_argument("--only", default=",".join(PARSERS), help="comma-separated parsers")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(PARSERS))
    if unknown:
        parser.error(f"unknown parser(s) {', '.join(unknown)}; choose from {', '.join(PARSERS)}")
    started = time.perf_counter()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bot-fuzz-") as scratch:
        for name in chosen:
            folder = Path(scratch) / name
            folder.mkdir()
            results[name] = run(name, args.examples, folder)
            print(f"{name}: {results[name]['inputs']} inputs, {results[name]['failures']} "
                  f"failures, {results[name]['seconds']} s", file=sys.stderr)  # fmt: skip
    print(
        json.dumps(
            {
                "examples_per_parser": args.examples,
                "parsers": results,
                "total_inputs": sum(r["inputs"] for r in results.values()),
                "total_failures": sum(r["failures"] for r in results.values()),
                "seconds": round(time.perf_counter() - started, 1),
            },
            ensure_ascii=False,
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
