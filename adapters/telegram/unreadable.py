"""Updates aiogram cannot read, set aside for a person to look at.

Telegram sometimes sends what the installed aiogram cannot parse (a field of a newer Bot API, a
malformed value). Polling must not stall on it: every later customer would wait behind it. The
update is skipped after a few tries, and its body is kept here, masked like a transcript
(`bot.domain.privacy.mask` on every text in it), in the channel's state for `KEEP_FOR`, under
`unreadable:<update_id>`: an operator can read it there (`SELECT value FROM channel_state WHERE
channel = 'telegram' AND key LIKE 'unreadable:%'`) and report it, and it ages out by itself.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from aiogram.types import Update
from pydantic import ValidationError

from bot.domain.privacy import mask
from bot.web.channels import ChannelContext

#: how long the body of a skipped update is kept
KEEP_FOR = timedelta(days=30)
KEY_PREFIX = "unreadable:"
#: the most of a body that is kept (channel_state values are text; an update is small)
MAX_BODY = 20_000


def sort_out(
    result: object, context: dict[str, Any]
) -> tuple[list[Update], dict[int, dict[str, Any]]] | None:
    """A getUpdates result that aiogram refused as a whole, read update by update: those it
    can read, and the bodies of those it cannot, by update id. None when the result is not a
    list of updates with ids at all (a broken answer, not one bad update): nothing can be
    singled out then."""
    if not isinstance(result, list):
        return None
    readable: list[Update] = []
    unreadable: dict[int, dict[str, Any]] = {}
    for item in result:
        update_id = item.get("update_id") if isinstance(item, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            return None
        try:
            readable.append(Update.model_validate(item, context=context))
        except ValidationError:
            unreadable[update_id] = item
    return readable, unreadable


def problem(body: dict[str, Any], context: dict[str, Any]) -> str:
    """Where aiogram stumbled, for the log: the count and the first place, never the values
    (they may hold a customer's words)."""
    try:
        Update.model_validate(body, context=context)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return f"{exc.error_count()} problem(s), first at {where or '?'}: {first.get('type')}"
    return "readable now"


def masked(value: Any) -> Any:
    """The body with every text masked; numbers (ids, dates) stay as they were."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, list):
        return [masked(item) for item in value]
    if isinstance(value, dict):
        return {str(key): masked(item) for key, item in value.items()}
    return value


async def keep(context: ChannelContext, update_id: int, body: dict[str, Any]) -> str:
    """Store the masked body of a skipped update; returns the key it is under."""
    key = f"{KEY_PREFIX}{update_id}"
    text = json.dumps(masked(body), ensure_ascii=False)[:MAX_BODY]

    def put() -> None:
        with context.store.transaction() as tx:
            tx.put(key, text, tx.now + KEEP_FOR)

    await context.in_store_pool(put)
    return key
