"""Five whole deployments in five trades, written by people who never saw the bot's code: the
figures a business gets on content nobody tuned for, the worst deployment counting.

    python bench/devshops.py                          # all of bench/devshops/, JSON out
    python bench/devshops.py bench/devshops/kangtu    # some
    python bench/devshops.py --table                  # a table with each figure's goal
    python bench/devshops.py --gate faq_precision>=0.9 --gate oos_answered<=0.2

Each folder holds config.toml, faq/, intents/, schedules/ and cases.jsonl, and may list
follow-up cases (followup_ids.txt: they only make sense after the same customer's previous
line) and time cases (time_ids.txt). Each deployment runs through `bot eval --json` in its own
process; every figure is recomputed here from the cases' `got`, by what each case expects:

- FAQ case: expects an entry (`faq` is an id) and is neither a time nor a follow-up case.
- out of scope: expects `faq: null`, no intent and no handoff.
- handoff: expects `handoff: true`; urgent: also `priority: urgent`.

faq_precision counts an out-of-scope question answered from the FAQ as a wrong answer;
faq_covered counts the right entry among the first three suggestions too; crosslingual is over
FAQ cases written in a language the entry has no phrasing in. A `--gate` that the worst
deployment misses makes the exit status 1.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
CJK = re.compile(r"[\u3400-\u9fff]")

#: figure, direction, goal: what a business needs on content nobody tuned for
GOALS = [
    ("faq_precision", ">=", 0.95),
    ("faq_recall", ">=", 0.70),
    ("faq_covered", ">=", 0.92),
    ("crosslingual_covered", ">=", 0.80),
    ("oos_answered", "<=", 0.05),
    ("handoff_recall", ">=", 0.95),
    ("urgent_recall", ">=", 1.0),
    ("handoff_precision", ">=", 0.90),
    ("queue_accuracy", ">=", 0.90),
    ("followup_accuracy", ">=", 0.80),
    ("after_hours_accuracy", ">=", 0.98),
]


def language(text: str) -> str:
    return "zh" if CJK.search(text) else "en"


def ids(path: Path) -> set[str]:
    return set(path.read_text("utf-8").split()) if path.is_file() else set()


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def phrasing_languages(folder: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in sorted((folder / "faq").glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text("utf-8")) or []:
            out[entry["id"]] = {language(q) for q in entry["questions"]}
    return out


def score(result: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Every figure of one deployment from its `bot eval --json` output."""
    lines = (folder / "cases.jsonl").read_text("utf-8").splitlines()
    cases = [json.loads(line) for line in lines if line.strip()]
    got = {c["id"]: c.get("got") or {} for c in result.get("cases", [])}
    followups, timed = ids(folder / "followup_ids.txt"), ids(folder / "time_ids.txt")
    languages = phrasing_languages(folder)

    def g(case: dict[str, Any]) -> dict[str, Any]:
        return got.get(case["id"], {})

    def holds(case: dict[str, Any]) -> bool:
        return all(g(case).get(k) == v for k, v in case["expect"].items())

    def right(case: dict[str, Any]) -> bool:
        return g(case).get("faq") == case["expect"]["faq"]

    def covered(case: dict[str, Any]) -> bool:
        offered = (g(case).get("suggestions") or [])[:3]
        return right(case) or (g(case).get("faq") is None and case["expect"]["faq"] in offered)

    def share(cases: list[dict[str, Any]], test: Callable[[dict[str, Any]], bool]) -> float | None:
        return rate(sum(map(test, cases)), len(cases))

    special = followups | timed
    with_faq = [c for c in cases if "faq" in c["expect"]]
    answered = [c for c in with_faq if g(c).get("faq") is not None]
    wanted = [c for c in with_faq if c["expect"]["faq"] is not None]
    paraphrases = [c for c in wanted if c["id"] not in special]
    cross = [
        c
        for c in paraphrases
        if language(c["text"]) not in languages.get(c["expect"]["faq"], {language(c["text"])})
    ]
    out_of_scope = [
        c
        for c in with_faq
        if c["expect"]["faq"] is None
        and "intent" not in c["expect"]
        and not c["expect"].get("handoff")
        and c["id"] not in special
    ]
    with_handoff = [c for c in cases if "handoff" in c["expect"]]
    needed = [c for c in with_handoff if c["expect"]["handoff"]]
    routed = [c for c in needed if "queue" in c["expect"]]
    time_cases = [c for c in cases if c["id"] in timed and "after_hours" in c["expect"]]
    return {
        "cases": len(cases),
        "passed": share(cases, holds),
        "faq_precision": share(answered, right),
        "faq_recall": share(wanted, right),
        "faq_covered": share(wanted, covered),
        "crosslingual_covered": share(cross, covered),
        "oos_answered": share(out_of_scope, lambda c: g(c).get("faq") is not None),
        "handoff_precision": share(
            [c for c in with_handoff if g(c).get("handoff")], lambda c: c["expect"]["handoff"]
        ),
        "handoff_recall": share(needed, lambda c: bool(g(c).get("handoff"))),
        "urgent_recall": share(
            [c for c in needed if c["expect"].get("priority") == "urgent"],
            lambda c: bool(g(c).get("handoff")),
        ),
        "queue_accuracy": share(
            routed,
            lambda c: (
                (g(c).get("queue"), g(c).get("priority"))
                == (c["expect"]["queue"], c["expect"].get("priority"))
            ),
        ),
        "followup_accuracy": share([c for c in cases if c["id"] in followups], holds),
        "after_hours_accuracy": share(
            time_cases, lambda c: g(c).get("after_hours") == c["expect"]["after_hours"]
        ),
    }


