"""`bot eval CASES.jsonl`: the real pipeline over scripted cases, scored.

The case and summary formats are in docs/architecture.md."""

from __future__ import annotations

import difflib
import json
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.content.config import Config
from bot.content.problems import Problem, ProblemsError
from bot.domain.clock import FixedClock
from bot.domain.messages import Action, Inbound, Outbound
from bot.understanding.encoders import Encoder

KEYS = ("faq", "intent", "handoff", "queue", "priority", "after_hours")


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    user: str
    channel: str
    at: datetime | None
    expect: dict[str, Any]
    line: int


@dataclass
class _Collector:
    sent: list[Outbound] = field(default_factory=list)

    def send(self, message: Outbound) -> None:
        self.sent.append(message)


def read_cases(path: Path) -> list[Case]:
    cases, problems = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("a case is a JSON object")
            expect = data.get("expect", {})
            unknown = set(expect) - set(KEYS)
            if unknown:
                raise ValueError(
                    f"unknown expect keys {sorted(unknown)}; allowed: {', '.join(KEYS)}"
                )
            at = datetime.fromisoformat(data["at"]) if data.get("at") else None
            if at is not None and at.tzinfo is None:
                raise ValueError(f"`at` needs a UTC offset, e.g. {data['at']}+08:00")
            cases.append(
                Case(
                    str(data.get("id", f"line{number}")),
                    str(data["text"]),
                    str(data.get("user", f"line{number}")),
                    str(data.get("channel", "eval")),
                    at,
                    expect,
                    number,
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(
                Problem(
                    path,
                    number,
                    f"bad case: {exc}",
                    'write {"id": …, "text": …, "user": …, "at": …, "expect": {…}}',
                )
            )
    if problems:
        raise ProblemsError(problems)
    return cases


def evaluate(config: Config, cases: list[Case], encoder: Encoder | None = None) -> dict[str, Any]:
    """Run every case through a fresh pipeline on a temporary store; per-user state carries over."""
    from bot.assembly import build_pipeline

    clock = FixedClock(cases[0].at if cases and cases[0].at else datetime.now(UTC))
    sender = _Collector()
    with tempfile.TemporaryDirectory(prefix="bot-eval-") as folder:
        pipeline = build_pipeline(
            config, clock, sender, store_url=f"sqlite:///{folder}/eval.sqlite3", encoder=encoder
        )
        results = []
        for case in cases:
            if case.at:
                clock.set(case.at)
            sender.sent.clear()
            ctx = pipeline.handle(
                Inbound(
                    channel=case.channel,
                    external_id=f"case-{case.line}",
                    user_id=case.user,
                    chat_id=case.user,
                    text=case.text,
                    at=clock.now(),
                )
            )
            decision = ctx.decision
            handoff = bool(decision and decision.action == Action.HANDOFF)
            got = {
                "faq": decision.faq_id if decision and decision.action == Action.ANSWER else None,
                "intent": decision.intent if decision else None,
                "handoff": handoff,
                "queue": decision.queue if decision and handoff else None,
                "priority": decision.priority.value
                if decision and handoff and decision.priority
                else None,
                "after_hours": bool(decision and decision.notice),
                "action": decision.action.value if decision else None,
                "suggestions": list(decision.suggestions) if decision else [],
                "reply": "\n".join(m.text for m in sender.sent),
                "reasons": list(decision.reasons) if decision else [],
            }
            ok = all(got[key] == value for key, value in case.expect.items())
            results.append({"id": case.id, "ok": ok, "expect": case.expect, "got": got})
        pipeline.store.close()
    summary = summarise(results)
    thresholds = pipeline.knowledge.faq.thresholds
    summary["faq_thresholds"] = {
        "answer": thresholds.answer,
        "suggest": thresholds.suggest,
        "margin": thresholds.margin,
        "source": thresholds.source,
    }
    background = pipeline.knowledge.background
    if background is not None:
        summary["out_of_scope_background"] = {
            "examples": len(background.texts),
            "margin": background.margin,
        }
    return {"summary": summary, "cases": results}


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """FAQ precision: of the answers given from the FAQ where a case says what it expects, how many
    were the expected entry. Recall: of the cases expecting an entry, how many got it. Covered: of
    those, how many got it as the answer or among the suggestions offered. Abstain rate: of the
    cases expecting an entry, how many got no FAQ answer at all."""
    faq_cases = [r for r in results if "faq" in r["expect"]]
    answered = [r for r in faq_cases if r["got"]["faq"] is not None]
    wanted = [r for r in faq_cases if r["expect"]["faq"] is not None]
    right = [r for r in answered if r["got"]["faq"] == r["expect"]["faq"]]
    accuracy = {}
    for key in KEYS:
        relevant = [r for r in results if key in r["expect"]]
        if relevant:
            accuracy[key] = _ratio(
                sum(r["got"][key] == r["expect"][key] for r in relevant), len(relevant)
            )
    return {
        "cases": len(results),
        "passed": sum(r["ok"] for r in results),
        "faq_precision": _ratio(len(right), len(answered)),
        "faq_recall": _ratio(
            len([r for r in wanted if r["got"]["faq"] == r["expect"]["faq"]]), len(wanted)
        ),
        "faq_abstain_rate": _ratio(
            len([r for r in wanted if r["got"]["faq"] is None]), len(wanted)
        ),
        "faq_covered": _ratio(len([r for r in wanted if _covered(r)]), len(wanted)),
        "accuracy": accuracy,
    }


def gate_figures() -> list[str]:
    """The summary's rates a gate may name (every one between 0 and 1, higher is better except
    the abstain rate)."""
    return ["faq_precision", "faq_recall", "faq_covered", "faq_abstain_rate"] + [
        f"accuracy.{key}" for key in KEYS
    ]


def parse_gates(specs: list[str]) -> dict[str, float]:
    """`FIGURE=VALUE` pairs (`faq_precision=0.95`, `accuracy.handoff=1`), checked before any
    case runs: ValueError names a pair that is not FIGURE=NUMBER, a figure the summary does not
    have (with the closest one), or a minimum outside 0–1."""
    known = gate_figures()
    gates = {}
    for spec in specs:
        figure, sep, value = (part.strip() for part in spec.partition("="))
        try:
            if not (sep and figure):
                raise ValueError(spec)
            minimum = float(value)
        except ValueError:
            raise ValueError(f"{spec!r}: write FIGURE=NUMBER, e.g. faq_precision=0.95") from None
        if figure not in known:
            close = difflib.get_close_matches(figure, known, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ValueError(f"{spec!r}: no figure {figure!r}; {hint}there are: {', '.join(known)}")
        if not 0 <= minimum <= 1:
            raise ValueError(f"{spec!r}: the figures are rates from 0 to 1 (0.95 for 95%)")
        gates[figure] = minimum
    return gates


def below(summary: dict[str, Any], gates: dict[str, float]) -> list[str]:
    """What misses its gate: a figure under its minimum, or one this run could not measure (no
    case expected it), which must fail rather than pass quietly."""
    failures = []
    for figure, minimum in gates.items():
        value: Any = summary
        for part in figure.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, int | float):
            failures.append(f"{figure} was not measured: no case expects it")
        elif value < minimum:
            failures.append(f"{figure} {value:.4f} ({value:.2%}) is under {minimum:g}")
    return failures


def _covered(result: dict[str, Any]) -> bool:
    """Answered with the expected entry, or offered it among the suggestions."""
    want, got = result["expect"]["faq"], result["got"]
    return bool(got["faq"] == want or want in got.get("suggestions", []))


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 1.0


#: after the failures on after_hours: the case's expectation encodes the hours it was
#: written for, so a changed schedule fails it without anything being wrong with the bot
SCHEDULE_NOTE = (
    "{count} case(s) failed on after_hours, which follows the schedules (schedules/*.toml) at "
    "each case's `at`: if you changed the hours, update those cases' `at` or `expect` "
    "(`bot hours` shows when people are on duty)"
)


def report(result: dict[str, Any]) -> str:
    """The human-readable form: one line per failed case, then the summary."""
    lines = []
    on_hours = 0
    for case in result["cases"]:
        if case["ok"]:
            continue
        got = case["got"]
        wrong_keys = [k for k, v in case["expect"].items() if got[k] != v]
        wrong = ", ".join(f"{k}: want {case['expect'][k]!r} got {got[k]!r}" for k in wrong_keys)
        reply = got["reply"].replace("\n", " ")[:60]
        hours = "after_hours" in wrong_keys
        on_hours += hours
        lines.append(
            f"FAIL {case['id']}: {wrong}{' [depends on the schedule]' if hours else ''}  "
            f"(reply: {reply})"
        )
    if on_hours:
        lines.append(SCHEDULE_NOTE.format(count=on_hours))
    s = result["summary"]
    lines.append(f"{s['passed']}/{s['cases']} cases passed")
    lines.append(
        f"FAQ precision {s['faq_precision']:.1%}  recall {s['faq_recall']:.1%}  "
        f"covered {s['faq_covered']:.1%}  abstain {s['faq_abstain_rate']:.1%}"
    )
    lines.append("accuracy: " + "  ".join(f"{k} {v:.1%}" for k, v in s["accuracy"].items()))
    if thresholds := s.get("faq_thresholds"):
        lines.append(
            f"FAQ thresholds ({thresholds['source']}): answer ≥ {thresholds['answer']:.2f}, "
            f"suggest ≥ {thresholds['suggest']:.2f}, lead ≥ {thresholds['margin']:.2f} where an "
            "entry has few phrasings"
        )
    if background := s.get("out_of_scope_background"):
        margin = background["margin"]
        lines.append(
            f"out of scope: {background['examples']} background examples, "
            + (f"margin {margin:+.2f}" if margin is not None else "margin not calibrated")
        )
    return "\n".join(lines)
