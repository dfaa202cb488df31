"""The files admins edit, `faq/*.yaml` and `intents/*.yaml`, read into typed entries.

Every mistake is collected with its file, line and fix, so `bot check` can report all of them at
once and a broken edit never half-loads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.content.config import LANGUAGES
from bot.content.problems import Problem, only_errors, shown
from bot.content.yamlsource import LINE_KEY, MARKS, item_line, key_line, load_yaml
from bot.domain.messages import Category, Priority

ACTIONS = ("answer", "reply", "handoff")
#: what a customer does with a message, in any trade (bot.understanding.acts); an intent may
#: name the one it is an instance of with `act:`, else the bot works it out
ACT_NAMES = (
    "question", "problem", "complaint", "emergency", "human", "action", "small_talk", "unrelated",
)  # fmt: skip
OUT_OF_SCOPE = "out_of_scope"
MAX_NAME = 64  # ids and names are stored in columns of this width
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class FaqEntry:
    id: str
    questions: tuple[str, ...]
    answer: dict[str, str]
    category: Category
    file: Path
    line: int
    #: the line of each language's answer (problems with the answer's words point there)
    answer_lines: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class IntentSpec:
    """One intent. `out_of_scope` is reserved: its examples teach what the shop does not handle."""

    name: str
    examples: tuple[str, ...]
    action: str | None
    queue: str | None
    priority: Priority
    category: Category
    reply: dict[str, str]
    file: Path
    line: int
    #: the act the admin says this intent is (ACT_NAMES); None: worked out from its examples
    act: str | None = None


#: the FAQ folder's file of questions for an admin to answer (`bot faq gaps --write`)
DRAFTS = "drafts.yaml"


def question_key(text: str) -> str:
    """What two askings of the same words share: case, spaces and punctuation ignored."""
    return re.sub(r"[\s\W_]+", "", text.casefold()) or text.strip()


def yaml_files(folder: Path) -> list[Path]:
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def faq_files(folder: Path) -> list[Path]:
    """The FAQ files the bot learns from: every YAML file but drafts.yaml. Its entries have
    questions and no answer yet; loaded, they would be an error each (`answer` is missing) and
    stop the bot, or, answered half-way, be answered to customers before anyone checked them.
    An entry counts once the admin moves it into a FAQ file."""
    return [path for path in yaml_files(folder) if path.name != DRAFTS]


def unanswered_drafts(path: Path) -> int:
    """Entries in drafts.yaml not marked `ignore: true` (0 when it cannot be read)."""
    try:
        return len(_unanswered(yaml.safe_load(path.read_text(encoding="utf-8"))))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return 0


def _unanswered(document: Any) -> list[Any]:
    items = document if isinstance(document, list) else []
    return [item for item in items if isinstance(item, dict) and not item.get("ignore")]


def draft_problems(folder: Path) -> list[Problem]:
    """A reminder, not an error: how many drafts in drafts.yaml are still to answer."""
    path = folder / DRAFTS
    if not path.is_file():
        return []
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [
            Problem(
                path,
                None,
                f"cannot read the drafts ({reason}); the bot does not load this file anyway",
                "fix it, or delete it and run `bot faq gaps --write` again",
                severity="warning",
            )
        ]
    count = len(_unanswered(document))
    if not count:
        return []
    return [
        Problem(
            path,
            None,
            f"{count} draft entr{'y' if count == 1 else 'ies'} to answer in {DRAFTS} "
            "(questions customers asked that the FAQ does not answer)",
            "write each one's answer and move it into a FAQ file (the bot never reads "
            f"{DRAFTS}), or mark it `ignore: true`",
            severity="warning",
        )
    ]


def read_faq(folder: Path, forbidden: Iterable[str] = ()) -> tuple[list[FaqEntry], list[Problem]]:
    forbidden = list(forbidden)
    entries: list[FaqEntry] = []
    problems: list[Problem] = []
    first_seen: dict[str, tuple[Path, int]] = {}
    asked: dict[str, tuple[str, Path, int]] = {}  # question key -> (entry id, file, line)
    files = faq_files(folder)
    if not files:
        problems.append(
            Problem(folder, None, "no FAQ files (*.yaml) found", "add at least one faq/*.yaml")
        )
    for path in files:
        for item, line in _entries(path, problems, "FAQ entries"):
            bad = len(problems)
            entry_id = _unique_name(
                item,
                "id",
                path,
                line,
                first_seen,
                problems,
                "give it `id: some-stable-name` (lowercase letters, digits, - and _)",
                "ids must be unique across all FAQ files; rename one",
            )
            questions = _texts(item, "questions", path, problems)
            answer = _local(item, "answer", path, problems)
            category = _enum(Category, item, "category", "consult", path, problems)
            _unknown_keys(item, {"id", "questions", "answer", "category"}, path, problems)
            check_forbidden(answer, forbidden, path, key_line(item, "answer"), problems)
            _same_question_twice(item, entry_id, path, asked, problems)
            if not only_errors(problems[bad:]) and entry_id and category:
                entries.append(
                    FaqEntry(
                        entry_id,
                        tuple(questions),
                        answer,
                        category,
                        path,
                        line,
                        _lines_of(item, "answer", answer),
                    )
                )
    return entries, problems


def _lines_of(item: dict[str, Any], key: str, texts: dict[str, str]) -> dict[str, int]:
    """The line of each language's text under `key` (the key's own line for a plain text)."""
    value = item.get(key)
    return {
        language: key_line(value, language) if isinstance(value, dict) else key_line(item, key)
        for language in texts
    }


def _same_question_twice(
    item: dict[str, Any],
    entry_id: str | None,
    path: Path,
    asked: dict[str, tuple[str, Path, int]],
    problems: list[Problem],
) -> None:
    """A question in two entries is an error: the bot cannot tell which one the customer
    means, and the two answers compete for it. The same question twice in one entry is
    harmless, and a warning."""
    value = item.get("questions")
    if not isinstance(value, list) or entry_id is None:
        return
    for index, question in enumerate(value):
        if not isinstance(question, str) or not question.strip():
            continue
        line = item_line(value, index, key_line(item, "questions"))
        key = question_key(question)
        if key not in asked:
            asked[key] = (entry_id, path, line)
            continue
        other, other_path, other_line = asked[key]
        if other == entry_id:
            problems.append(
                Problem(
                    path,
                    line,
                    f"question {question.strip()!r} is listed twice in {entry_id} "
                    f"(also on line {other_line})",
                    "remove one of the two",
                    severity="warning",
                )
            )
        else:
            problems.append(
                Problem(
                    path,
                    line,
                    f"question {question.strip()!r} is in two entries: {entry_id} and {other} "
                    f"({shown(other_path)}:{other_line})",
                    "keep it in the entry whose answer fits it and remove it from the other "
                    "(the bot cannot tell which one the customer means)",
                )
            )


def read_intents(
    folder: Path, queues: Iterable[str], forbidden: Iterable[str] = ()
) -> tuple[list[IntentSpec], list[Problem]]:
    queue_names = set(queues)
    forbidden = list(forbidden)
    intents: list[IntentSpec] = []
    problems: list[Problem] = []
    first_seen: dict[str, tuple[Path, int]] = {}
    files = yaml_files(folder)
    if not files:
        problems.append(
            Problem(folder, None, "no intent files (*.yaml) found", "add intents/*.yaml")
        )
    for path in files:
        for item, line in _entries(path, problems, "intents"):
            bad = len(problems)
            name = _unique_name(
                item,
                "name",
                path,
                line,
                first_seen,
                problems,
                "give it `name: some_name` (lowercase letters, digits, - and _)",
                "merge the examples into one intent",
            )
            examples = _texts(item, "examples", path, problems)
            action = item.get("action")
            if name == OUT_OF_SCOPE:
                if action is not None:
                    problems.append(
                        Problem(
                            path,
                            key_line(item, "action"),
                            "out_of_scope takes no action",
                            "remove `action:`; the bot falls back on these by itself",
                        )
                    )
            elif action not in ACTIONS:
                problems.append(
                    Problem(
                        path,
                        key_line(item, "action"),
                        f"action {action!r} is not allowed",
                        f"use one of: {', '.join(ACTIONS)}",
                    )
                )
            queue = item.get("queue")
            if action == "handoff" and not (isinstance(queue, str) and queue in queue_names):
                problems.append(
                    Problem(
                        path,
                        key_line(item, "queue"),
                        f"handoff intent needs a known queue, got {queue!r}",
                        f"use one of the queues in config.toml: {', '.join(sorted(queue_names))}",
                    )
                )
            priority = _enum(Priority, item, "priority", "normal", path, problems)
            category = _enum(Category, item, "category", "consult", path, problems)
            act = item.get("act")
            if act is not None and act not in ACT_NAMES:
                problems.append(
                    Problem(
                        path,
                        key_line(item, "act"),
                        f"act {act!r} is not known",
                        f"use one of: {', '.join(ACT_NAMES)}, or leave `act:` out",
                    )
                )
            reply: dict[str, str] = {}
            if action in ("reply", "handoff") or "reply" in item:
                reply = _local(item, "reply", path, problems)
            _unknown_keys(
                item,
                {"name", "examples", "action", "queue", "priority", "category", "reply", "act"},
                path,
                problems,
            )
            check_forbidden(reply, forbidden, path, key_line(item, "reply"), problems)
            if len(problems) == bad and name and priority and category:
                intents.append(
                    IntentSpec(
                        name,
                        tuple(examples),
                        action,
                        queue,
                        priority,
                        category,
                        reply,
                        path,
                        line,
                        act,
                    )
                )
    return intents, problems


def _entries(
    path: Path, problems: list[Problem], what: str
) -> Iterable[tuple[dict[str, Any], int]]:
    data, found = load_yaml(path)
    problems.extend(found)
    if found or data is None:
        return
    if not isinstance(data, list):
        problems.append(
            Problem(path, 1, f"the file must be a list of {what}", "start each entry with `- `")
        )
        return
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            problems.append(
                Problem(
                    path,
                    item_line(data, index, _line_of_text(path, str(item)) or 1),
                    f"an entry is not a mapping: {item!r}",
                    "each entry is `- id: …` followed by its keys, indented",
                )
            )
            continue
        yield item, int(item.get(LINE_KEY, 0))


def _unique_name(
    item: dict[str, Any],
    key: str,
    path: Path,
    line: int,
    first_seen: dict[str, tuple[Path, int]],
    problems: list[Problem],
    fix_invalid: str,
    fix_duplicate: str,
) -> str | None:
    """The entry's `id`/`name` if it is well-formed and not taken by an earlier entry."""
    value = item.get(key)
    line = key_line(item, key)
    if not isinstance(value, str) or not _ID.match(value):
        problems.append(Problem(path, line, f"missing or invalid {key}: {value!r}", fix_invalid))
        return None
    if len(value) > MAX_NAME:
        problems.append(
            Problem(
                path, line, f"{key} {value!r} is longer than {MAX_NAME} characters", "shorten it"
            )
        )
        return None
    if value in first_seen:
        other, other_line = first_seen[value]
        problems.append(
            Problem(
                path,
                line,
                f"duplicate {key} {value!r} (also at {shown(other)}:{other_line})",
                fix_duplicate,
            )
        )
        return None
    first_seen[value] = (path, line)
    return value


