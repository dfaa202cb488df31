"""The shipped config.toml documents every key the config model has (README: "config.toml
documents every key"), set or commented out: a key added to bot/content/config.py without a line
here fails this test, not an admin looking for it."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from bot.content.config import Config

SHIPPED = Path(__file__).parent.parent / "config.toml"
#: the production recipe's file of secrets (docs/deployment.md)
SECRETS_FILE = Path(__file__).parent.parent / "deploy" / "bot.env.example"

#: where the config file is, not a key in it
NOT_KEYS = {"base_dir", "path"}

_TABLE = re.compile(r"^\[\[?\s*([\w.]+)\s*\]\]?")
_KEY = re.compile(r"^([A-Za-z_]\w*)\s*=")
#: a key naming the environment variable a secret is read from (`secret_env = "BOT_…"`)
_SECRET_ENV = re.compile(r'^\s*#?\s*\w+_env\s*=\s*"([A-Z][A-Z0-9_]*)"', re.MULTILINE)


def _section(annotation: object) -> tuple[type[BaseModel], str] | None:
    """The model a field holds, and how its tables are named: `` (a table), `*` (a table per
    name, as [queues.NAME]) or `[]` (an array of tables, as [[console.canned]])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, ""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        found = [s for a in args if (s := _section(a)) is not None]
        return found[0] if found else None
    if origin is dict and len(args) == 2:
        inner = _section(args[1])
        return (inner[0], "*") if inner else None
    if origin is list and args:
        inner = _section(args[0])
        return (inner[0], "[]") if inner else None
    return None


def model_keys(model: type[BaseModel], table: str = "") -> Iterator[tuple[str, str]]:
    """(table, key) for every key of the model, `*` standing for a queue's (any) name."""
    for name, field in model.model_fields.items():
        if not table and name in NOT_KEYS:
            continue
        section = _section(field.annotation)
        if section is None:
            yield table, name
            continue
        inner, shape = section
        path = f"{table}.{name}" if table else name
        yield from model_keys(inner, f"{path}.*" if shape == "*" else path)


def documented_keys(text: str) -> set[tuple[str, str]]:
    """(table, key) for every key written in the file, set or commented out (`# key = …`)."""
    keys: set[tuple[str, str]] = set()
    table = ""
    for raw in text.splitlines():
        line = raw.strip()
        commented = line.startswith("#")
        line = line.lstrip("#").strip()
        if match := _TABLE.match(line):
            if commented and not line.rstrip().endswith("]"):
                continue
            table = match[1]
            parent, _, leaf = table.rpartition(".")
            keys.add((parent, leaf))
            if parent == "queues":
                table = "queues.*"
            continue
        if match := _KEY.match(line):
            keys.add((table, match[1]))
    return keys


def test_the_shipped_config_toml_documents_every_key() -> None:
    """Issue 20, defect 9: the closing words, survey questions, queue-position texts … were
    code defaults only, missing from the file that says it documents every key."""
    documented = documented_keys(SHIPPED.read_text(encoding="utf-8"))
    missing = [
        f"{table}.{key}" if table else key
        for table, key in model_keys(Config)
        if (table, key) not in documented
    ]
    assert not missing, f"config.toml does not mention: {', '.join(missing)}"


def test_the_walk_finds_nested_keys() -> None:
    """The walk reaches texts, queues and canned replies, so the test above checks them."""
    keys = set(model_keys(Config))
    assert ("texts", "closing") in keys
    assert ("queues.*", "first_response_seconds") in keys
    assert ("console.canned", "title") in keys
    assert ("channels.telegram", "token_env") in keys


def test_the_secrets_file_names_every_secret_config_toml_reads() -> None:
    """Issue 20's trial: deploy/bot.env.example had no BOT_WEBCHAT_SECRET, so a team that
    enabled the web chat from it found the channel missing its secret."""
    names = set(_SECRET_ENV.findall(SHIPPED.read_text(encoding="utf-8")))
    assert "BOT_WEBCHAT_SECRET" in names
    listed = set(
        re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", SECRETS_FILE.read_text(encoding="utf-8"), re.M)
    )
    assert not names - listed, f"bot.env.example does not name: {sorted(names - listed)}"
