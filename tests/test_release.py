"""What a release promises a team that installs and upgrades it: the version it says it is, the
channels `bot --help` says it serves, a CHANGELOG entry to read before upgrading, a licence that
matches the package's metadata, and a constraints file that pins every dependency within
pyproject's ranges."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from bot.cli.main import main
from tests.support.service import bot_command

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"constraints.txt: {line!r} is not pinned with =="
        pins[_normal(name)] = Version(version)
    return pins


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_bot_version_is_the_package_version() -> None:
    result = subprocess.run(
        [bot_command(), "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"bot {PROJECT['version']}"


def test_bot_help_names_every_channel(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--help"])
    assert stopped.value.code == 0
    said = capsys.readouterr().out
    for channel in ("web chat", "WeChat", "WeCom", "Telegram", "webhook"):
        assert channel in said, said


def test_changelog_has_an_entry_for_this_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\]", changelog, flags=re.MULTILINE)
    version = Version(PROJECT["version"])
    released = [Version(h) for h in headings if h != "Unreleased"]
    if version.is_devrelease or version.is_prerelease:
        # work towards the next release: listed under Unreleased, newer than every release
        assert headings[0] == "Unreleased", headings
        assert all(version > r for r in released), (version, released)
    else:
        assert PROJECT["version"] in headings, headings
        # the newest section comes first: unreleased work, then this version
        assert headings[0] in ("Unreleased", PROJECT["version"])


def test_licence_file_matches_the_metadata() -> None:
    assert PROJECT["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text


def test_every_dependency_is_pinned_within_its_range() -> None:
    pins = _pins()
    requirements = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in PROJECT["optional-dependencies"].values():
        requirements += [Requirement(r) for r in extra]
    unpinned = [r.name for r in requirements if _normal(r.name) not in pins]
    assert not unpinned, f"not in constraints.txt: {unpinned}"
    outside = [
        f"{r.name}=={pins[_normal(r.name)]} (wants {r.specifier})"
        for r in requirements
        if not r.specifier.contains(pins[_normal(r.name)], prereleases=True)
    ]
    assert not outside, outside


def test_readme_and_ci_install_with_the_constraints() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    installs = re.findall(r"pip install [^\n&]*", readme + ci)
    assert installs
    for command in installs:
        if "-e " in command:
            assert "-c constraints.txt" in command, command
