"""What fuzzing throws at the files people edit and at what customers type, and the properties
each parser must keep. tests/test_content_fuzz.py runs them briefly in CI; bench/fuzz.py runs
them with 10^5 inputs and more. Each property returns the ways it was broken (empty: kept), so
the bench can count failures instead of stopping at the first.

The content properties work on a copy of the shipped content (config.toml, faq/, intents/,
schedules/ at the project's root): one file is replaced by a generated document, then `bot
check` (bot.assembly.check) and the readers hot reload uses must answer with problems that
name a file and a line, or accept it; never raise.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tomllib
import traceback
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import yaml
from hypothesis import strategies as st

from bot.assembly import check
from bot.content.problems import Problem, only_errors
from bot.hours.schedule import Schedule, read_schedules
from bot.pipeline.survey import parse_score

ROOT = Path(__file__).resolve().parents[2]
#: the shipped files a mutation starts from, relative to ROOT
SHIPPED = {
    "config": "config.toml",
    "faq": "faq/orders.yaml",
    "intents": "intents/service.yaml",
    "schedules": "schedules/default.toml",
}


def copy_shipped(target: Path) -> Path:
    """The shipped content (config.toml and its folders) copied to `target`; its config.toml."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "config.toml", target / "config.toml")
    for folder in ("faq", "intents", "schedules"):
        shutil.copytree(ROOT / folder, target / folder, dirs_exist_ok=True)
    return target / "config.toml"


# --- values of every type, including the odd ones ------------------------------------------

#: text a careless edit or a paste brings: control characters, right-to-left marks, zero-width
#: joiners, emoji, CJK, lone combining marks, NUL
odd_text = st.one_of(
    st.text(max_size=40),
    st.lists(
        st.sampled_from(
            [
                "\x00",
                "\t",
                "\r",
                "\u200b",
                "\u200d",
                "\u202e",
                "\ufeff",
                "\u0301",
                "😀",
                "密",
                "码",
                "　",
                "\\",
                '"',
                "'",
                ":",
                "#",
                "{",
                "}",
                "[",
                "]",
                "-",
                "\n",
                "%",
                "{next_open}",
                "{hours}",
                "{seconds}",
                "{",
                "�",
                "a",
            ]
        ),
        max_size=30,
    ).map("".join),
    st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=8), st.integers(100, 20_000)),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    odd_text,
    st.sampled_from(
        [
            "",
            "zh",
            "en",
            "handoff",
            "reply",
            "answer",
            "general",
            "default",
            "mon",
            "09:00-18:00",
            "24:00-00:00",
            "2026-02-30",
            "Asia/Shanghai",
            "CN",
            "high",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4),
    max_leaves=8,
)
toml_dates = st.one_of(
    st.dates(),
    st.datetimes(timezones=st.none() | st.just(UTC)),
    st.times(),
)


# --- structured documents with the right shape and wrong parts ------------------------------


def _faq_item(id_: Any, questions: Any, answer: Any, extra: dict[str, Any]) -> dict[str, Any]:
    return {"id": id_, "questions": questions, "answer": answer, **extra}


