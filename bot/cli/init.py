"""`bot init DIR`: a new deployment folder, outside the bot's code, from the sample shop.

A team's content (config.toml, faq/, intents/, schedules/, its eval cases) lives in a folder of
its own, under its own version control; the code is installed and upgraded separately, so an
upgrade is never a merge with the team's answers. The folder starts as a copy of the sample
shop that the source tree carries at its top level.
"""

from __future__ import annotations

import shutil
import sys
from importlib import resources
from pathlib import Path

import bot

#: what a deployment holds, copied from the sample shop: (source in the tree, name in DIR)
SAMPLE = [
    ("config.toml", "config.toml"),
    ("faq", "faq"),
    ("intents", "intents"),
    ("schedules", "schedules"),
    ("bench/cases.jsonl", "cases.jsonl"),
]
#: written from bot/cli/templates/: (template, name in DIR)
TEMPLATES = [("README.md", "README.md"), ("gitignore", ".gitignore")]


class InitError(Exception):
    """Why no deployment was written; nothing was written when this is raised."""


def sample_root(root: Path | None = None) -> Path:
    """The folder holding the sample shop: by default the source tree the package was
    installed from."""
    root = root or Path(bot.__file__).resolve().parent.parent
    missing = [source for source, _ in SAMPLE if not (root / source).exists()]
    if missing:
        raise InitError(
            f"the sample shop is not next to the installed code ({root} has no "
            f"{', '.join(missing)}); install the bot from its source folder "
            "(pip install -e .) and run bot init again"
        )
    return root


def init_deployment(target: Path, sample: Path | None = None) -> list[Path]:
    """Write a new deployment into `target` (missing or empty) and return what was written.

    Nothing is written when the target already holds files: a team's folder is never
    overwritten. Files go to a sibling temporary folder first and are moved into place at the
    end, so an interrupted run leaves no half-made deployment behind.
    """
    if target.exists() and not target.is_dir():
        raise InitError(f"{target} is a file; name a new folder")
    if target.is_dir() and any(target.iterdir()):
        shown = ", ".join(sorted(p.name for p in target.iterdir())[:5])
        raise InitError(f"{target} is not empty ({shown}); name a new or empty folder")
    root = sample_root(sample)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.init-tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        for source, name in SAMPLE:
            path = root / source
            if path.is_dir():
                shutil.copytree(
                    path, staging / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
                )
            else:
                shutil.copy2(path, staging / name)
        templates = resources.files("bot.cli") / "templates"
        for template, name in TEMPLATES:
            (staging / name).write_text(
                (templates / template).read_text(encoding="utf-8"), encoding="utf-8"
            )
        if target.is_dir():
            target.rmdir()  # empty: checked above
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(p for p in target.rglob("*") if p.is_file())


def init(target: Path) -> int:
    """The command: write the folder, then say what is in it and what to run next."""
    try:
        written = init_deployment(target)
    except (InitError, OSError) as exc:
        print(f"bot init: {exc}", file=sys.stderr)
        return 1
    config = (target / "config.toml").resolve()
    print(f"A new deployment in {target}/ ({len(written)} files), a copy of the sample shop:")
    print("  config.toml   settings, every key with a comment")
    print("  faq/          questions and answers")
    print("  intents/      what customers want, with examples")
    print("  schedules/    business hours per queue")
    print("  cases.jsonl   test cases for bot eval")
    print("  README.md     for your team: what to edit, the commands")
    print()
    print("Next:")
    print(f'  export BOT_CONFIG="{config}"')
    print("  bot check && bot chat")
    return 0
