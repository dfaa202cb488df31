"""Unanswered questions grouped by what customers were asking, so that an admin reads "37
customers asked about X and we had no answer" instead of scrolling through 41 messages.

Pure: texts and their vectors in, groups out. The vectors come from the encoder the bot answers
with (the FAQ index's), so "the same question" here means the same as when the bot matches it.

Two passes, because customers ask one thing in two ways:
- near-duplicates (the same words give or take punctuation, case and a particle: cosine ≥
  NEAR_DUPLICATE) become one question, counted as often as it was asked;
- those questions are then grouped by average-linkage agglomerative clustering, joined while
  their mean cosine is at least GROUP_AT. Average linkage because single linkage chains unlike
  questions through a shared word ("发票抬头写错了" — "地址填错了" — "怎么修改地址"), and
  complete linkage splits a question from its English phrasing.

GROUP_AT was chosen on a hand-made set of 9 questions a shop's FAQ lacks, 4–6 ways each in
Chinese and English, plus 8 unrelated lines (tests/fixtures/gaps_questions.yaml; `python
bench/gaps.py` prints the sweep). With the default encoder, agreement with the hand-made groups
(adjusted Rand index) is 0.82 at 0.35, 0.98 from 0.40 to 0.45, 0.96 at 0.48, 0.91 at 0.50, 0.86
at 0.55 and 0.60 at 0.60: lower, unlike questions sharing a word merge (发票抬头写错了
and 地址填错了 have a cosine of 0.69); higher, a question's English phrasing and its terse
forms (取消订单) split off. 0.45 is the top of the plateau: when in doubt, two groups an
admin can merge by hand rather than one that hides a question.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from bot.content.drafts import MAX_QUESTIONS as DRAFT_QUESTIONS
from bot.content.entries import question_key

#: cosine at or above which two texts are one question asked twice
NEAR_DUPLICATE = 0.85
#: mean cosine at or above which two groups of questions are about the same thing
GROUP_AT = 0.45
#: the most distinct questions grouped at once (the most asked first): average linkage holds all
#: their pairwise distances in memory, 3,000 of them about 70 MB
MAX_DISTINCT = 3000
#: distinct questions kept per group: as many as a draft in drafts.yaml holds
MAX_QUESTIONS = DRAFT_QUESTIONS
#: examples shown beside a group's label
MAX_EXAMPLES = 3


class Question(Protocol):
    """One customer message the bot did not answer well (bot.store.gap_reads.Unanswered)."""

    @property
    def text(self) -> str: ...
    @property
    def customer(self) -> str: ...
    @property
    def why(self) -> str: ...
    @property
    def faq_id(self) -> str | None: ...


@dataclass(frozen=True)
class GapCluster:
    """Customers asking one thing the bot could not answer."""

    #: the most central of the texts: what the group is about, in a customer's words
    label: str
    #: distinct customers who asked it (what the group is ranked by)
    customers: int
    #: messages asking it (a customer who asked three times counts three)
    messages: int
    #: other texts of the group, as stored (masked), most asked first
    examples: tuple[str, ...]
    #: the label and the other distinct texts, most asked first, at most MAX_QUESTIONS
    questions: tuple[str, ...]
    #: how many of the messages fell back, were handed off, were answered and not helped
    why: dict[str, int] = field(default_factory=dict)
    #: FAQ entries the bot answered with when the customer then said it did not help
    answered_with: tuple[str, ...] = ()


def cluster(
    questions: Sequence[Question],
    vectors: np.ndarray,
    group_at: float = GROUP_AT,
    near_duplicate: float = NEAR_DUPLICATE,
) -> list[GapCluster]:
    """Group the questions (`vectors`: one L2-normalised row each), the group asked by the most
    customers first."""
    vectors = np.asarray(vectors, dtype=np.float32)
    clusters = [
        _describe(questions, wordings, vectors)
        for wordings in groups(questions, vectors, group_at, near_duplicate)
    ]
    return sorted(clusters, key=lambda c: (-c.customers, -c.messages, c.label))


def groups(
    questions: Sequence[Question],
    vectors: np.ndarray,
    group_at: float = GROUP_AT,
    near_duplicate: float = NEAR_DUPLICATE,
) -> list[list[list[int]]]:
    """The groups as positions in `questions`: each group a list of wordings, each wording the
    positions of the messages that asked it in those words."""
    if not questions:
        return []
    # 1. one entry per distinct wording, the most asked first
    by_key: dict[str, list[int]] = {}
    for i, question in enumerate(questions):
        by_key.setdefault(question_key(question.text), []).append(i)
    wordings = sorted(by_key.values(), key=lambda members: (-len(members), members[0]))
    wordings = wordings[:MAX_DISTINCT]
    first = np.stack([vectors[members[0]] for members in wordings])
    # 2. near-duplicates: each wording joins the most asked one it nearly repeats
    near: list[list[int]] = []  # positions in `wordings`
    leaders: list[int] = []
    for w in range(len(wordings)):
        if leaders:
            similar = first[leaders] @ first[w]
            best = int(np.argmax(similar))
            if similar[best] >= near_duplicate:
                near[best].append(w)
                continue
        leaders.append(w)
        near.append([w])
    # 3. average-linkage grouping of the near-duplicate groups
    joined = _agglomerate(first[leaders], group_at) if len(leaders) > 1 else [[0]]
    return [[wordings[w] for g in group for w in near[g]] for group in joined]


def _agglomerate(points: np.ndarray, group_at: float) -> list[list[int]]:
    from sklearn.cluster import AgglomerativeClustering

    distances = np.clip(1.0 - points @ points.T, 0.0, 2.0).astype(np.float64)
    np.fill_diagonal(distances, 0.0)
    labels = (
        AgglomerativeClustering(
            n_clusters=None,
            metric="precomputed",
            linkage="average",
            distance_threshold=1.0 - group_at,
        )
        .fit(distances)
        .labels_
    )
    joined: dict[int, list[int]] = {}
    for point, label in enumerate(labels):
        joined.setdefault(int(label), []).append(point)
    return list(joined.values())


def _describe(
    questions: Sequence[Question], wordings: list[list[int]], vectors: np.ndarray
) -> GapCluster:
    counts = np.array([len(members) for members in wordings], dtype=np.float32)
    points = vectors[[members[0] for members in wordings]]
    # the most central wording: the highest mean similarity to the group's messages
    centrality = (points @ points.T) @ counts / counts.sum()
    order = sorted(range(len(wordings)), key=lambda n: (-counts[n], -centrality[n]))
    label_at = max(range(len(wordings)), key=lambda n: (centrality[n], counts[n]))
    label = _spelling(questions, wordings[label_at])
    texts = [_spelling(questions, wordings[n]) for n in order]
    asked = [questions[i] for members in wordings for i in members]
    distinct = [label, *(t for t in texts if t != label)]
    return GapCluster(
        label=label,
        customers=len({q.customer for q in asked}),
        messages=len(asked),
        examples=tuple(distinct[1 : 1 + MAX_EXAMPLES]),
        questions=tuple(distinct[:MAX_QUESTIONS]),
        why=dict(Counter(q.why for q in asked).most_common()),
        answered_with=tuple(sorted({q.faq_id for q in asked if q.faq_id})),
    )


def _spelling(questions: Sequence[Question], members: list[int]) -> str:
    """A wording as most customers wrote it (the shortest on a tie), spaces collapsed."""
    spellings = Counter(" ".join(questions[i].text.split()) for i in members)
    return min(spellings, key=lambda s: (-spellings[s], len(s), s))
