"""An alternating A/B of the in-process throughput against an earlier commit; prints JSON.

    python bench/compare.py REV [--rounds 3] [--full]

Runs `bench/load.py --quick` of this checkout and of REV (a git worktree made for the run, in a
temporary folder) one after the other, `--rounds` times each, alternating (A B A B …), so
both meet the same noise on a busy 2-core machine. Each side runs its own `bench/load.py` on
its own code: the venv's editable install of this checkout is taken out of the import system
for REV's runs. Reported per figure: every run's value, the medians, and B/A − 1 (the change of
this checkout against REV; positive is more messages per second, or more milliseconds/MB).

Both sides meet the same traffic: this checkout's bench/workload.py (customers that come, send
five messages and go, the same number of messages at each level) takes the place of REV's own
in-process loop, so a change to the workload never shows as a change of the code. Only the
in-process figures compare (`inproc` at 1, 10 and 100 customers with their CPU milliseconds per
message, the steadiest figure on a shared machine; `lone_message_ms`, `peak_rss_mb`):
`load.py` also starts `bot run` processes, which are this checkout's in both runs. The
PostgreSQL part of `load.py` is skipped. Each side first runs once uncounted (`--quick`): REV's
worktree, or a fresh clone, starts with an empty var/cache, where the models are fitted instead
of loaded, and that first run's peak memory is higher (466 against 394 MB once).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: runs a tree's bench/load.py on that tree's code, whatever the venv's editable install says,
#: with this checkout's workload (argv: tree, this checkout's bench/workload.py, load.py's args)
RUNNER = """
import sys
tree, workload_file = sys.argv[1], sys.argv[2]
def ours(hook):
    return "__editable__" not in getattr(hook, "__module__", "")
sys.meta_path[:] = [f for f in sys.meta_path if ours(f)]
sys.path_hooks[:] = [h for h in sys.path_hooks if ours(h)]
sys.path_importer_cache.clear()
import asyncio, importlib.util
def module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[name] = loaded
    spec.loader.exec_module(loaded)
    return loaded
sys.path[:0] = [tree, tree + "/bench"]
workload = module("workload", workload_file)
sys.argv = [tree + "/bench/load.py", *sys.argv[3:]]
load = module("load", sys.argv[0])
if hasattr(load, "_inproc"):  # a load.py from before bench/workload.py: its loop is replaced
    counts = workload.QUICK_MESSAGES if "--quick" in sys.argv else workload.MESSAGES
    async def same_traffic(service, customers, messages, tag):
        return await workload.closed_loop(service, customers, counts[customers], tag)
    load._inproc = same_traffic
asyncio.run(load.main())
"""


def _figures(result: dict[str, Any]) -> dict[str, float]:
    figures = {
        f"inproc_{n}_msgs_per_s": float(result["inproc"][n]["msgs_per_s"])
        for n in ("1", "10", "100")
    }
    figures["inproc_100_p99_ms"] = float(result["inproc"]["100"]["p99_ms"])
    for n in ("1", "10", "100"):
        figures[f"inproc_{n}_cpu_ms_per_msg"] = float(result["inproc"][n]["cpu_ms_per_msg"])
    figures["lone_message_ms"] = float(result["lone_message_ms"])
    figures["peak_rss_mb"] = float(result["peak_rss_mb"])
    return figures


def _run(tree: Path, quick: bool) -> dict[str, float]:
    workload = ROOT / "bench" / "workload.py"
    args = [sys.executable, "-c", RUNNER, str(tree), str(workload), "--postgres", ""]
    if quick:
        args.append("--quick")
    done = subprocess.run(args, cwd=tree, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench/load.py failed in {tree}:\n{done.stderr[-2000:]}")
    return _figures(json.loads(done.stdout.strip().splitlines()[-1]))


def _tree_at(revision: str, folder: Path) -> Path:
    tree = folder / "before"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(tree), revision],
        check=True,
    )
    return tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="the earlier commit (A) to compare this checkout (B) to")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each side (3)")
    parser.add_argument("--full", action="store_true", help="load.py without --quick")
    args = parser.parse_args()
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    runs: dict[str, list[dict[str, float]]] = {"before": [], "now": []}
    with tempfile.TemporaryDirectory(prefix="bot-compare-") as folder:
        tree = _tree_at(args.revision, Path(folder))
        try:
            for side in (tree, ROOT):  # uncounted: fills each side's var/cache
                _run(side, True)
            for _ in range(args.rounds):
                runs["before"].append(_run(tree, not args.full))
                runs["now"].append(_run(ROOT, not args.full))
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False
            )
    report: dict[str, Any] = {"before": args.revision, "now": f"{head} (working tree)"}
    for name in [n for n in runs["now"][0] if n in runs["before"][0]]:
        before = [run[name] for run in runs["before"]]
        now = [run[name] for run in runs["now"]]
        a, b = statistics.median(before), statistics.median(now)
        report[name] = {
            "before": before,
            "now": now,
            "median_before": a,
            "median_now": b,
            "change": round(b / a - 1, 3) if a else None,
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
