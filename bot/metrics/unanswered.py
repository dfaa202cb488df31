"""The unanswered questions of a period, grouped: one call for `bot faq gaps` and the weekly
report. It reads the store (bot.store.gap_reads) and groups with the bot's own encoder
(bot.understanding.gaps), which is why this one module of understanding reads the store: the
report's room may import understanding and store but not the pipeline, and the grouping needs
both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import numpy as np

from bot.store import gap_reads
from bot.store.database import Store
from bot.understanding.faq import FaqIndex, FaqMatch
from bot.understanding.gaps import GapCluster, cluster


class HasFaq(Protocol):
    """What is needed of the bot's knowledge (bot.pipeline.knowledge.Knowledge): its FAQ index,
    whose encoder groups the questions and which says what it answers now."""

    @property
    def faq(self) -> FaqIndex: ...


@dataclass(frozen=True)
class Gaps:
    """The period's unanswered questions, grouped, and what was left out."""

    clusters: list[GapCluster]
    #: questions read (after leaving out those the FAQ answers now)
    questions: int
    #: questions that had no answer then and that the FAQ as it is now answers
    answered_now: int
    #: questions answered after which the customer still asked for a person, grouped: not
    #: unanswered, never drafted; shown apart (gap_reads.ASKED_PERSON)
    asked_person: list[GapCluster] = field(default_factory=list)


def unanswered_clusters(
    store: Store, knowledge: HasFaq, start: datetime, end: datetime, limit: int = 20
) -> list[GapCluster]:
    """The `limit` biggest groups of questions the bot had no good answer to between `start`
    and `end`, as they were then (the weekly report: what customers met that week)."""
    return find_gaps(store, knowledge, start, end, skip_answered_now=False).clusters[:limit]


def find_gaps(
    store: Store,
    knowledge: HasFaq,
    start: datetime,
    end: datetime,
    *,
    skip_answered_now: bool = True,
) -> Gaps:
    """All the groups, biggest first. With `skip_answered_now` (`bot faq gaps`: what is left to
    do), a question the FAQ would answer outright today is left out: the admin has covered it
    since. A question that was answered and did not help stays, whatever the FAQ says now.
    Questions answered after which the customer asked for a person are grouped apart
    (`Gaps.asked_person`): asking for a person says nothing against the answer."""
    with store.engine.connect() as conn:
        read = gap_reads.unanswered(conn, start, end)
    faq = knowledge.faq
    person = [q for q in read if q.why == gap_reads.ASKED_PERSON]
    asked = [q for q in read if q.why != gap_reads.ASKED_PERSON]
    asked_person = (
        cluster(person, np.asarray(faq.embed([q.text for q in person]))) if person else []
    )
    if not asked:
        return Gaps([], 0, 0, asked_person)
    texts = [q.text for q in asked]
    vectors = np.asarray(faq.embed(texts))
    answered_now = 0
    if skip_answered_now:
        matches = faq.search_many(texts, vectors, k=3)
        keep = [
            n
            for n, (question, found) in enumerate(zip(asked, matches, strict=True))
            if question.why == gap_reads.NOT_HELPED or not answers_outright(faq, found)
        ]
        answered_now = len(asked) - len(keep)
        asked, vectors = [asked[n] for n in keep], vectors[keep]
    return Gaps(cluster(asked, vectors), len(asked), answered_now, asked_person)


def answers_outright(faq: FaqIndex, found: Sequence[FaqMatch]) -> bool:
    """Would the bot answer this now without a "did you mean…?" (the test of the `faq_answer`
    rule, bot/pipeline/rules.py): its best match at the answer threshold and clearly ahead of
    its neighbours."""
    return (
        bool(found)
        and found[0].score >= faq.thresholds.answer
        and faq.thresholds.leads_clearly(found)
    )
