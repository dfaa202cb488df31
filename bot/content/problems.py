"""Problems people see in files they edit: always the file, the line and what to do about it."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

#: an error stops `bot check` and start-up; a warning is printed and logged, and the bot runs
Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    file: Path
    line: int | None
    message: str
    fix: str = ""
    severity: Severity = "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        where = f"{shown(self.file)}:{self.line}" if self.line else f"{shown(self.file)}"
        text = f"{where}: {self.message}"
        if not self.is_error:
            text = f"{self.severity}: {text}"
        return f"{text}\n    fix: {self.fix}" if self.fix else text


def only_errors(problems: Iterable[Problem]) -> list[Problem]:
    """The problems that must be fixed before the bot can start."""
    return [p for p in problems if p.is_error]


def only_warnings(problems: Iterable[Problem]) -> list[Problem]:
    """The problems worth knowing about that do not stop the bot."""
    return [p for p in problems if not p.is_error]


def shown(path: Path) -> str:
    """The path as the reader would type it: relative to the current folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


class ProblemsError(Exception):
    """Raised when a file people edit cannot be used; carries every problem found, not just one."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def read_utf8(path: Path) -> str:
    """The file's text; raises UnicodeDecodeError whose `object` is the whole file, so
    `not_utf8` can name the line of the first bad byte."""
    return path.read_bytes().decode("utf-8")


def not_utf8(path: Path, exc: UnicodeDecodeError) -> Problem:
    """A file saved in another encoding (GBK from a Windows editor) or cut in the middle of a
    character, with the line of the first byte that is not UTF-8."""
    line = bytes(exc.object[: exc.start]).count(b"\n") + 1
    return Problem(path, line, f"not UTF-8 text ({exc.reason})", "save the file as UTF-8")


def toml_error_line(exc: tomllib.TOMLDecodeError, text: str) -> int:
    """The line of a TOML syntax error. Python before 3.14 keeps it only in the message ("(at
    line 3, column 7)", or "(at end of document)": the last line)."""
    line = getattr(exc, "lineno", None)
    if isinstance(line, int) and line > 0:
        return line
    found = re.search(r"at line (\d+)", str(exc))
    return int(found.group(1)) if found else max(1, len(text.splitlines()))


def line_near_key(path: Path, dotted: str) -> int:
    """The line of a TOML key, else of the nearest table above it that is in the file, else 1:
    a key that is missing or spelt with escapes still sends the reader to a line."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        line = line_of_key(path, ".".join(parts[:end]))
        if line is not None:
            return line
    return 1


def line_of_key(path: Path, dotted: str) -> int | None:
    """Best-effort line of a TOML key such as `faq.answer_threshold` or `queues.general.schedule`.

    tomllib keeps no positions, so this scans the text: it finds the table header, then the key
    inside it. Good enough to point an operator at the right line.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    parts = dotted.split(".")
    header = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(map(_part, parts)) + r"\s*\]")
    for number, text in enumerate(lines, start=1):
        if header.match(text):
            return number
    for split in range(len(parts) - 1, -1, -1):
        table, key = parts[:split], parts[split:]
        start = 0
        if table:
            header = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(map(_part, table)) + r"\s*\]")
            found = [i for i, text in enumerate(lines) if header.match(text)]
            if not found:
                continue
            start = found[0] + 1
            if not key:
                return start
        first = key[0] if key else ""
        pattern = re.compile(r"^\s*" + _part(first) + r"\s*[=.]")
        for i in range(start, len(lines)):
            if table and lines[i].lstrip().startswith("[") and i > start - 1:
                break
            if pattern.match(lines[i]):
                return i + 1
        if table:
            return start
    return None


def _part(key: str) -> str:
    """A key as TOML may write it: bare, or in double or single quotes."""
    return f"(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')"
