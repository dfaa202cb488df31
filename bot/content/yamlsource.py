"""YAML reading that remembers where each mapping began, so errors can name file:line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.content.problems import Problem, not_utf8, read_utf8

LINE_KEY = "__line__"
#: each mapping's own keys and the line each is on, so a problem names the bad key's line
KEY_LINES = "__key_lines__"
#: what the loader adds to every mapping (skipped wherever keys are read)
MARKS = (LINE_KEY, KEY_LINES)


class LinedList(list[Any]):
    """A YAML sequence that knows the line of each item (`lines`), e.g. a FAQ entry's questions,
    so a problem with one question names its line."""

    lines: list[int]


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, f"a list or mapping as a key: {key!r}", key_node.start_mark
            ) from None
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
    mapping[KEY_LINES] = seen
    return mapping


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LinedList:
    items = LinedList(loader.construct_sequence(node, deep=True))
    items.lines = [item.start_mark.line + 1 for item in node.value]
    return items


def key_line(mapping: dict[str, Any], key: str) -> int:
    """The line of `key` in a mapping read by `load_yaml`; the mapping's first line when the
    key is missing."""
    lines = mapping.get(KEY_LINES) or {}
    return int(lines.get(key) or mapping.get(LINE_KEY) or 0)


def item_line(items: Any, index: int, default: int) -> int:
    """The line of the `index`th item of a sequence read by `load_yaml` (`default` otherwise)."""
    lines = getattr(items, "lines", None)
    return lines[index] if lines and index < len(lines) else default


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(path: Path) -> tuple[Any, list[Problem]]:
    """Parse one YAML file; every mapping gets a `__line__` entry with its first line."""
    try:
        text = read_utf8(path)
    except UnicodeDecodeError as exc:
        return None, [not_utf8(path, exc)]
    try:
        return yaml.load(text, Loader=_LineLoader), []
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_problem(path, text, exc)]
    except yaml.YAMLError as exc:
        return None, [Problem(path, 1, f"invalid YAML: {exc}", "check indentation and quoting")]


def _syntax_problem(path: Path, text: str, exc: yaml.MarkedYAMLError) -> Problem:
    """The line where the admin erred, which is not always where YAML noticed.

    An unclosed `[`, `{` or quote swallows the lines after it, so YAML complains further down
    (at the next `key:` or the end of the file); the context mark holds where it was opened.
    """
    noticed, opened = exc.problem_mark, exc.context_mark
    problem = exc.problem or ""
    lines = text.splitlines()
    if noticed is not None and opened is not None and exc.context:
        char = _char_at(lines, opened.line, opened.column)
        unclosed_flow = (
            exc.context.startswith("while parsing a flow")
            and char in ("[", "{")
            and not _closed_before(text, opened.index, _end_of_line(text, noticed.index))
        )
        unclosed_quote = (
            "quoted scalar" in exc.context and "end of stream" in problem and char in ('"', "'")
        )
        if unclosed_flow or unclosed_quote:
            later = (
                f" (YAML noticed on line {noticed.line + 1})" if noticed.line != opened.line else ""
            )
            if unclosed_quote:
                fix = f"add the closing {char} at the end of the text"
            else:
                what = "list" if char == "[" else "mapping"
                fix = (
                    f"end the {what} with `{_CLOSING[char]}` on this line, and put items "
                    "containing , or : in quotes"
                )
            return Problem(
                path,
                opened.line + 1,
                f"invalid YAML: the `{char}` opened here is never closed{later}",
                fix,
            )
    if noticed is not None and "'\\t'" in problem:
        before = lines[noticed.line][: noticed.column] if noticed.line < len(lines) else ""
        indent = not before.strip()
        return Problem(
            path,
            noticed.line + 1,
            "invalid YAML: a tab indents this line" if indent else "invalid YAML: a tab here",
            "indent with spaces, not tabs" if indent else "replace the tab with a space",
        )
    mark = noticed or opened
    line = mark.line + 1 if mark else None
    what = " ".join(s for s in (exc.context, exc.problem) if s)
    return Problem(path, line, f"invalid YAML: {what}", _yaml_hint(what))


_CLOSING = {"[": "]", "{": "}"}


def _char_at(lines: list[str], line: int, column: int) -> str:
    return lines[line][column] if line < len(lines) and column < len(lines[line]) else ""


def _end_of_line(text: str, index: int) -> int:
    end = text.find("\n", index)
    return len(text) if end < 0 else end


def _closed_before(text: str, start: int, end: int) -> bool:
    """Whether the bracket at `start` is closed before `end` (the end of the line where YAML
    noticed): if it is, the error lies inside the brackets, not in a missing `]`.

    Quoted items are skipped; a quote counts only where an item can begin, as in YAML (so the
    `'` of don't is plain text).
    """
    depth, i = 0, start
    while i < end:
        char = text[i]
        if char in "\"'" and (i == 0 or text[i - 1] in "[{, \t\n"):
            closing = text.find(char, i + 1)
            if closing < 0:
                return False
            i = closing + 1
            continue
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return True
        i += 1
    return False


def _yaml_hint(what: str) -> str:
    if "duplicate key" in what:
        return "remove or rename one of the two keys"
    if "tab" in what:
        return "indent with spaces, not tabs"
    if "mapping values are not allowed" in what:
        return "put text containing ': ' in quotes"
    if "while parsing a flow" in what:
        return "put items that contain , : [ ] { } or a quote mark in quotes"
    if "escape character" in what:
        return 'in "double quotes" a backslash starts an escape: use single quotes, or write \\\\'
    if "expected <block end>" in what:
        return "line this entry or key up with the ones above it (same number of spaces)"
    return "check the indentation and quoting on this line and the one above"