def _line_of_text(path: Path, text: str) -> int | None:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.lstrip().startswith("-") and text in line:
            return number
    return None


def _texts(item: dict[str, Any], key: str, path: Path, problems: list[Problem]) -> list[str]:
    value = item.get(key)
    line = key_line(item, key)
    if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value).strip():
        problems.append(
            Problem(
                path,
                line,
                f"`{key}` is a single text, not a list: {str(value).strip()!r}",
                f"write each text on its own line under `{key}:`, starting with `- `",
            )
        )
        return []
    if not isinstance(value, list) or not value:
        problems.append(
            Problem(
                path, line, f"`{key}` is missing or empty", f"add `{key}:` with a list of texts"
            )
        )
        return []
    for index, v in enumerate(value):
        where = item_line(value, index, line)
        if isinstance(v, bool):
            problems.append(_unquoted(path, where, key, v))
        elif not isinstance(v, str | int | float) or not str(v).strip():
            problems.append(
                Problem(
                    path,
                    where,
                    f"`{key}` has an empty or non-text item",
                    "every item must be a line of text",
                )
            )
    texts = [
        str(v).strip()
        for v in value
        if isinstance(v, str | int | float) and not isinstance(v, bool)
    ]
    return [t for t in texts if t]


def _unquoted(path: Path, line: int, key: str, value: bool) -> Problem:
    """YAML reads an unquoted yes/no/on/off as true/false, not as the word the admin typed."""
    return Problem(
        path,
        line,
        f"`{key}` has {value!r} where a text was meant (an unquoted yes/no?)",
        'put the text in quotes, e.g. "yes" or "No"',
    )


