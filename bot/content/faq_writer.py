"""Adding question phrasings to an admin's FAQ file without disturbing it: comments, blank
lines, quoting and indentation stay exactly as the admin wrote them; the new lines go after the
entry's last question, indented like it. (ruamel.yaml finds where; the text is edited in place
so nothing else is re-emitted.) The result is read back before it replaces the file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedSeq


class FaqEditError(Exception):
    """The file could not be edited safely; it was left as it was."""


def add_questions(path: Path, entry_id: str, questions: Sequence[str]) -> list[str]:
    """Append these phrasings to the entry's `questions` in its file; returns the ones added
    (those not already there)."""
    text = path.read_text(encoding="utf-8")
    document = YAML(typ="rt").load(text)
    entry = _entry(document, entry_id, path)
    existing = entry.get("questions")
    if not isinstance(existing, CommentedSeq) or not existing:
        raise FaqEditError(f"{path}: entry {entry_id!r} has no list of questions to add to")
    if existing.fa.flow_style():
        raise FaqEditError(
            f"{path}: entry {entry_id!r} writes its questions on one line ([…]); write them one "
            "per line (- …) and run again"
        )
    have = {str(q) for q in existing}
    new = [q for q in dict.fromkeys(questions) if q not in have]
    if not new:
        return []
    # lines as YAML counts them: only \n ends one (a U+2028 in a question is not a break)
    lines = text.split("\n")
    lines = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    last_line, _ = existing.lc.item(len(existing) - 1)
    column = _indent(lines[last_line])  # where the last question's "-" stands
    if not lines[last_line][column:].startswith("-"):
        raise FaqEditError(f"{path}: entry {entry_id!r}: cannot tell where its questions end")
    after = last_line + 1
    while after < len(lines) and lines[after].strip() and _indent(lines[after]) > column:
        after += 1  # the last question's continuation lines
    ending = "\r\n" if lines[last_line].endswith("\r\n") else "\n"
    if after == len(lines) and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += ending
    inserted = [f"{' ' * column}- {scalar(q)}{ending}" for q in new]
    edited = "".join(lines[:after] + inserted + lines[after:])
    _verify(edited, entry_id, [*map(str, existing), *new], path)
    replace_file(path, edited)
    return new


def _entry(document: Any, entry_id: str, path: Path) -> Any:
    if isinstance(document, list):
        for item in document:
            if isinstance(item, dict) and str(item.get("id")) == entry_id:
                return item
    raise FaqEditError(f"{path}: no entry with id {entry_id!r}")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def scalar(text: str) -> str:
    """The phrasing as YAML: plain when it reads back unchanged, else double-quoted."""
    try:
        if yaml.safe_load(f"- {text}") == [text] and "#" not in text:
            return text
    except yaml.YAMLError:
        pass
    quoted = json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted one
    # characters some readers take for line breaks are written as escapes
    for odd in ("\u2028", "\u2029", "\u0085"):
        quoted = quoted.replace(odd, f"\\u{ord(odd):04x}")
    return quoted


def _verify(edited: str, entry_id: str, expected: list[str], path: Path) -> None:
    try:
        document = yaml.safe_load(edited)
    except yaml.YAMLError as exc:
        raise FaqEditError(
            f"{path}: the edit would break the file ({exc}); left as it was"
        ) from exc
    entry = _entry(document, entry_id, path)
    if [str(q) for q in entry.get("questions", [])] != expected:
        raise FaqEditError(f"{path}: the edit did not read back as intended; left as it was")


def replace_file(path: Path, text: str) -> None:
    """Write beside the file, then swap: a reader (the running bot's reload) never sees half."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        # a new file (drafts.yaml the first time) is readable like the FAQ files beside it
        os.chmod(temporary, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