faq_items = st.builds(
    _faq_item,
    st.one_of(st.sampled_from(["a", "a", "shipping-time", "Bad Id", "x" * 80]), values),
    st.one_of(st.lists(odd_text, max_size=4), values),
    st.one_of(st.fixed_dictionaries({"zh": odd_text}, optional={"en": odd_text}), values),
    st.dictionaries(st.sampled_from(["category", "tags", "answer_zh", "id"]), values, max_size=2),
)
intent_items = st.builds(
    lambda name, action, queue, extra: {"name": name, "action": action, "queue": queue, **extra},
    st.one_of(st.sampled_from(["greeting", "greeting", "out_of_scope", "faq", "x" * 80]), values),
    st.one_of(st.sampled_from(["reply", "handoff", "answer", "bogus"]), values),
    st.one_of(st.sampled_from(["general", "complaints", "nowhere"]), values),
    st.dictionaries(
        st.sampled_from(["examples", "reply", "priority", "category", "act", "bogus"]),
        values,
        max_size=4,
    ),
)
time_ranges = st.one_of(
    st.builds(
        "{:02d}:{:02d}-{:02d}:{:02d}".format,
        *[st.integers(0, 99)] * 4,
    ),
    values,
)
date_keys = st.one_of(
    st.dates().map(str),
    st.builds(lambda a, b: f"{a}..{b}", st.dates(), st.dates()),
    st.sampled_from(
        [
            "2026-02-30",
            "2026-12-31..2026-12-01",
            "9999-12-31",
            "0001-01-01..9999-12-31",
            "2026-12-31",
            "2026-12-31..9999-12-31",
            "tomorrow",
        ]
    ),
    odd_text,
)
zones = st.one_of(
    st.sampled_from(
        [
            "Asia/Shanghai",
            "UTC",
            "Etc/GMT+14",
            "Europe/Berlin",
            "Mars/Olympus",
            "../../etc/passwd",
            "",
            "asia/shanghai",
            "Asia/Shanghai\x00",
            "/",
            ".",
        ]
    ),
    values,
)
schedule_documents = st.fixed_dictionaries(
    {},
    optional={
        "timezone": zones,
        "holidays": st.one_of(st.sampled_from(["CN", "HK", "US", "DE-BY", "XX", "CN-??"]), values),
        "adjusted_workday": st.one_of(st.sampled_from(["mon", "sun", "Mon", "funday"]), values),
        "weekly": st.one_of(
            st.dictionaries(
                st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun", "monday"]),
                st.lists(time_ranges, max_size=4) | values,
                max_size=8,
            ),
            values,
        ),
        "dates": st.one_of(
            st.dictionaries(date_keys, st.lists(time_ranges, max_size=3) | values, max_size=4),
            values,
        ),
        "greetings": st.one_of(
            st.dictionaries(odd_text, st.dictionaries(st.sampled_from(["zh", "en"]), values)),
            values,
        ),
        "notice": st.one_of(st.fixed_dictionaries({"zh": odd_text}), values),
        "handoff_notice": values,
        "bogus": values,
    },
)


def _flat_keys(table: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    keys = []
    for key, value in table.items():
        keys.append((*prefix, key))
        if isinstance(value, dict):
            keys += _flat_keys(value, (*prefix, key))
    return keys


def _edited(document: dict[str, Any], edits: list[tuple[tuple[str, ...], str, Any]]) -> Any:
    """The document with each edit applied: a key's value replaced, the key deleted, or an
    unknown key added beside it."""
    copy = json.loads(json.dumps(document, default=str))
    for path, action, value in edits:
        table = copy
        for part in path[:-1]:
            if not isinstance(table, dict) or not isinstance(table.get(part), dict):
                break
            table = table[part]
        else:
            if action == "replace":
                table[path[-1]] = value
            elif action == "delete":
                table.pop(path[-1], None)
            else:
                table[f"{path[-1]}_{action}"] = value
    return copy


def edits_of(document: dict[str, Any]) -> st.SearchStrategy[Any]:
    """`document` with one to three of its keys given wrong values, deleted or doubled."""
    keys = _flat_keys(document)
    edit = st.tuples(
        st.sampled_from(keys), st.sampled_from(["replace", "replace", "delete", "extra"]), values
    )
    return st.lists(edit, min_size=1, max_size=3).map(lambda edits: _edited(document, edits))


def _shipped_toml(name: str) -> dict[str, Any]:
    return tomllib.loads((ROOT / SHIPPED[name]).read_text(encoding="utf-8"))


def _shipped_yaml(name: str) -> Any:
    return yaml.safe_load((ROOT / SHIPPED[name]).read_text(encoding="utf-8"))


# --- writing documents back as text ---------------------------------------------------------


def _toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_key(key: Any) -> str:
    text = str(key)
    return text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else _toml_string(text)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if -(2**63) <= value < 2**63 else _toml_string(str(value))
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if value is None:
        return '""'  # TOML has no null: an empty string is as close as a person would write
    return _toml_string(str(value))


def to_toml(document: Any) -> str:
    """A TOML text of `document` (tables as [headers], the rest inline); not a dict: a value."""
    if not isinstance(document, dict):
        return f"value = {_toml_value(document)}\n"
    lines: list[str] = []
    tables: list[tuple[tuple[str, ...], dict[str, Any]]] = []

    def emit(prefix: tuple[str, ...], table: dict[str, Any]) -> None:
        if prefix:
            lines.append("[" + ".".join(_toml_key(p) for p in prefix) + "]")
        nested = []
        for key, value in table.items():
            if isinstance(value, dict) and value:
                nested.append((key, value))
            else:
                lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
        for key, value in nested:
            tables.append(((*prefix, str(key)), value))

    emit((), document)
    while tables:
        prefix, table = tables.pop(0)
        emit(prefix, table)
    return "\n".join(lines) + "\n"


def to_yaml(document: Any) -> str:
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)


