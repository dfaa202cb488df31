"""`bot faq learn` and `bot faq gaps`: what customers taught the bot, offered to the admin.

A question the bot could only half-answer ("did you mean…?") and whose customer then picked a
suggestion becomes a candidate phrasing for the picked entry (`learn`). The admin accepts or
rejects each one; accepted phrasings are written into the entry's FAQ file (comments and layout
kept), and a running `bot run` learns them at its next reload. Nothing is added without the
admin.

Questions the bot had no answer to are grouped (`gaps`), the most asked first, and written as
drafts without answers into faq/drafts.yaml for the admin to complete and move into the FAQ.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.content.config import Config
from bot.content.entries import FaqEntry
from bot.content.faq_writer import FaqEditError, add_questions
from bot.content.problems import only_errors
from bot.domain.clock import SystemClock
from bot.store import phrasings
from bot.store.gap_reads import ASKED_PERSON, FELL_BACK, HANDED_OFF, NOT_HELPED, NOT_PICKED
from bot.store.phrasings import Candidate, normalised
from bot.understanding.gaps import GapCluster


def learn(
    config: Config,
    days: int,
    min_count: int,
    accept: str | None,
    reject: str | None,
    ask: Callable[[str], str] | None = None,
) -> int:
    """List the candidates; apply `--accept`/`--reject` (numbers or "all"), or ask for each one
    when `ask` is given (a terminal). Returns the exit status."""
    from bot.assembly import read_content
    from bot.store.database import Store

    content, problems = read_content(config)
    if only_errors(problems):
        print(
            "bot faq learn: fix the content first (`bot check` lists the problems)", file=sys.stderr
        )
        return 2
    entries = {e.id: e for e in content.faq}
    store = Store(config.storage_url)
    store.migrate()
    now = SystemClock().now()
    try:
        with store.engine.connect() as conn:
            found = phrasings.candidates(conn, now - timedelta(days=days))
        offered = _offerable(found, entries, min_count)
        if not offered:
            print(f"No new phrasings to review from the last {days} days.")
            return 0
        print(f"Phrasings customers used, from the last {days} days:")
        for number, candidate in enumerate(offered, start=1):
            entry = entries[candidate.faq_id]
            print(
                f"{number:>3}. [{candidate.count}×] {candidate.question}  ({candidate.key})\n"
                f"       → {entry.id} ({entry.questions[0]}; {entry.file.name})"
            )
        verdicts = _verdicts(offered, accept, reject, ask)
        if verdicts is None:
            return 2
        if not verdicts:
            print(
                "\nNothing changed. Accept with `bot faq learn --accept 1,3` (or `all`), "
                "reject with `--reject 2`; rejected phrasings are not offered again."
            )
            return 0
        accepted = [c for c, v in verdicts if v == "accepted"]
        if accepted and not _write(config, accepted, entries):
            return 1
        with store.transaction() as tx:
            phrasings.review(tx, verdicts, now)
        rejected = len(verdicts) - len(accepted)
        print(
            f"\n{len(accepted)} phrasing(s) added, {rejected} rejected."
            + (" A running `bot run` learns them at its next reload." if accepted else "")
        )
        return 0
    finally:
        store.close()


def _offerable(
    found: list[Candidate], entries: dict[str, FaqEntry], min_count: int
) -> list[Candidate]:
    """Candidates for entries that still exist, not already a phrasing of any entry."""
    known = {normalised(q) for e in entries.values() for q in e.questions}
    return [
        c
        for c in found
        if c.faq_id in entries and c.count >= min_count and normalised(c.question) not in known
    ]


def _verdicts(
    offered: list[Candidate],
    accept: str | None,
    reject: str | None,
    ask: Callable[[str], str] | None,
) -> list[tuple[Candidate, str]] | None:
    if accept is None and reject is None:
        return _asked(offered, ask) if ask else []
    chosen: dict[int, str] = {}
    for spec, verdict in ((accept, "accepted"), (reject, "rejected")):
        numbers = _numbers(spec, offered) if spec else set()
        if numbers is None:
            print(
                f"bot faq learn: {spec!r}: give numbers from 1 to {len(offered)}, the ids in "
                "brackets, or all",
                file=sys.stderr,
            )
            return None
        for n in numbers:
            if chosen.get(n, verdict) != verdict:
                print(f"bot faq learn: {n} is both accepted and rejected", file=sys.stderr)
                return None
            chosen[n] = verdict
    return [(offered[n - 1], v) for n, v in sorted(chosen.items())]


def _numbers(spec: str, offered: list[Candidate]) -> set[int] | None:
    """The 1-based positions `spec` names: "all", numbers and ranges ("1,3-5"), or the ids in
    brackets, which stay the same while customers keep asking (positions move as counts
    change)."""
    count = len(offered)
    if spec.strip().lower() == "all":
        return set(range(1, count + 1))
    by_key = {c.key: n for n, c in enumerate(offered, start=1)}
    numbers: set[int] = set()
    for part in spec.replace(" ", "").split(","):
        if part.lower() in by_key:
            numbers.add(by_key[part.lower()])
            continue
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            return None
        first, last = int(low), int(high or low)
        if not 1 <= first <= last <= count:
            return None
        numbers.update(range(first, last + 1))
    return numbers


def _asked(offered: list[Candidate], ask: Callable[[str], str]) -> list[tuple[Candidate, str]]:
    verdicts: list[tuple[Candidate, str]] = []
    print("\nFor each: y = add it, n = never offer it again, Enter = decide later, q = stop.")
    for number, candidate in enumerate(offered, start=1):
        try:
            answer = ask(f"{number}. {candidate.question} → {candidate.faq_id}? [y/n/Enter/q] ")
        except EOFError:  # Ctrl-D: keep what was decided so far
            print()
            break
        answer = answer.strip().lower()
        if answer == "q":
            break
        if answer in ("y", "yes", "是"):
            verdicts.append((candidate, "accepted"))
        elif answer in ("n", "no", "否"):
            verdicts.append((candidate, "rejected"))
    return verdicts


def _write(config: Config, accepted: list[Candidate], entries: dict[str, FaqEntry]) -> bool:
    """Write the accepted phrasings into their files; if the content then has a problem it did
    not have before, put every file back and say why."""
    from bot.assembly import read_content

    before = len(only_errors(read_content(config)[1]))
    by_entry: dict[str, list[str]] = defaultdict(list)
    for candidate in accepted:
        by_entry[candidate.faq_id].append(candidate.question)
    originals: dict[Path, str] = {}
    try:
        for entry_id, questions in by_entry.items():
            path = entries[entry_id].file
            originals.setdefault(path, path.read_text(encoding="utf-8"))
            added = add_questions(path, entry_id, questions)
            print(f"  {path}: {entry_id} + {len(added)} phrasing(s)")
    except FaqEditError as exc:
        _restore(originals)
        print(f"bot faq learn: {exc}", file=sys.stderr)
        return False
    after = only_errors(read_content(config)[1])
    if len(after) > before:
        _restore(originals)
        print(
            "bot faq learn: the new phrasings would break the content; nothing was written:",
            file=sys.stderr,
        )
        for problem in after:
            print(f"  {problem}", file=sys.stderr)
        return False
    return True


def _restore(originals: dict[Path, str]) -> None:
    for path, text in originals.items():
        path.write_text(text, encoding="utf-8")


def gaps(
    config: Config,
    days: int,
    at: str | None,
    write: bool,
    limit: int,
    min_customers: int,
) -> int:
    """List the groups of questions the bot had no answer to in the `days` before `at` (a
    date: to the end of that day; default: now); with `write`, merge them into faq/drafts.yaml.
    Returns the exit status."""
    from bot.assembly import content_encoder, load_knowledge
    from bot.content.drafts import Draft, draft_id, write_drafts
    from bot.content.entries import DRAFTS, question_key
    from bot.content.problems import ProblemsError
    from bot.metrics.unanswered import find_gaps
    from bot.store.database import Store

    try:
        knowledge = load_knowledge(config, content_encoder(config))
    except ProblemsError:
        print(
            "bot faq gaps: fix the content first (`bot check` lists the problems)",
            file=sys.stderr,
        )
        return 2
    zone = knowledge.schedules[config.front_schedule].zone
    end = _period_end(at, zone) if at else SystemClock().now()
    start = end - timedelta(days=days)
    store = Store(config.storage_url)
    store.migrate()
    try:
        found = find_gaps(store, knowledge, start, end)
        with store.engine.connect() as conn:
            picked = sum(c.count for c in phrasings.candidates(conn, start))
    finally:
        store.close()
    shown = [c for c in found.clusters if c.customers >= min_customers][:limit]
    rest = len(found.clusters) - len(shown)
    period = f"{start.astimezone(zone):%Y-%m-%d %H:%M} to {end.astimezone(zone):%Y-%m-%d %H:%M}"
    if not found.clusters:
        print(f"No unanswered questions from {period}.")
    else:
        print(
            f"Unanswered questions from {period}: {found.questions} message(s) in "
            f"{len(found.clusters)} group(s), biggest first:"
        )
        for number, group in enumerate(shown, start=1):
            print(f"{number:>3}. {_headline(group)}")
            if group.examples:
                print(f"       e.g. {' · '.join(group.examples)}")
            print(f"       ({_why(group)})")
        if rest:
            print(
                f"  … and {rest} smaller group(s): "
                f"`--min-customers 1 --limit {len(found.clusters)}` lists them."
            )
    if found.answered_now:
        print(f"{found.answered_now} question(s) the FAQ answers now were left out.")
    if found.asked_person:
        print(
            "Answered, but the customer still asked for a person (not unanswered, never "
            "drafted; worth a look if one answer keeps coming up):"
        )
        for group in found.asked_person[:limit]:
            print(f"  - {_headline(group)} ({_why(group)})")
    if picked:
        print(
            f"{picked} question(s) were answered once the customer picked a suggestion: "
            "`bot faq learn` offers them as phrasings."
        )
    if not write:
        if shown:
            print(f"\nWrite them as drafts to answer: `bot faq gaps --write` (faq/{DRAFTS}).")
        return 0
    known = {question_key(q) for e in knowledge.faq.entries for q in e.questions}
    taken = {e.id for e in knowledge.faq.entries}
    drafts = []
    for group in shown:
        if any(question_key(q) in known for q in group.questions):
            continue  # moved into the FAQ already
        wanted = draft_id(group.label)
        drafts.append(
            Draft(
                wanted if wanted not in taken else f"{wanted}-draft",
                group.questions,
                f"{_headline(group, label=False)}, {period} ({_why(group)})",
            )
        )
    path = config.resolve(config.content.faq) / DRAFTS
    try:
        written = write_drafts(path, drafts)
    except FaqEditError as exc:
        print(f"bot faq gaps: {exc}", file=sys.stderr)
        return 1
    for entry_id, reason in written.skipped.items():
        print(f"  {entry_id}: new questions not added: {reason}", file=sys.stderr)
    extended = sum(written.extended.values())
    print(
        f"\n{path}: {len(written.added)} new draft(s)"
        + (
            f", {extended} question(s) added to {len(written.extended)} draft(s)"
            if extended
            else ""
        )
        + f"; {written.unanswered} to answer. Write each one's answer, then move it into a FAQ "
        f"file: the bot never reads {DRAFTS}."
    )
    return 0


def _period_end(at: str, zone: ZoneInfo) -> datetime:
    """`--at`: a date means up to the end of that day; a moment, up to that moment."""
    if len(at.strip()) == 10:
        day = datetime.fromisoformat(at.strip()).date()
        return datetime.combine(day + timedelta(days=1), datetime.min.time(), zone)
    moment = datetime.fromisoformat(at)
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def _headline(group: GapCluster, label: bool = True) -> str:
    line = f"{group.customers} customer(s) · {group.messages} message(s)"
    return f"{line} · {group.label}" if label else line


#: each reason a question counts as unanswered, as `bot faq gaps` tells the admin
WHY_SAID = {
    FELL_BACK: "not understood",
    HANDED_OFF: "handed off after repeated failure",
    NOT_PICKED: "offered suggestions, none picked",
    NOT_HELPED: "answered, then the customer said it did not help",
    ASKED_PERSON: "answered, then the customer asked for a person",
}


def _why(group: GapCluster) -> str:
    parts = [f"{count} {WHY_SAID.get(why, why)}" for why, count in group.why.items()]
    if group.answered_with:
        parts.append("answered with " + ", ".join(group.answered_with))
    return "; ".join(parts)
