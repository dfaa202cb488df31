"""The questions the bot had no good answer to, read from the decisions already stored (nothing
extra is written while customers talk): what `bot faq gaps` and the weekly report group.

A customer's text counts as unanswered when
- the bot did not understand it (`fallback`),
- it was the last straw of a "repeated failure" handoff (the fallbacks before it count
  already), or
- the bot offered "did you mean…?" and the customer picked none of the suggestions (a
  suggestion's title is not an answer: until one is picked the customer has been told nothing),
  or
- the bot answered it and the customer's next message in the same conversation said it did not
  help: a short negative reaction ("没用", "不对", "not what I asked" …; bot/domain/reactions.py).
  The question counts, not the reaction; a reaction that itself fell back is not a question.

An answered question whose customer then asked for a person ("转人工", or a handoff by intent
that is not urgent) is not unanswered: many customers ask for a person after a right answer.
It is read too (ASKED_PERSON), for `bot faq gaps` to show apart, as "answered, but the customer
still asked for a person"; it is never drafted as a new entry.

The texts are read as admins may keep them (bot.domain.privacy.for_admins): they end up in
faq/drafts.yaml, which admins commit, and in the weekly report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.domain.messages import Action, Kind
from bot.domain.privacy import for_admins
from bot.domain.reactions import asks_for_person, is_reaction
from bot.store.schema import decisions, messages

#: why a question counts (Unanswered.why)
FELL_BACK = "fell_back"
HANDED_OFF = "handed_off"
NOT_PICKED = "not_picked"
NOT_HELPED = "not_helped"
#: answered, and the customer then asked for a person: not unanswered, a signal shown apart
ASKED_PERSON = "asked_person"

#: the reason bot/pipeline/rules.py records when "not understood" too often hands off
REPEATED_FAILURE = "repeated failure"
#: the reason it records for an urgent handoff: urgency is not a verdict on the answer
URGENT_SIGNAL = "urgent signal"

#: a reaction a little after the period's end still judges an answer given in it
REACTION_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class Unanswered:
    """One customer message the bot had no good answer to."""

    message_id: int
    conversation_id: int
    #: "channel:user id": customers are counted by this
    customer: str
    #: masked for admins (bot.domain.privacy.for_admins), at most MAX_SHARED characters
    text: str
    at: datetime
    why: str
    #: the FAQ entry answered when the customer then said it did not help
    faq_id: str | None = None


def is_question(text: str) -> bool:
    """Worth showing an admin: some letters or characters, not a bare number, a reaction or a
    request for a person."""
    return (
        len(text.strip()) >= 2
        and any(ch.isalpha() for ch in text)
        and not is_reaction(text)
        and not asks_for_person(text)
    )


def unanswered(conn: Connection, start: datetime, end: datetime) -> list[Unanswered]:
    """The customers' text messages from `start` (inclusive) to `end` (exclusive) that the bot
    had no good answer to, oldest first."""
    rows = conn.execute(
        sa.select(
            messages.c.id,
            messages.c.conversation_id,
            messages.c.channel,
            messages.c.user_id,
            messages.c.text,
            messages.c.at,
            decisions.c.action,
            decisions.c.intent,
            decisions.c.faq_id,
            decisions.c.record,
        )
        .join(decisions, decisions.c.message_id == messages.c.id)
        .where(
            messages.c.direction == "in",
            messages.c.kind == Kind.TEXT,
            messages.c.at >= start,
            messages.c.at < end + REACTION_GRACE,
        )
        .order_by(messages.c.conversation_id, messages.c.id)
    ).all()
    found: list[Unanswered] = []
    for _, talk in groupby(rows, key=lambda row: row.conversation_id):
        said = list(talk)
        offered: Any = None  # the conversation's last "did you mean…?", for a picked answer
        for row, following in zip(said, [*said[1:], None], strict=True):
            if row.action == Action.SUGGEST:
                offered = row
            if row.at < end and (judged := _judged(row, following, offered)) is not None:
                found.append(judged)
    unique = {u.message_id: u for u in found}  # a question judged twice counts once
    return sorted(unique.values(), key=lambda u: (u.at, u.message_id))


def _judged(row: Any, following: Any, offered: Any) -> Unanswered | None:
    """The question behind `row` if the bot had no good answer to it (`following`: the
    customer's next message in the conversation; `offered`: its last "did you mean…?")."""
    asked, faq_id = row, None
    if row.action == Action.FALLBACK:
        why = FELL_BACK
    elif row.action == Action.HANDOFF and any(
        r.startswith(REPEATED_FAILURE) for r in _reasons(row)
    ):
        why = HANDED_OFF
    elif row.action == Action.SUGGEST and not _picked(following):
        why = NOT_PICKED
    elif row.action == Action.ANSWER and (verdict := _after_answer(following)) is not None:
        why, faq_id = verdict, row.faq_id
        if _picked(row) and offered is not None:
            asked = offered  # the question is the one the suggestions were offered for
    else:
        return None
    if not is_question(asked.text):
        return None
    return Unanswered(
        message_id=asked.id,
        conversation_id=asked.conversation_id,
        customer=f"{asked.channel}:{asked.user_id}",
        text=for_admins(asked.text),
        at=asked.at,
        why=why,
        faq_id=faq_id,
    )


def _reasons(row: Any) -> list[str]:
    reasons = (row.record or {}).get("reasons") or []
    return [str(r) for r in reasons]


def _picked(row: Any) -> bool:
    """Is this the customer picking one of the suggestions offered just before?"""
    return bool(
        row is not None and row.action == Action.ANSWER and (row.record or {}).get("picked")
    )


def _after_answer(following: Any) -> str | None:
    """What the customer's next message says of the answer before it: NOT_HELPED (it did not
    help), ASKED_PERSON (they asked for a person; no verdict on the answer), or None."""
    if following is None:
        return None
    if is_reaction(following.text):
        return NOT_HELPED
    if asks_for_person(following.text):
        return ASKED_PERSON
    reasons = _reasons(following)
    if (
        following.action == Action.HANDOFF
        and following.intent is not None
        and not any(r.startswith((URGENT_SIGNAL, REPEATED_FAILURE)) for r in reasons)
    ):
        return ASKED_PERSON
    return None