# --- raw byte mutations of the shipped files ------------------------------------------------


def _mutate(data: bytes, operations: list[tuple[str, int, int, bytes]]) -> bytes:
    for kind, at, length, chunk in operations:
        at = at % (len(data) + 1)
        if kind == "flip" and data:
            at %= len(data)
            data = data[:at] + bytes([data[at] ^ (1 << (length % 8))]) + data[at + 1 :]
        elif kind == "insert":
            data = data[:at] + chunk + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + length :]
        elif kind == "duplicate":
            data = data[:at] + data[at : at + length] + data[at:]
        elif kind == "truncate":
            data = data[:at]
    return data


_chunks = st.one_of(
    st.binary(max_size=8),
    st.sampled_from(
        [
            b"\n",
            b"[",
            b"]",
            b"{",
            b'"',
            b"'",
            b":",
            b"- ",
            b"  ",
            b"\t",
            b"=",
            b"#",
            b"\xff\xfe",
            b"\xe5\xaf",
            b"\x00",
            b"&a",
            b"*a",
            b"!!python/object",
            b"..",
            b"[weekly]\n",
            b"[dates]\n",
            b"\n- id: x\n",
            b"---\n",
            b"? [a]\n: b\n",
            b"[" * 3000,
            b"{a: " * 500,
            b"&x [*x]",
            b'"2026-01-01..9999-12-31" = []\n',
        ]
    ),
)
byte_edits = st.lists(
    st.tuples(
        st.sampled_from(["flip", "insert", "insert", "delete", "duplicate", "truncate"]),
        st.integers(0, 1 << 20),
        st.integers(1, 200),
        _chunks,
    ),
    min_size=1,
    max_size=6,
)


def mutations_of(name: str) -> st.SearchStrategy[bytes]:
    original = (ROOT / SHIPPED[name]).read_bytes()
    return byte_edits.map(lambda ops: _mutate(original, ops))


def documents(name: str) -> st.SearchStrategy[bytes]:
    """Everything fuzzing writes into the shipped file `name` (SHIPPED): its own document with
    wrong parts, a document of the right shape from scratch, raw byte mutations."""
    if name == "config":
        shaped = edits_of(_shipped_toml("config")).map(to_toml)
        fresh = st.dictionaries(odd_text, values, max_size=4).map(to_toml)
    elif name == "schedules":
        shaped = edits_of(_shipped_toml("schedules")).map(to_toml)
        fresh = schedule_documents.map(to_toml)
    else:
        items = faq_items if name == "faq" else intent_items
        shipped = _shipped_yaml(name)
        # the shipped entries, some of them edited and appended again (so duplicates too)
        edited_entries: st.SearchStrategy[Any] = st.lists(
            st.integers(0, len(shipped) - 1), min_size=1, max_size=2
        ).flatmap(
            lambda picks: edits_of({str(i): shipped[i] for i in picks}).map(
                lambda edited: [*shipped, *edited.values()]
            )
        )
        shaped = st.one_of(edited_entries, st.lists(items, max_size=5), values).map(to_yaml)
        fresh = st.lists(items, max_size=4).map(to_yaml)
    return st.one_of(
        shaped.map(lambda t: t.encode("utf-8", "surrogatepass")),
        fresh.map(lambda t: t.encode("utf-8", "surrogatepass")),
        mutations_of(name),
    )


# --- the properties -------------------------------------------------------------------------


def _unexpected(what: str) -> str:
    return f"{what} raised:\n{traceback.format_exc(limit=-6)}"


def problems_point_somewhere(problems: list[Problem], root: Path) -> list[str]:
    """Each error names a file under `root` and the line to look at."""
    broken = []
    for problem in only_errors(problems):
        try:
            Path(problem.file).resolve().relative_to(root.resolve())
        except ValueError:
            broken.append(f"error outside the content: {problem}")
        if problem.line is None and Path(problem.file).is_file():
            broken.append(f"error without a line: {problem}")
    return broken


def content_property(config_path: Path, name: str, data: bytes) -> list[str]:
    """Write `data` into the shipped file `name` of the content beside `config_path`; `bot
    check` and the readers hot reload uses answer with problems naming file:line, or accept.
    The file is put back afterwards, so one copy serves many examples."""
    root = config_path.parent
    target = root / SHIPPED[name]
    original = target.read_bytes()
    target.write_bytes(data)
    try:
        try:
            problems = check(config_path)
        except Exception:
            return [_unexpected(f"bot check on {SHIPPED[name]}")]
        broken = problems_point_somewhere(problems, root)
        if name == "schedules":
            try:
                schedules, found = read_schedules(root / "schedules")
            except Exception:
                return [*broken, _unexpected("the schedule reload")]
            broken += problems_point_somewhere(found, root)
            if not only_errors(found):
                broken += schedule_property(
                    schedules["default"], datetime(2026, 11, 24, 10, tzinfo=UTC), 3
                )
        return broken
    finally:
        target.write_bytes(original)


