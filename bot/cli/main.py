"""The `bot` command: init, run, chat, check, eval, hours, faq, agents, customers, report, db.

This is the composition root, the one place that wires channel adapters to the core.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import date, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.content.config import Config, find_config, load_config
from bot.content.problems import Problem, ProblemsError, only_errors, only_warnings
from bot.domain.clock import ShiftedClock, SystemClock

if TYPE_CHECKING:
    from bot.pipeline.runner import Pipeline
    from bot.understanding.encoders import Encoder


def _installed_version() -> str:
    """The installed release (pyproject's version), as `pip show` would say it."""
    try:
        return metadata.version("qingmu-support-bot")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bot",
        description="Customer-service bot for web chat, WeChat, WeCom, Telegram and a JSON "
        "webhook.",
    )
    parser.add_argument(
        "--config", help="path to config.toml (default: $BOT_CONFIG or ./config.toml)"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log what the bot does to stderr"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_installed_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    chat = commands.add_parser("chat", help="talk to the bot in the terminal")
    chat.add_argument(
        "--at", help='pretend it is this moment, e.g. "2026-11-24 23:00" (schedule time zone)'
    )
    chat.add_argument(
        "--user", help="customer id to chat as (default: a new customer each session)"
    )
    chat.add_argument("--no-why", action="store_true", help="hide the line explaining each reply")

    run_parser = commands.add_parser(
        "run", help="serve the channels, /healthz and /readyz (defaults from [service])"
    )
    run_parser.add_argument("--host", help="address to listen on (default: service.host)")
    run_parser.add_argument(
        "--port", type=_port, help="port to listen on, 1-65535 (default: service.port)"
    )

    demo_parser = commands.add_parser(
        "demo",
        help="try the bot in the browser: a sample shop page with the web chat, and the console",
    )
    demo_parser.add_argument(
        "--port",
        type=_port,
        default=8080,
        help="the shop page's port (default 8080); the service takes the next one",
    )

    commands.add_parser("check", help="validate config.toml and the content folders")

    start = commands.add_parser(
        "init", help="write a new deployment folder (config, FAQ, intents, hours) to edit"
    )
    start.add_argument("folder", type=Path, help="a new or empty folder")

    hours = commands.add_parser("hours", help="show business hours: now, the next days, and why")
    hours.add_argument(
        "--at", help='explain this moment, e.g. "2026-10-01 10:00" (schedule time zone)'
    )
    hours.add_argument(
        "--days", type=int, default=14, help="how many days ahead to list (default 14)"
    )

    evaluate = commands.add_parser("eval", help="score the bot on a JSONL file of cases")
    evaluate.add_argument("cases", type=Path)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    evaluate.add_argument(
        "--fail-under",
        metavar="FIGURE=VALUE",
        action="append",
        default=[],
        help="exit 1 when a summary figure is below VALUE, e.g. faq_precision=0.95 or "
        "accuracy.handoff=1 (repeatable): a quality gate for CI",
    )

    faq = commands.add_parser(
        "faq", help="the FAQ: phrasings learnt from customers, questions it could not answer"
    )
    faq_actions = faq.add_subparsers(dest="faq_action", required=True)
    learn = faq_actions.add_parser(
        "learn",
        help="review questions customers resolved by picking a suggestion; add the accepted "
        "ones to the FAQ files",
    )
    learn.add_argument("--days", type=int, default=90, help="look this far back (default 90)")
    learn.add_argument(
        "--min-count", type=int, default=1, help="offer only questions asked this often"
    )
    learn.add_argument("--accept", help='numbers to add to the FAQ, e.g. "1,3-5", or "all"')
    learn.add_argument("--reject", help="numbers never to offer again")
    gaps = faq_actions.add_parser(
        "gaps",
        help="group the questions the bot had no answer to, biggest first; --write adds them "
        "to faq/drafts.yaml for you to answer",
    )
    gaps.add_argument("--days", type=int, default=7, help="look this far back (default 7)")
    gaps.add_argument("--at", help='the period ends on this day, e.g. "2026-11-24" (default: now)')
    gaps.add_argument(
        "--write", action="store_true", help="merge the groups listed into faq/drafts.yaml"
    )
    gaps.add_argument("--limit", type=int, default=20, help="list at most this many groups")
    gaps.add_argument(
        "--min-customers",
        type=int,
        default=2,
        help="list groups asked by at least this many customers (default 2)",
    )

    people = commands.add_parser("agents", help="who may log in to the agents' console")
    people_actions = people.add_subparsers(dest="agents_action", required=True)
    people_actions.add_parser("list", help="every agent, role and state")
    for action, text in [
        ("add", "add an agent (asks for the password)"),
        ("passwd", "set an agent's password (lifts a lock-out)"),
        ("disable", "stop an agent from logging in"),
        ("enable", "let a disabled agent log in again"),
        ("queues", "show or set the queues an agent works"),
    ]:
        sub = people_actions.add_parser(action, help=text)
        sub.add_argument("login")
        if action in ("add", "queues"):
            sub.add_argument(
                "--queues",
                default=None,
                help=(
                    "comma-separated queues from config.toml, or `all`"
                    + (
                        " (default: every queue)"
                        if action == "add"
                        else " (none given: show the agent's queues)"
                    )
                ),
            )
        if action == "add":
            sub.add_argument("--name", help="shown to colleagues (default: the login)")
            sub.add_argument(
                "--role",
                choices=["agent", "supervisor", "admin"],
                default="agent",
                help="agent (default), supervisor or admin",
            )
        if action in ("add", "passwd"):
            sub.add_argument(
                "--password-stdin",
                action="store_true",
                help="read the password as one line on standard input (for scripts)",
            )

    people_data = commands.add_parser(
        "customers", help="a customer's data: give it to them, or erase it (PIPL/GDPR)"
    )
    people_data_actions = people_data.add_subparsers(dest="customers_action", required=True)
    giving = people_data_actions.add_parser(
        "export", help="everything stored about a customer, as JSON"
    )
    erasing = people_data_actions.add_parser(
        "forget", help="erase a customer's messages, decisions, tickets and replies"
    )
    for sub in (giving, erasing):
        sub.add_argument("customer", help="CHANNEL:ID as the console shows it, e.g. telegram:42")
    giving.add_argument("--out", type=Path, help="write to this file (default: standard output)")
    erasing.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    erasing.add_argument("--note", help="kept with the record, e.g. the request's reference")

    report = commands.add_parser(
        "report", help="the weekly service report: an HTML page and its numbers as JSON"
    )
    report.add_argument(
        "--week", action="store_true", required=True, help="report a week (Monday to Sunday)"
    )
    report.add_argument(
        "--at",
        help="a date in the week to report, e.g. 2026-11-25 (default: the last full week)",
        type=_date,
    )
    report.add_argument(
        "--out", type=Path, help="folder to write to (default: [reports] dir, var/reports)"
    )
    report.add_argument(
        "--lang", choices=["zh", "en"], help="labels' language (default: content.languages[0])"
    )

    db = commands.add_parser(
        "db", help="the database: migrate it, show its revision, back it up, restore it"
    )
    db_actions = db.add_subparsers(dest="db_action", required=True)
    db_actions.add_parser("upgrade", help="migrate now and print the revision")
    db_actions.add_parser(
        "current", help="print the revision and whether it is the newest (exit 1 if not)"
    )
    saving = db_actions.add_parser(
        "backup", help="copy the database to a new file while the workers run"
    )
    saving.add_argument("path", type=Path, help="the backup file to write (must not exist)")
    putting_back = db_actions.add_parser(
        "restore",
        help="replace the database with a backup (workers stopped; the current content is "
        "saved beside the backup first)",
    )
    putting_back.add_argument("path", type=Path, help="a file `bot db backup` wrote")

    args = parser.parse_args(argv)
    from bot.cli.logs import configure

    configure(args.verbose)
    if args.command == "init":
        from bot.cli.init import init

        return init(args.folder)
    config_path = find_config(args.config)
    try:
        if args.command == "check":
            return _check(config_path)
        config = load_config(config_path)
        if args.command == "hours":
            return _hours(config, args.at, args.days)
        if args.command == "chat":
            return _chat(config, args.at, args.user, why=not args.no_why)
        if args.command == "demo":
            from bot.cli.demo import demo

            return demo(config, args.port)
        if args.command == "run":
            from bot.cli.run import serve

            return serve(config, args.host, args.port)
        if args.command == "faq" and args.faq_action == "gaps":
            from bot.cli.faq import gaps as unanswered

            return unanswered(
                config, args.days, args.at, args.write, args.limit, args.min_customers
            )
        if args.command == "faq":
            from bot.cli.faq import learn as learn_phrasings

            interactive = sys.stdin.isatty() and sys.stdout.isatty()
            return learn_phrasings(
                config,
                args.days,
                args.min_count,
                args.accept,
                args.reject,
                ask=input if interactive else None,
            )
        if args.command == "agents":
            from bot.cli.agents import agents_command

            return agents_command(
                config,
                args.agents_action,
                getattr(args, "login", None),
                getattr(args, "name", None),
                getattr(args, "role", "agent"),
                getattr(args, "password_stdin", False),
                getattr(args, "queues", None),
            )
        if args.command == "customers":
            from bot.cli.customers import customers_command

            interactive = sys.stdin.isatty() and sys.stdout.isatty()
            return customers_command(
                config,
                args.customers_action,
                args.customer,
                out=getattr(args, "out", None),
                yes=getattr(args, "yes", False),
                note=getattr(args, "note", None),
                ask=input if interactive else None,
            )
        if args.command == "report":
            from bot.cli.report import report_week

            return report_week(config, args.at, args.out, args.lang)
        if args.command == "db":
            from bot.cli.db import db as database

            return database(config, args.db_action, getattr(args, "path", None))
        return _eval(config, args.cases, args.json, args.fail_under)
    except ProblemsError as exc:
        print(f"bot: cannot start, {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`bot chat | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _date(text: str) -> str:
    try:
        date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-25") from None
    return text


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1-65535)")
    return int(text)


def _check(config_path: Path) -> int:
    from bot.cli.progress import step

    with step("reading the settings and content", sys.stderr):
        from bot.assembly import act_lines, check

        problems = check(config_path)
    errors, warnings = only_errors(problems), only_warnings(problems)
    for problem in errors + warnings:
        print(problem)
    if errors:
        also = f", and {len(warnings)} warning(s)" if warnings else ""
        print(f"{len(errors)} problem(s) found{also}.")
        return 1
    also = f", with {len(warnings)} warning(s)" if warnings else ""
    print(f"{config_path}: config and content are valid{also}.")
    print("Each intent is taken as this customer act (an intent may set `act:` itself):")
    print("\n".join(act_lines(load_config(config_path))))
    return 0


def _chat(config: Config, at: str | None, user: str | None, why: bool) -> int:
    """A chat on the real clock uses the configured store, as `bot run` does: its tickets reach
    the agents' queue. A chat on a pretend clock (`--at`) uses a scratch store deleted at the
    end: its tickets, dated in the past or the future, must never reach the queue, the
    metrics or the consoles."""
    from bot.cli.progress import LEARNING, step

    with step("starting", sys.stderr):
        import sqlalchemy as sa

        from adapters.terminal import TerminalSender
        from bot.assembly import build_pipeline, content_encoder, load_knowledge

    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    sender = TerminalSender(sys.stdout, color)
    encoder = content_encoder(config)
    with tempfile.TemporaryDirectory(prefix="bot-chat-") as scratch:
        if at:
            with step(LEARNING, sys.stderr):
                knowledge = load_knowledge(config, encoder)
            zone = knowledge.schedules[config.front_schedule].zone
            moment = _moment(at, zone)
            pipeline = build_pipeline(
                config,
                ShiftedClock(moment),
                sender,
                store_url=f"sqlite:///{scratch}/chat.sqlite3",
                knowledge=knowledge,
            )
            print(
                f"(pretend clock {moment:%Y-%m-%d %H:%M} {zone.key}: this chat uses a scratch "
                "database deleted when it ends; storage.url is not touched)",
                flush=True,
            )
        else:
            with step(LEARNING, sys.stderr):
                pipeline = build_pipeline(config, SystemClock(), sender, encoder=encoder)
            shown = sa.engine.make_url(config.storage_url).render_as_string(hide_password=True)
            print(
                f"(this chat is stored in {shown} (storage.url), as `bot run`'s messages are: "
                "a handoff puts a real ticket in the agents' queue)",
                flush=True,
            )
        try:
            return _chat_on(pipeline, config, encoder, user, color, why)
        finally:
            pipeline.store.close()


def _chat_on(
    pipeline: Pipeline, config: Config, encoder: Encoder, user: str | None, color: bool, why: bool
) -> int:
    from adapters.terminal import chat
    from bot.assembly import load_knowledge
    from bot.jobs import scheduler

    # A new customer each session unless told otherwise: the store outlives the session, and an
    # old conversation may be with a human by now.
    user = user or f"you-{pipeline.clock.now():%Y%m%d%H%M%S}-{os.getpid()}"
    # Only this terminal's own jobs (reloading edited content): the cluster's (releasing tickets
    # at opening time) belong to `bot run`, never to a chat on a pretend clock.
    jobs = scheduler.start(pipeline, None, lambda: load_knowledge(config, encoder))
    try:
        chat(
            lambda inbound: pipeline.handle(inbound).decision,
            pipeline.clock,
            user=user,
            color=color,
            why=why,
        )
    finally:
        jobs.shutdown(wait=False)
    return 0


def _hours(config: Config, at: str | None, days: int) -> int:
    from bot.assembly import read_content
    from bot.hours.report import report

    content, problems = read_content(config)
    if only_errors(problems):
        raise ProblemsError(only_errors(problems))
    front = content.schedules[config.front_schedule]
    moment = _moment(at, front.zone) if at else SystemClock().now()
    print(report(config, content.schedules, moment, days), end="")
    return 0


def _moment(text: str, zone: ZoneInfo) -> datetime:
    """An ISO moment in the given (schedule) time zone; without a UTC offset it is read there.
    Not a moment: a ProblemsError that says what to write instead of a traceback."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ProblemsError(
            [
                Problem(
                    Path("--at"),
                    None,
                    f"{text!r} is not a moment",
                    'write a date and time, e.g. --at "2026-12-24 23:00" (schedule time zone) '
                    'or "2026-12-24T15:00+00:00"',
                )
            ]
        ) from None
    return moment.astimezone(zone) if moment.tzinfo else moment.replace(tzinfo=zone)


def _eval(config: Config, cases_path: Path, as_json: bool, fail_under: list[str]) -> int:
    from bot.evaluation import below, evaluate, parse_gates, read_cases, report

    try:
        gates = parse_gates(fail_under)
    except ValueError as exc:
        print(f"bot eval: --fail-under {exc}", file=sys.stderr)
        return 2
    from bot.cli.progress import LEARNING, step

    cases = read_cases(cases_path)
    with step(f"{LEARNING}, then answering {len(cases)} cases", sys.stderr):
        result = evaluate(config, cases)
    if as_json:
        json.dump(result, sys.stdout, ensure_ascii=False)
        print()
    else:
        print(report(result))
    failures = below(result["summary"], gates)
    for failure in failures:
        print(f"bot eval: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