def _local(item: dict[str, Any], key: str, path: Path, problems: list[Problem]) -> dict[str, str]:
    value = item.get(key)
    line = key_line(item, key)
    if isinstance(value, str) and value.strip():
        return {"zh": value.strip()}
    if not isinstance(value, dict) or not any(k in value for k in LANGUAGES):
        problems.append(
            Problem(path, line, f"`{key}` is missing", f"add `{key}:` with `zh:` and `en:` texts")
        )
        return {}
    for k, v in value.items():
        if k in LANGUAGES and isinstance(v, bool):
            problems.append(_unquoted(path, key_line(value, k), f"{key}.{k}", v))
    texts = {
        k: str(v).strip()
        for k, v in value.items()
        if k in LANGUAGES and v is not None and not isinstance(v, bool) and str(v).strip()
    }
    if not texts:
        problems.append(Problem(path, line, f"`{key}` has no text", "write the zh and en texts"))
    for k in value:
        if k not in MARKS and k not in LANGUAGES:
            problems.append(
                Problem(
                    path,
                    key_line(value, k),
                    f"`{key}` has unknown language {k!r}",
                    f"use {' or '.join(LANGUAGES)}",
                )
            )
    return texts


def _enum(
    kind: Any, item: dict[str, Any], key: str, default: str, path: Path, problems: list[Problem]
) -> Any:
    value = item.get(key, default)
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        problems.append(
            Problem(
                path,
                key_line(item, key),
                f"`{key}: {value}` is not allowed",
                f"use one of: {allowed}",
            )
        )
        return None


def _unknown_keys(
    item: dict[str, Any], known: set[str], path: Path, problems: list[Problem]
) -> None:
    for key in item:
        if key not in MARKS and key not in known:
            problems.append(
                Problem(
                    path,
                    key_line(item, key),
                    f"unknown key `{key}` (a typo?)",
                    f"known keys: {', '.join(sorted(known))}",
                )
            )


def forbidden_in(text: str, phrases: Iterable[str]) -> list[str]:
    """The forbidden phrases (忌语) that `text` uses, ignoring case."""
    lowered = text.lower()
    return [p for p in phrases if p and p.lower() in lowered]


def check_forbidden(
    texts: dict[str, str],
    forbidden: list[str],
    path: Path,
    line: int | None,
    problems: list[Problem],
    what: str = "",
) -> None:
    """A problem for each forbidden phrase in these texts (an answer, a reply, a notice)."""
    for text in texts.values():
        for phrase in forbidden_in(text, forbidden):
            problems.append(
                Problem(
                    path,
                    line,
                    f"{what}uses the forbidden phrase (忌语) {phrase!r}",
                    "rephrase it politely; the list is texts.forbidden_phrases in config.toml",
                )
            )
