"""YAML reading that remembers where each mapping began, so errors can name file:line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.content.problems import Problem

LINE_KEY = "__line__"


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first on line {seen[key]})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line + 1
    mapping = loader.construct_mapping(node, deep=True)
    mapping[LINE_KEY] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: Path) -> tuple[Any, list[Problem]]:
    """Parse one YAML file; every mapping gets a `__line__` entry with its first line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return None, [
            Problem(path, None, f"not UTF-8 text ({exc.reason})", "save the file as UTF-8")
        ]
    try:
        return yaml.load(text, Loader=_LineLoader), []
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = " ".join(s for s in (exc.context, exc.problem) if s)
        return None, [Problem(path, line, f"invalid YAML: {what}", _yaml_hint(what))]
    except yaml.YAMLError as exc:
        return None, [Problem(path, None, f"invalid YAML: {exc}", "check indentation and quoting")]


def _yaml_hint(what: str) -> str:
    if "duplicate key" in what:
        return "remove or rename one of the two keys"
    if "tab" in what:
        return "indent with spaces, not tabs"
    if "mapping values are not allowed" in what:
        return "put text containing ': ' in quotes"
    return "check the indentation and quoting on this line and the one above"
