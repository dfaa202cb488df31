"""The five dev deployments in bench/devshops: customers' files that must keep loading, and the
quality gate CI holds them to (bench/devshops.py), which fails on a figure below its floor."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.assembly import read_content
from bot.content.config import load_config
from bot.content.problems import only_errors

BENCH = Path(__file__).resolve().parent.parent / "bench"
DEPLOYMENTS = sorted(p.parent for p in (BENCH / "devshops").glob("*/config.toml"))


def test_there_are_five_trades() -> None:
    assert [p.name for p in DEPLOYMENTS] == ["kangtu", "mapleleaf", "sulian", "xianwei", "zhixing"]


@pytest.mark.parametrize("folder", DEPLOYMENTS, ids=lambda p: p.name)
def test_each_deployments_config_and_content_load(folder: Path) -> None:
    """Their config.toml is what a customer's admin wrote: a change that breaks it breaks
    customers."""
    config = load_config(folder / "config.toml")
    content, problems = read_content(config)
    assert not only_errors(problems), problems
    assert content.faq and content.intents and content.schedules


def _gate(folder: Path, *gates: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(BENCH / "devshops.py"), str(folder), "--table"]
    for gate in gates:
        command += ["--gate", gate]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)


@pytest.mark.slow
def test_the_gate_fails_when_a_figure_falls_below_its_floor(tmp_path: Path) -> None:
    folder = tmp_path / "zhixing"
    shutil.copytree(DEPLOYMENTS[-1], folder, ignore=shutil.ignore_patterns("var"))
    lines = (folder / "cases.jsonl").read_text("utf-8").splitlines()
    (folder / "cases.jsonl").write_text("\n".join(lines[:12]) + "\n", encoding="utf-8")
    held = _gate(folder, "faq_precision>=0", "oos_answered<=1")
    assert held.returncode == 0, held.stderr
    assert "faq_precision" in held.stdout and "zhixing" in held.stdout
    missed = _gate(folder, "faq_recall>=1.01")
    assert missed.returncode == 1
    assert "below the gate: faq_recall >= 1.01" in missed.stderr


def test_a_misspelt_gate_is_refused_before_anything_runs(tmp_path: Path) -> None:
    run = _gate(tmp_path, "faq_recal>=0.5")
    assert run.returncode == 2 and "faq_recall" in run.stderr
