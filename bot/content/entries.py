"""The files admins edit, `faq/*.yaml` and `intents/*.yaml`, read into typed entries.

Every mistake is collected with its file, line and fix, so `bot check` can report all of them at
once and a broken edit never half-loads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.content.config import LANGUAGES
from bot.content.problems import Problem, shown
from bot.content.yamlsource import LINE_KEY, load_yaml
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
            questions = _texts(item.get("questions"), path, line, "questions", problems)
            answer = _local(item.get("answer"), path, line, "answer", problems)
            category = _enum(
                Category, item.get("category", "consult"), path, line, "category", problems
            )
            _unknown_keys(item, {"id", "questions", "answer", "category"}, path, line, problems)
            check_forbidden(answer, forbidden, path, line, problems)
            if len(problems) == bad and entry_id and category:
                entries.append(FaqEntry(entry_id, tuple(questions), answer, category, path, line))
    return entries, problems


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
            examples = _texts(item.get("examples"), path, line, "examples", problems)
            action = item.get("action")
            if name == OUT_OF_SCOPE:
                if action is not None:
                    problems.append(
                        Problem(
                            path,
                            line,
                            "out_of_scope takes no action",
                            "remove `action:`; the bot falls back on these by itself",
                        )
                    )
            elif action not in ACTIONS:
                problems.append(
                    Problem(
                        path,
                        line,
                        f"action {action!r} is not allowed",
                        f"use one of: {', '.join(ACTIONS)}",
                    )
                )
            queue = item.get("queue")
            if action == "handoff" and queue not in queue_names:
                problems.append(
                    Problem(
                        path,
                        line,
                        f"handoff intent needs a known queue, got {queue!r}",
                        f"use one of the queues in config.toml: {', '.join(sorted(queue_names))}",
                    )
                )
            priority = _enum(
                Priority, item.get("priority", "normal"), path, line, "priority", problems
            )
            category = _enum(
                Category, item.get("category", "consult"), path, line, "category", problems
            )
            act = item.get("act")
            if act is not None and act not in ACT_NAMES:
                problems.append(
                    Problem(
                        path,
                        line,
                        f"act {act!r} is not known",
                        f"use one of: {', '.join(ACT_NAMES)}, or leave `act:` out",
                    )
                )
            reply: dict[str, str] = {}
            if action in ("reply", "handoff") or "reply" in item:
                reply = _local(item.get("reply"), path, line, "reply", problems)
            _unknown_keys(
                item,
                {"name", "examples", "action", "queue", "priority", "category", "reply", "act"},
                path,
                line,
                problems,
            )
            check_forbidden(reply, forbidden, path, line, problems)
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
    for item in data:
        if not isinstance(item, dict):
            problems.append(
                Problem(
                    path,
                    _line_of_text(path, str(item)),
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


def _texts(value: Any, path: Path, line: int, key: str, problems: list[Problem]) -> list[str]:
    if not isinstance(value, list) or not value:
        problems.append(
            Problem(
                path, line, f"`{key}` is missing or empty", f"add `{key}:` with a list of texts"
            )
        )
        return []
    unquoted = [v for v in value if isinstance(v, bool)]
    problems.extend(_unquoted(path, line, key, v) for v in unquoted)
    texts = [
        str(v).strip()
        for v in value
        if isinstance(v, str | int | float) and not isinstance(v, bool)
    ]
    if len(texts) + len(unquoted) != len(value) or not all(texts):
        problems.append(
            Problem(
                path,
                line,
                f"`{key}` has an empty or non-text item",
                "every item must be a line of text",
            )
        )
    return [t for t in texts if t]


def _unquoted(path: Path, line: int, key: str, value: bool) -> Problem:
    """YAML reads an unquoted yes/no/on/off as true/false, not as the word the admin typed."""
    return Problem(
        path,
        line,
        f"`{key}` has {value!r} where a text was meant (an unquoted yes/no?)",
        'put the text in quotes, e.g. "yes" or "No"',
    )


def _local(value: Any, path: Path, line: int, key: str, problems: list[Problem]) -> dict[str, str]:
    if isinstance(value, str) and value.strip():
        return {"zh": value.strip()}
    if not isinstance(value, dict) or not any(k in value for k in LANGUAGES):
        problems.append(
            Problem(path, line, f"`{key}` is missing", f"add `{key}:` with `zh:` and `en:` texts")
        )
        return {}
    for k, v in value.items():
        if k in LANGUAGES and isinstance(v, bool):
            problems.append(_unquoted(path, line, f"{key}.{k}", v))
    texts = {
        k: str(v).strip()
        for k, v in value.items()
        if k in LANGUAGES and v is not None and not isinstance(v, bool) and str(v).strip()
    }
    if not texts:
        problems.append(Problem(path, line, f"`{key}` has no text", "write the zh and en texts"))
    for k in value:
        if k != LINE_KEY and k not in LANGUAGES:
            problems.append(
                Problem(
                    path,
                    line,
                    f"`{key}` has unknown language {k!r}",
                    f"use {' or '.join(LANGUAGES)}",
                )
            )
    return texts


def _enum(kind: Any, value: Any, path: Path, line: int, key: str, problems: list[Problem]) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        problems.append(
            Problem(path, line, f"`{key}: {value}` is not allowed", f"use one of: {allowed}")
        )
        return None


def _unknown_keys(
    item: dict[str, Any], known: set[str], path: Path, line: int, problems: list[Problem]
) -> None:
    for key in item:
        if key != LINE_KEY and key not in known:
            problems.append(
                Problem(
                    path,
                    line,
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
