"""faq/drafts.yaml: questions customers asked that the FAQ could not answer, written as FAQ
entries without an answer for the admin to complete (`bot faq gaps --write`).

The bot never loads this file (bot.content.entries.faq_files): an entry counts once the admin
has written its answer and moved it into a FAQ file. Writing again never disturbs what the admin
did here: existing entries keep their answers, comments and layout (new questions of a group
already here are added after its last question, as `bot faq learn` adds phrasings), new groups
are appended at the end, and an entry marked `ignore: true` keeps its questions from being
suggested again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError as RuamelError

from bot.content.entries import DRAFTS, question_key, unanswered_drafts
from bot.content.faq_writer import FaqEditError, add_questions, replace_file, scalar
from bot.domain.privacy import for_admins

#: questions a draft holds at most (the ones customers asked most)
MAX_QUESTIONS = 8

HEADER = f"""\
# Questions customers asked that the FAQ could not answer, grouped (`bot faq gaps --write`).
# The bot never reads this file. For each entry: write its answer (zh: and en:, as in the other
# FAQ files), then move the whole entry into a FAQ file (faq/*.yaml); the bot learns it from
# there. An entry you do not want: mark it `ignore: true` and leave it here, so its questions are
# not suggested again. Running `bot faq gaps --write` again keeps everything you wrote in
# {DRAFTS} and adds new questions and entries.
"""

ANSWER_NOTE = "write zh: and en: below, then move this entry into a FAQ file"


def draft_id(label: str) -> str:
    """A stable id for a group of questions, from its label: the same question gets the same
    id week after week (Chinese has no letters to make a readable slug of)."""
    return "gap-" + hashlib.sha1(question_key(label).encode()).hexdigest()[:6]


@dataclass(frozen=True)
class Draft:
    """One group of questions to write: its id, its questions (the label first) and a one-line
    note on who asked it, written as a comment."""

    id: str
    questions: tuple[str, ...]
    note: str = ""


@dataclass
class Written:
    """What `write_drafts` did."""

    added: list[str] = field(default_factory=list)
    #: entry id -> questions added to an entry already in the file
    extended: dict[str, int] = field(default_factory=dict)
    #: groups already in the file (answered or not, ignored or not) with nothing new
    unchanged: int = 0
    #: entries the admin wrote so that questions cannot be added (id -> why)
    skipped: dict[str, str] = field(default_factory=dict)
    #: entries in the file not marked `ignore: true`: to answer, or to be moved
    unanswered: int = 0


def write_drafts(path: Path, drafts: Sequence[Draft]) -> Written:
    """Merge `drafts` into the drafts file at `path` (created with a header when missing).
    Customers' words are masked as admins may keep them (bot.domain.privacy.for_admins) on the
    way in, whoever read them: this file is committed."""
    drafts = [Draft(d.id, tuple(for_admins(q) for q in d.questions), d.note) for d in drafts]
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    entries = _entries(text, path)
    owner: dict[str, str] = {}  # question key -> id of the entry holding it
    questions: dict[str, list[str]] = {}
    for entry in entries:
        entry_id = str(entry.get("id"))
        asked = [str(q) for q in entry.get("questions") or []]
        questions[entry_id] = asked
        for question in asked:
            owner.setdefault(question_key(question), entry_id)
    written = Written()
    additions: dict[str, list[str]] = {}
    fresh: list[Draft] = []
    for draft in drafts:
        keys = [question_key(q) for q in draft.questions]
        holder = next((owner[k] for k in keys if k in owner), None)
        if holder is None and draft.id in questions:
            holder = draft.id
        if holder is None:
            unique = _unique_id(draft.id, questions)
            fresh.append(Draft(unique, draft.questions[:MAX_QUESTIONS], draft.note))
            questions[unique] = list(draft.questions)
            for k in keys:
                owner.setdefault(k, unique)
            continue
        held = questions[holder] + additions.get(holder, [])
        have = {question_key(q) for q in held}
        room = max(0, MAX_QUESTIONS - len(held))  # an admin may have written more than that
        new = [q for q, k in zip(draft.questions, keys, strict=True) if k not in have][:room]
        if new:
            additions.setdefault(holder, []).extend(new)
            for k in keys:
                owner.setdefault(k, holder)
        else:
            written.unchanged += 1
    if fresh:
        text = _appended(text, fresh)
        _check(text, path, [d.id for d in fresh])
        replace_file(path, text)
        written.added = [d.id for d in fresh]
    for entry_id, new in additions.items():
        try:
            added = add_questions(path, entry_id, new)
        except FaqEditError as exc:
            written.skipped[entry_id] = str(exc)
            continue
        if added:
            written.extended[entry_id] = len(added)
    written.unanswered = unanswered_drafts(path)
    return written


def _entries(text: str, path: Path) -> list[Any]:
    try:
        document = YAML(typ="rt").load(text)
    except RuamelError as exc:
        raise FaqEditError(
            f"{path}: cannot read it ({str(exc).splitlines()[0]}); fix it, or move it away and "
            "run again"
        ) from exc
    if document is None:
        return []
    if not isinstance(document, list):
        raise FaqEditError(f"{path}: is not a list of entries (- id: …); fix it or move it away")
    return [item for item in document if isinstance(item, dict)]


def _unique_id(wanted: str, taken: Iterable[str]) -> str:
    used = set(taken)
    candidate, n = wanted, 2
    while candidate in used:
        candidate, n = f"{wanted}-{n}", n + 1
    return candidate


def _appended(text: str, drafts: Sequence[Draft]) -> str:
    """The file's text with these entries at the end, in the FAQ files' layout."""
    ending = "\r\n" if "\r\n" in text else "\n"
    if text and not text.endswith("\n"):
        text += ending
    blocks = []
    for draft in drafts:
        lines = [f"- id: {draft.id}"]
        if draft.note:
            lines.append(f"  # {' '.join(draft.note.split())}")
        lines.append("  questions:")
        lines += [f"    - {scalar(q)}" for q in draft.questions]
        lines.append(f"  answer:  # {ANSWER_NOTE}")
        blocks.append(ending.join(lines) + ending)
    return text + "".join(ending + block for block in blocks)


def _check(text: str, path: Path, ids: list[str]) -> None:
    """Read the new text back before it replaces the file."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FaqEditError(f"{path}: the new drafts would break the file ({exc})") from exc
    found = {str(item.get("id")) for item in document or [] if isinstance(item, dict)}
    if not set(ids) <= found:
        raise FaqEditError(f"{path}: the new drafts did not read back as intended")