# --- survey answers and schedules -----------------------------------------------------------

survey_texts = st.one_of(
    st.text(max_size=20),
    st.builds(
        lambda pre, n, post: f"{pre}{n}{post}",
        st.sampled_from(["", " ", "　", "给", "+", "-", "０", "⑤"]),
        st.sampled_from(
            [
                "5",
                "10",
                "11",
                "０",
                "五",
                "十",
                "两",
                "★★★",
                "⭐⭐⭐⭐⭐",
                "☆",
                "99",
                "٣",
                "𝟓",
                "²",
                "Ⅴ",
                "፭",
                "5.5",
                "1e3",
            ]
        ),
        st.sampled_from(["", "分", "星", "颗星", "stars", "/5", "/10", "！", "。", "~", " points"]),
    ),
)
survey_scales = st.sampled_from([(1, 5), (0, 10), (1, 10), (1, 3)])


def survey_property(text: str, low: int, high: int) -> list[str]:
    """A survey answer is a score within the scale, or not an answer; never an exception."""
    try:
        score = parse_score(text, low, high)
    except Exception:
        return [_unexpected(f"parse_score({text!r}, {low}, {high})")]
    if score is not None and not (isinstance(score, int) and low <= score <= high):
        return [f"parse_score({text!r}, {low}, {high}) = {score!r}, out of range"]
    return []


moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.timezones()
)


def schedule_property(schedule: Schedule, at: datetime, days: int = 3) -> list[str]:
    """Asked about any moment, a schedule answers: open or not, and the next opening and closing
    are after `at` and agree with is_open."""
    broken: list[str] = []
    try:
        is_open = schedule.is_open(at)
        opens = schedule.next_open(at)
        closes = schedule.next_close(at)
        schedule.explain(at)
        schedule.notice_text("zh", at)
        schedule.notice_text("en", at)
        schedule.greeting(at, "zh")
        for offset in range(days):
            schedule.day_plan(at.date() + timedelta(days=offset))
    except Exception:
        return [_unexpected(f"schedule {schedule.name} at {at.isoformat()}")]
    if opens is not None and opens <= at:
        broken.append(f"next_open {opens} not after {at}")
    if opens is not None and not schedule.is_open(opens):
        broken.append(f"closed at its own next opening {opens} (asked at {at})")
    if closes is not None and is_open and closes <= at:
        broken.append(f"next_close {closes} not after {at} while open")
    return broken


def run_counting(
    prop: Callable[..., list[str]], strategy: st.SearchStrategy[Any], examples: int
) -> dict[str, Any]:
    """Run `prop` on `examples` inputs drawn by hypothesis without stopping at a failure: the
    bench's figures (inputs run, failures, the first few failures, seconds)."""
    import time

    from hypothesis import HealthCheck, given, settings

    found: list[str] = []
    first: dict[str, tuple[str, str]] = {}
    ran = 0
    slowest = (0.0, "")

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(args: Any) -> None:
        nonlocal ran, slowest
        ran += 1
        began = time.perf_counter()
        broken = prop(*args) if isinstance(args, tuple) else prop(args)
        took = time.perf_counter() - began
        if took > slowest[0]:
            slowest = (took, repr(args)[:300])
        found.extend(broken)
        for failure in broken:
            first.setdefault(_kind(failure), (repr(args)[:2000], failure))

    start = time.perf_counter()
    run()
    return {
        "inputs": ran,
        "failures": len(found),
        "kinds": sorted(first)[:20],
        "seconds": round(time.perf_counter() - start, 2),
        "slowest": {"seconds": round(slowest[0], 3), "input": slowest[1]},
        "first": {kind: {"input": i, "failure": f} for kind, (i, f) in sorted(first.items())[:20]},
    }


def _kind(failure: str) -> str:
    """A failure's kind: its first line without the generated values, or the exception raised."""
    lines = failure.splitlines()
    if "raised:" in lines[0] and len(lines) > 1:
        return f"raised {lines[-1].split(':')[0]} in {lines[-3].strip()[:120]}"
    return re.sub(r"'.*'|\".*\"|\[.*\]|\d+|/tmp/\S+", "_", lines[0])[:120]


