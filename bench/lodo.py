"""Choose settings leave-one-deployment-out: each setting runs on all five dev deployments, then
for each deployment the setting that does best on the other four is chosen and its figures on
the held-out one are reported. A figure measured on the deployment it was tuned on is not
evidence; these are.

    python bench/lodo.py --grid '{"acts.person": [0.5, 0.6, 0.7], "acts.unrelated": [0.5, 0.7]}'

"Best on the other four" is the smallest total shortfall of their worst figures from the goals
(bench/devshops.py GOALS), then the most goals met. Prints JSON: every setting's figures per
deployment, and per held-out deployment the setting chosen and its figures there.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from devshops import GOALS, HERE, evaluate, meets, worst

Setting = dict[str, Any]


def with_settings(text: str, setting: Setting) -> str:
    """config.toml's text with `section.key` values set (replacing the key in its section)."""
    lines = text.splitlines()
    for dotted, value in setting.items():
        section, key = dotted.rsplit(".", 1)
        line = f"{key} = {json.dumps(value)}"
        header = next((i for i, s in enumerate(lines) if s.strip() == f"[{section}]"), None)
        if header is None:
            lines += ["", f"[{section}]", line]
            continue
        end = next(
            (i for i in range(header + 1, len(lines)) if lines[i].lstrip().startswith("[")),
            len(lines),
        )
        kept = [s for s in lines[header + 1 : end] if not re.match(rf"\s*{key}\s*=", s)]
        lines[header + 1 : end] = [line, *kept]
    return "\n".join(lines) + "\n"


def run_setting(folder: Path, setting: Setting, number: int, python: str) -> dict[str, Any]:
    """One deployment under one setting (a config beside the original, removed afterwards)."""
    config = folder / f"config.lodo-{number}.toml"
    config.write_text(with_settings((folder / "config.toml").read_text("utf-8"), setting))
    try:
        return evaluate(folder, python, config)
    finally:
        config.unlink(missing_ok=True)


def shortfall(results: dict[str, dict[str, Any]]) -> tuple[float, int]:
    """How far the worst of these deployments falls short of the goals (0 is none), and how
    many goals it meets; smaller, then larger, is better."""
    total, met = 0.0, 0
    for key, direction, goal in GOALS:
        value = worst(results, key, direction)
        if value is None:
            continue
        met += meets(value, direction, goal)
        total += max(goal - value, 0.0) if direction == ">=" else max(value - goal, 0.0)
    return round(total, 4), -met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", required=True, help="JSON: {section.key: [values]}")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    grid: dict[str, list[Any]] = json.loads(args.grid)
    settings = [
        dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())
    ]
    folders = sorted(p.parent for p in (HERE / "devshops").glob("*/config.toml"))
    jobs = [(s, f) for s in range(len(settings)) for f in folders]
    with ThreadPoolExecutor(args.jobs) as pool:
        done = list(pool.map(lambda j: run_setting(j[1], settings[j[0]], j[0], args.python), jobs))
    figures: list[dict[str, dict[str, Any]]] = [{} for _ in settings]
    for (s, folder), result in zip(jobs, done, strict=True):
        figures[s][folder.name] = result
    held_out = {}
    for folder in folders:
        others = [
            shortfall({n: r for n, r in figures[s].items() if n != folder.name})
            for s in range(len(settings))
        ]
        chosen = min(range(len(settings)), key=lambda s: others[s])
        held_out[folder.name] = {"setting": settings[chosen], **figures[chosen][folder.name]}
    report = {
        "settings": [{"setting": settings[s], "figures": figures[s]} for s in range(len(settings))],
        "held_out": held_out,
        "held_out_worst": {key: worst(held_out, key, d) for key, d, _ in GOALS},
    }
    print(json.dumps(report, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
