"""Phrasings learnt from customers: a question the bot could only half-answer ("did you mean…?")
whose customer then picked one of the suggestions is a candidate new phrasing for the picked
entry. `bot faq learn` shows them to the admin; nothing reaches the FAQ without the admin, and a
rejected candidate is not offered again.

The candidates are read from the decisions already stored (a `suggest` decision, then an
`answer` decision that records which suggestion was picked), so nothing extra is written while
customers talk.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from bot.domain.messages import Action
from bot.store.schema import decisions, messages, phrasing_reviews

#: longest question kept as a phrasing (the column's size)
MAX_QUESTION = 200


@dataclass
class Candidate:
    """One question, asked `count` times, that customers resolved by picking `faq_id`."""

    faq_id: str
    question: str
    count: int = 0
    #: how the customers wrote it (spaces, case, punctuation), and how often
    spellings: Counter[str] = field(default_factory=Counter)

    @property
    def key(self) -> str:
        """A short id that stays the same while counts change (`bot faq learn --accept`)."""
        digest = hashlib.sha1(f"{self.faq_id}\x1f{normalised(self.question)}".encode())
        return digest.hexdigest()[:6]


def normalised(text: str) -> str:
    """The key two askings of one question share: case, spaces and end punctuation ignored
    (spaces between Chinese characters are not words apart)."""
    collapsed = " ".join(text.split()).strip(" ?？!！。.,，~～").casefold()
    return re.sub(r"(?<=[\u3400-\u9fff]) | (?=[\u3400-\u9fff])", "", collapsed)


def candidates(conn: Connection, since: datetime) -> list[Candidate]:
    """Questions answered through a picked suggestion since `since`, grouped per entry, most
    asked first, without the ones an admin has already reviewed."""
    answers = conn.execute(
        sa.select(
            decisions.c.id,
            decisions.c.conversation_id,
            decisions.c.faq_id,
            decisions.c.at,
            decisions.c.record,
        )
        .where(decisions.c.action == Action.ANSWER, decisions.c.at >= since)
        .order_by(decisions.c.id)
    ).all()
    picked = [a for a in answers if a.record.get("picked") and a.faq_id]
    if not picked:
        return []
    offers = conn.execute(
        sa.select(decisions.c.id, decisions.c.conversation_id, decisions.c.record, messages.c.text)
        .join(messages, messages.c.id == decisions.c.message_id)
        .where(
            decisions.c.action == Action.SUGGEST,
            decisions.c.conversation_id.in_({a.conversation_id for a in picked}),
        )
        .order_by(decisions.c.id)
    ).all()
    # accepted ones are left out because they are in the FAQ now (the caller checks): one an
    # admin took out of the file again may come back
    rejected = {
        (r.faq_id, r.question)
        for r in conn.execute(
            sa.select(phrasing_reviews).where(phrasing_reviews.c.verdict == "rejected")
        )
    }
    by_conversation: dict[int, list[Any]] = defaultdict(list)
    for row in offers:
        by_conversation[row.conversation_id].append(row)  # in id order
    found: dict[tuple[str, str], Candidate] = {}
    for answer in picked:
        earlier = by_conversation[answer.conversation_id]
        before = bisect_left([o.id for o in earlier], answer.id)
        offer = earlier[before - 1] if before else None
        if offer is None or answer.faq_id not in offer.record.get("suggestions", []):
            continue
        question = " ".join(offer.text.split())
        if not usable(question):
            continue
        key = (answer.faq_id, normalised(question))
        if key in rejected:
            continue
        candidate = found.setdefault(key, Candidate(answer.faq_id, question))
        candidate.count += 1
        candidate.spellings[question] += 1
        # shown and written as most customers wrote it (the shortest, on a tie)
        candidate.question = min(
            candidate.spellings, key=lambda q: (-candidate.spellings[q], len(q))
        )
    return sorted(found.values(), key=lambda c: (-c.count, c.faq_id, c.question))


def usable(question: str) -> bool:
    """A stored question fit to become a phrasing: not masked personal data (stored texts have
    phone numbers, ID and card numbers masked with *), not a bare number or a fragment."""
    return (
        2 <= len(question) <= MAX_QUESTION
        and "**" not in question
        and any(ch.isalpha() for ch in question)
    )


def review(conn: Connection, verdicts: Iterable[tuple[Candidate, str]], now: datetime) -> None:
    """Record the admin's verdicts ('accepted' or 'rejected')."""
    rows = [
        dict(faq_id=c.faq_id, question=normalised(c.question), verdict=verdict, at=now)
        for c, verdict in verdicts
    ]
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(phrasing_reviews).values(rows)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["faq_id", "question"],
            set_={"verdict": insert.excluded.verdict, "at": insert.excluded.at},
        )
    )