# --- the agents' console: every form and query string -----------------------------------------

#: what may stand where a ticket number or a report's name goes in a path
path_parts = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["1", "0", "-1", "00001", "١٢", "1e3", "9" * 30, "..", "%2e%2e", "2026-W48"]),
    st.text(min_size=1, max_size=30),
)
form_values = st.one_of(
    odd_text,
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(
        [
            "",
            "1",
            "0",
            "queue:general",
            "queue:nowhere",
            "agent:alice",
            "agent:",
            "queue:",
            ":",
            "zh",
            "en",
            "resolved",
            "closed",
            "#1",
            "#" + "9" * 30,
            "/console/",
            "//evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
        ]
    ),
)
#: (method, path with {t} for a ticket and {s} for a report, the fields it reads)
CONSOLE_ROUTES = [
    ("GET", "/console/", ()),
    ("GET", "/console/login", ()),
    ("GET", "/console/done", ("status", "shown")),
    ("GET", "/console/search", ("q",)),
    ("GET", "/console/tickets/{t}", ()),
    ("GET", "/console/tickets/{t}/live", ()),
    ("GET", "/console/tickets/{t}/assist", ()),
    ("GET", "/console/supervisor", ()),
    ("GET", "/console/fragments/overview", ()),
    ("GET", "/console/fragments/waiting", ()),
    ("GET", "/console/fragments/supervisor", ()),
    ("GET", "/console/reports/{s}", ()),
    ("POST", "/console/login", ("login", "password")),
    ("POST", "/console/language", ("lang", "next")),
    ("POST", "/console/claim-next", ()),
    ("POST", "/console/tickets/{t}/claim", ()),
    ("POST", "/console/tickets/{t}/check", ("text",)),
    ("POST", "/console/tickets/{t}/reply", ("text", "confirmed")),
    ("POST", "/console/tickets/{t}/transfer", ("target", "note")),
    ("POST", "/console/tickets/{t}/resolve", ()),
]


def _console_request(
    route: tuple[str, str, tuple[str, ...]],
    part: str,
    fields: dict[str, str],
    extra: dict[str, str],
    csrf: bool,
    htmx: bool,
) -> dict[str, Any]:
    method, template, _ = route
    path = template.replace("{t}", quote(part, safe="")).replace("{s}", quote(part, safe=""))
    return {
        "method": method,
        "path": path,
        "fields": {**extra, **fields},
        "csrf": csrf,
        "htmx": htmx,
    }


def _route_request(route: tuple[str, str, tuple[str, ...]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        _console_request,
        st.just(route),
        st.one_of(st.sampled_from(["1", "2"]), path_parts),
        st.fixed_dictionaries({}, optional=dict.fromkeys(route[2], form_values)),
        st.dictionaries(st.text(max_size=10), form_values, max_size=2),
        st.booleans().map(lambda b: b or route[0] == "GET"),
        st.booleans(),
    )


console_requests = st.one_of(*[_route_request(route) for route in CONSOLE_ROUTES])


async def console_property(client: Any, token: str, request: dict[str, Any]) -> list[str]:
    """A console request answers with a page, a redirect or a 4xx with a message; never a
    500. A POST without the session's CSRF token is refused (403; 413 when it is too big to
    read) before anything is done.
    `client` is an aiohttp TestClient logged in as an agent, `token` its session's CSRF token."""
    method, path, fields = request["method"], request["path"], dict(request["fields"])
    headers = {"HX-Request": "true"} if request["htmx"] else {}
    if method == "POST" and request["csrf"]:
        fields["csrf"] = token
    else:
        fields.pop("csrf", None)
    what = f"{method} {path} {fields!r}"[:300]
    encoded = urlencode(fields)
    try:
        if method == "GET":
            url = f"{path}?{encoded}" if encoded else path
            response = await client.get(url, headers=headers, allow_redirects=False)
        else:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            response = await client.post(
                path, data=encoded.encode(), headers=headers, allow_redirects=False
            )
        body = await response.text()
    except Exception:
        return [_unexpected(what)]
    broken = []
    if response.status >= 500:
        broken.append(f"{response.status} on {what}: {body[:300]}")
    elif 400 <= response.status < 500 and not body.strip() and response.status != 401:
        broken.append(f"{response.status} without a message on {what}")
    if method == "POST" and not request["csrf"] and response.status not in (403, 413):
        broken.append(f"POST without CSRF answered {response.status}: {what}")
    return broken
