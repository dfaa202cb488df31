"""Questions asked in a language an entry has no phrasing in (English on a Chinese-only entry):
how many `bot eval --json` answered right, answered wrong, or covered (right answer, or the
right entry among the first three suggestions). Prints JSON.

    .venv/bin/bot --config path/to/shop/config.toml eval path/to/cases.jsonl \\
        --json > /tmp/result.json
    .venv/bin/python bench/cross_language.py path/to/shop/config.toml \\
        path/to/cases.jsonl /tmp/result.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bot.content.config import load_config
from bot.content.entries import read_faq
from bot.understanding.language import detect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("cases", type=Path, help="the cases file given to bot eval")
    parser.add_argument("result", type=Path, help="bot eval --json output")
    args = parser.parse_args()
    config = load_config(args.config)
    entries, _ = read_faq(config.resolve(config.content.faq))
    asked_in = {e.id: {detect(q) for q in e.questions} for e in entries}
    texts = {}
    for line in args.cases.read_text(encoding="utf-8").splitlines():
        if line.strip():
            case = json.loads(line)
            texts[case["id"]] = case["text"]
    asked = right = wrong = covered = 0
    for case in json.loads(args.result.read_text(encoding="utf-8"))["cases"]:
        expected, got = case["expect"].get("faq"), case["got"]
        if expected not in asked_in or detect(texts[case["id"]]) in asked_in[expected]:
            continue
        asked += 1
        right += got["faq"] == expected
        wrong += got["faq"] is not None and got["faq"] != expected
        covered += got["faq"] == expected or (
            got["faq"] is None and expected in got.get("suggestions", [])[:3]
        )
    print(json.dumps({"asked": asked, "right": right, "wrong": wrong, "covered": covered}))


if __name__ == "__main__":
    main()