def evaluate(folder: Path, python: str, config: Path | None = None) -> dict[str, Any]:
    """One deployment through `bot eval` (with another config file than its own, if given)."""
    run = subprocess.run(
        [
            python,
            "-m",
            "bot",
            "--config",
            str(config or folder / "config.toml"),
            "eval",
            str(folder / "cases.jsonl"),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0:
        return {"error": run.stderr.strip()[-500:]}
    return score(json.loads(run.stdout), folder)


def worst(results: dict[str, dict[str, Any]], key: str, direction: str) -> float | None:
    values = [r[key] for r in results.values() if r.get(key) is not None]
    if not values:
        return None
    return min(values) if direction == ">=" else max(values)


def meets(value: float | None, direction: str, goal: float) -> bool:
    if value is None:
        return True
    return value >= goal - 1e-9 if direction == ">=" else value <= goal + 1e-9


def parse_gate(text: str) -> tuple[str, str, float]:
    match = re.fullmatch(r"\s*([a-z_]+)\s*(>=|<=)\s*([0-9.]+)\s*", text)
    known = {key for key, _, _ in GOALS}
    if not match or match.group(1) not in known:
        raise argparse.ArgumentTypeError(
            f"{text!r}: write FIGURE>=VALUE or FIGURE<=VALUE with one of {', '.join(sorted(known))}"
        )
    return match.group(1), match.group(2), float(match.group(3))


def table(results: dict[str, dict[str, Any]]) -> str:
    names = list(results)
    width = max([len(n) for n in names] + [7])
    rows = [f"{'figure':22} {'goal':>7} " + " ".join(f"{n:>{width}}" for n in [*names, "worst"])]
    for key, direction, goal in GOALS:
        cells = [results[n].get(key) for n in names] + [worst(results, key, direction)]
        shown = [
            ("–" if v is None else f"{v:.3f}") + ("" if meets(v, direction, goal) else "✗")
            for v in cells
        ]
        rows.append(f"{key:22} {direction}{goal:<5} " + " ".join(f"{s:>{width}}" for s in shown))
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--table", action="store_true", help="a table instead of JSON")
    parser.add_argument("--gate", action="append", type=parse_gate, default=[])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    folders = args.folders or sorted(p.parent for p in (HERE / "devshops").glob("*/config.toml"))
    with ThreadPoolExecutor(args.jobs) as pool:
        scored = list(pool.map(lambda f: evaluate(f, args.python), folders))
    results = {f.name: r for f, r in zip(folders, scored, strict=True)}
    broken = [name for name, r in results.items() if "error" in r]
    ok = {name: r for name, r in results.items() if "error" not in r}
    summary = {key: worst(ok, key, direction) for key, direction, _ in GOALS}
    print(
        table(ok)
        if args.table
        else json.dumps({"deployments": results, "worst": summary}, ensure_ascii=False, indent=1)
    )
    failed = [
        f"{key} {direction} {value}: worst is {summary[key]}"
        for key, direction, value in args.gate
        if not meets(summary[key], direction, value)
    ]
    for name in broken:
        print(f"{name}: bot eval failed: {results[name]['error']}", file=sys.stderr)
    for line in failed:
        print(f"below the gate: {line}", file=sys.stderr)
    return 1 if failed or broken else 0


if __name__ == "__main__":
    sys.exit(main())
