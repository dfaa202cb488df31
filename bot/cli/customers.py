"""`bot customers export|forget CHANNEL:ID`: give a customer their data, or erase it (PIPL,
GDPR), with a record that it was done. The customer is named as the channel and the id it knows
them by, as the console shows it (e.g. telegram:123456789, wecom:wmABC…)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

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
            if not data["conversations"] and not data["messages_not_in_a_conversation"]:
                print(f"bot customers: nothing is stored about {customer}", file=sys.stderr)
            text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
            if out is None:
                sys.stdout.write(text)
            else:
                out.write_text(text, encoding="utf-8")
                print(f"{customer}: {len(data['conversations'])} conversation(s) written to {out}")
            return 0
        with store.engine.connect() as conn:
            held = customers.export(conn, channel, user_id)
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
