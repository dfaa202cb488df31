"""What each figure means, in one place: docs/reports.md's table, the report's labels and the JSON
keys come from here, so the three never disagree.

The definitions fix the mistakes other tools make and their users notice: the bot's lines
never count as a human's first response (Chatwoot #6409); time the queue is closed is not held
against agents (when `[reports] business_hours`); a reopened ticket is one ticket, not two.
Every figure is computed from stored events (messages, decisions, tickets and their history),
so it can be recomputed for any past period and never drifts from what happened.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Definition:
    key: str
    zh: str
    en: str
    unit: str  # "s" seconds, "%" a share 0–1, "n" a count, "score"
    means: str

    def name(self, language: str) -> str:
        return self.zh if language == "zh" else self.en


DEFINITIONS: tuple[Definition, ...] = (
    Definition(
        "frt_bot",
        "机器人首次响应",
        "Bot first response",
        "s",
        "From a customer's message to the moment the first of the bot's replies to it was sent "
        "(delivery included); median and p90. Messages the bot did not answer (a human owns the "
        "chat) are not counted.",
    ),
    Definition(
        "frt_human",
        "人工首次响应",
        "Human first response",
        "s",
        "From the moment the ticket reached agents (available_at, or created_at if later) to "
        "an agent's first reply (first_response_at, set only by an agent's reply: the bot's "
        "acknowledgements and notices never count). Counted in the period of the reply. With "
        "[reports] business_hours, time the queue's schedule is closed is left out.",
    ),
    Definition(
        "aht",
        "平均处理时长",
        "Average handling time",
        "s",
        "From the claim to the resolution, per resolution; a reopened ticket's spells are "
        "summed (a reopen straight back to its agent starts a spell at the reopen, a reopen to "
        "the queue at the next claim). Per ticket, counted in the period of its resolutions.",
    ),
    Definition(
        "fcr",
        "首次解决率",
        "First-contact resolution",
        "%",
        "Of the tickets first resolved in the period: resolved once, never reopened, and no new "
        "ticket from the same customer within handoff.reopen_minutes of the resolution.",
    ),
    Definition(
        "csat",
        "满意度",
        "CSAT",
        "%",
        "Ratings 4 and 5 among all ratings (1–5) given in the period; the mean is shown too.",
    ),
    Definition(
        "nps",
        "净推荐值",
        "NPS",
        "score",
        "% promoters (9–10) minus % detractors (0–6) among the answers (0–10) in the period.",
    ),
    Definition(
        "complaint_rate",
        "投诉率",
        "Complaint rate",
        "%",
        "Tickets of category complaint created in the period per conversation opened in it.",
    ),
    Definition(
        "repeat_rate",
        "重复咨询率",
        "Repeat inquiries",
        "%",
        "Customers with two or more conversations opened in the period, among all customers "
        "who opened one.",
    ),
    Definition(
        "sla",
        "首响达标率",
        "SLA met",
        "%",
        "Tickets created in the period whose first human response came by first_response_due, "
        "among those that got one or are past due.",
    ),
    Definition(
        "transfer",
        "30分钟内转接",
        "Transferred in time",
        "%",
        "Tickets created in the period claimed by an agent by transfer_due (available_at plus "
        "the queue's transfer_minutes, 30 by default), among those claimed or past due.",
    ),
    Definition(
        "containment",
        "机器人独立解决率",
        "Containment",
        "%",
        "Conversations opened in the period with at least one customer text and no handoff "
        "(no ticket created, reopened or asked for), among those with at least one customer "
        "text.",
    ),
    Definition(
        "after_hours",
        "非工作时间消息",
        "After-hours messages",
        "n",
        "Customer messages while the default queue's schedule was closed (count and share).",
    ),
    Definition(
        "tickets",
        "工单数",
        "Tickets",
        "n",
        "Tickets created in the period, each once however often it reopened; reopenings are "
        "counted apart (reopened events in the period).",
    ),
)

BY_KEY = {d.key: d for d in DEFINITIONS}
