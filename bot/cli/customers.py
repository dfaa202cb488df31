"""`bot customers export|forget CHANNEL:ID`: give a customer their data, or erase it (PIPL,
GDPR), with a record that it was done. The customer is named as the channel and the id it knows
them by, as the console shows it (e.g. telegram:123456789, wecom:wmABC…)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.content.config import Config
from bot.domain.clock import SystemClock


def parse_customer(text: str) -> tuple[str, str]:
    """'telegram:123' → ('telegram', '123'); the id may itself hold colons."""
    channel, sep, user_id = text.partition(":")
    if not sep or not channel.isidentifier() or not user_id:
        raise ValueError(f"{text!r} is not CHANNEL:ID, e.g. telegram:123456789")
    return channel, user_id


def customers_command(
    config: Config,
    action: str,
    customer: str,
    out: Path | None = None,
    yes: bool = False,
    note: str | None = None,
    ask: Callable[[str], str] | None = None,
) -> int:
    from bot.store import customers
    from bot.store.database import Store

    try:
        channel, user_id = parse_customer(customer)
    except ValueError as exc:
        print(f"bot customers: {exc}", file=sys.stderr)
        return 2
    store = Store(config.storage_url)
    store.migrate()
    try:
        if action == "export":
            with store.engine.connect() as conn:
                data = customers.export(conn, channel, user_id)
                data["erasures"] = [
                    {k: v for k, v in r.items() if k != "id"}
                    for r in customers.erased(conn, channel, user_id)
                ]
                channels = customers.channels(conn)
            if not _holds(data):
                if not data["erasures"]:
                    print(_unknown("export", channel, customer, channels), file=sys.stderr)
                    return 1
                print(
                    f"bot customers: nothing is stored about {customer}; it was erased on "
                    f"{_day(data['erasures'][-1]['at'])}",
                    file=sys.stderr,
                )
            text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
            if out is None:
                sys.stdout.write(text)
            else:
                out.write_text(text, encoding="utf-8")
                print(f"{customer}: {len(data['conversations'])} conversation(s) written to {out}")
            return 0
        with store.engine.connect() as conn:
            held = customers.export(conn, channel, user_id)
            before = customers.erased(conn, channel, user_id)
            channels = customers.channels(conn)
        if not _holds(held):
            # nothing to erase, and nothing recorded: a mistyped id must not read as done
            if before:
                print(
                    f"Nothing is stored about {customer}: it was erased on "
                    f"{_day(before[-1]['at'])}. Nothing erased now."
                )
                return 0
            print(_unknown("forget", channel, customer, channels), file=sys.stderr)
            return 1
        messages = sum(len(c["messages"]) for c in held["conversations"]) + len(
            held["messages_not_in_a_conversation"]
        )
        if not yes:
            if ask is None:
                print(
                    "bot customers forget: add --yes to erase without being asked "
                    "(standard input is not a terminal)",
                    file=sys.stderr,
                )
                return 2
            answer = ask(
                f"Erase {customer}: {len(held['conversations'])} conversation(s), "
                f"{messages} message(s)? This cannot be undone. [y/N] "
            )
            if answer.strip().lower() not in ("y", "yes"):
                print("Nothing erased.")
                return 1
        with store.customer_lock(channel, user_id) as tx:
            counts = customers.forget(tx, channel, user_id, SystemClock().now(), note)
        shown = ", ".join(f"{name.replace('_', ' ')} {n}" for name, n in counts.items())
        print(f"{customer} erased ({shown}); the erasure is recorded without the id.")
        return 0
    finally:
        store.close()


def _holds(data: dict[str, Any]) -> bool:
    """Whether an export found anything stored about the customer."""
    return bool(data["conversations"] or data["messages_not_in_a_conversation"])


def _unknown(action: str, channel: str, customer: str, channels: list[str]) -> str:
    """What to tell an admin who named a customer nothing is stored about and no erasure is
    recorded of: most likely a mistyped channel or id."""
    where = (
        f"no customer of a channel named {channel!r} is stored (channels with customers: "
        f"{', '.join(channels) or 'none yet'})"
        if channel not in channels
        else f"no {channel} customer has the id {customer.partition(':')[2]!r}"
    )
    check = (
        "Check the channel and the id as the console shows the customer (CHANNEL:ID, e.g. "
        "webhook:alice; its search box finds them)"
    )
    if action == "forget":
        return (
            f"bot customers forget: nothing is stored about {customer}, and no erasure of it "
            f"is recorded: {where}. {check}, and see what `bot customers export CHANNEL:ID` "
            "gives before erasing. Nothing was erased or recorded."
        )
    return (
        f"bot customers export: nothing is stored about {customer}, and no erasure of it is "
        f"recorded: {where}. {check}. Nothing was written."
    )


def _day(at: object) -> str:
    """An erasure record's time as a day (its ISO text's date)."""
    return str(at)[:10]
