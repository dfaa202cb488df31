"""The weekly report as one self-contained HTML page: inline CSS and SVG, no script, nothing
fetched, so it opens from a mail attachment or a shared folder as it does in a browser, and
prints. Labels in Chinese or English; the numbers are the JSON's (bot/metrics/weekly.py).
"""

from __future__ import annotations

from html import escape
from typing import Any

from bot.metrics import charts
from bot.metrics.definitions import DEFINITIONS

LABELS: dict[str, dict[str, str]] = {
    "title": {"zh": "客服周报", "en": "Weekly service report"},
    "week": {"zh": "统计周期", "en": "Week"},
    "generated": {"zh": "生成时间", "en": "Generated"},
    "vs": {"zh": "较上周", "en": "vs. week before"},
    "customer_messages": {"zh": "客户消息", "en": "Customer messages"},
    "conversations": {"zh": "会话数", "en": "Conversations"},
    "tickets": {"zh": "工单数", "en": "Tickets"},
    "frt_bot_median": {"zh": "机器人首响（中位）", "en": "Bot first response (median)"},
    "frt_human_median": {"zh": "人工首响（中位）", "en": "Human first response (median)"},
    "aht_mean": {"zh": "平均处理时长", "en": "Average handling time"},
    "fcr": {"zh": "首次解决率", "en": "First-contact resolution"},
    "csat": {"zh": "满意度（4–5分占比）", "en": "CSAT (4–5 share)"},
    "csat_mean": {"zh": "满意度均分", "en": "CSAT mean"},
    "nps": {"zh": "净推荐值 NPS", "en": "NPS"},
    "containment": {"zh": "机器人独立解决率", "en": "Containment"},
    "sla": {"zh": "首响达标率", "en": "SLA met"},
    "transfer": {"zh": "30分钟内转接", "en": "Transferred in time"},
    "complaint_rate": {"zh": "投诉率", "en": "Complaint rate"},
    "repeat_rate": {"zh": "重复咨询率", "en": "Repeat inquiries"},
    "after_hours_messages": {"zh": "非工作时间消息", "en": "After-hours messages"},
    "volume": {"zh": "咨询量：星期 × 小时", "en": "Volume by weekday and hour"},
    "frt": {"zh": "首次响应时长分布", "en": "First response times"},
    "frt_bot": {"zh": "机器人", "en": "Bot"},
    "frt_human": {"zh": "人工", "en": "Human"},
    "business_only": {"zh": "仅计工作时间", "en": "business hours only"},
    "wall_clock": {"zh": "含非工作时间", "en": "wall clock"},
    "trend": {"zh": "满意度与 NPS 趋势（按天）", "en": "CSAT and NPS by day"},
    "containment_of": {
        "zh": "{a} / {b} 个有文字的会话未转人工",
        "en": "{a} of {b} conversations with text ended without a human",
    },
    "top_faq": {"zh": "最常回答的问题", "en": "FAQ entries answered most"},
    "unanswered": {"zh": "未能回答的问题", "en": "Questions the bot could not answer"},
    "breaches": {"zh": "SLA 超时工单", "en": "SLA breaches"},
    "agents": {"zh": "客服表现", "en": "Agents"},
    "channels": {"zh": "按渠道", "en": "By channel"},
    "queues": {"zh": "按队列", "en": "By queue"},
    "definitions": {"zh": "指标定义", "en": "Definitions"},
    "none": {"zh": "无", "en": "none"},
    "count": {"zh": "次数", "en": "Count"},
    "examples": {"zh": "示例", "en": "Examples"},
    "agent": {"zh": "客服", "en": "Agent"},
    "queue": {"zh": "队列", "en": "Queue"},
    "channel": {"zh": "渠道", "en": "Channel"},
    "ticket": {"zh": "工单", "en": "Ticket"},
    "kind": {"zh": "类型", "en": "Kind"},
    "at": {"zh": "时间", "en": "At"},
    "resolved": {"zh": "已解决", "en": "Resolved"},
    "p90": {"zh": "P90", "en": "p90"},
    "median": {"zh": "中位数", "en": "median"},
    "answers": {"zh": "份评价", "en": "answers"},
}
WEEKDAYS = {
    "zh": ["周一", "周二", "周三", "周四", "周五", "周六", "周日"],
    "en": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
}
STYLE = """
body{font-family:"PingFang SC","Microsoft YaHei","WenQuanYi Micro Hei","Noto Sans CJK SC",
system-ui,sans-serif;color:#1f2937;margin:0;background:#f3f4f6}
main{max-width:1000px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:17px;margin:0 0 12px}
.sub{color:#6b7280;font-size:13px;margin-bottom:20px}
section{background:#fff;border-radius:10px;padding:16px 18px;margin:0 0 16px;
box-shadow:0 1px 2px rgba(0,0,0,.06)}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:12px}
.card{background:#fff;border-radius:10px;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.06)}
.card .k{font-size:12px;color:#6b7280}.card .v{font-size:22px;font-weight:600;margin:4px 0}
.up{color:#059669}.down{color:#dc2626}.flat{color:#6b7280}.delta{font-size:12px}
.two{display:grid;grid-template-columns:1fr 1fr;gap:16px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e5e7eb;vertical-align:top}
th{color:#6b7280;font-weight:500}td.n,th.n{text-align:right}
.note{font-size:12px;color:#6b7280}dl{font-size:12px}dt{font-weight:600;margin-top:8px}
dd{margin:2px 0 0;color:#4b5563}
@media (max-width:720px){.two{grid-template-columns:1fr}}
"""


def render(report: dict[str, Any], language: str = "zh") -> str:
    """The page for a report dict from `weekly.week_report`."""
    lang = "zh" if language == "zh" else "en"

    def t(key: str) -> str:
        return LABELS[key][lang]

    summary = report["summary"]
    week = report["week"]
    days = report["days"]
    day_labels = [d["date"][5:] for d in days]
    clock = "business_only" if summary["frt_human_counts_business_hours_only"] else "wall_clock"
    human = _frt_agents(summary)
    parts = [
        f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(t('title'))} {escape(week['start'])}</title><style>{STYLE}</style>"
        "</head><body><main>",
        f"<h1>{escape(t('title'))}</h1>",
        f'<div class="sub">{escape(t("week"))}: {escape(week["start"])} – {escape(week["end"])}'
        f" ({escape(week['zone'])}) · {escape(t('generated'))}: "
        f"{escape(report['generated_at'])}</div>",
        _cards(report["change"], t),
        "<section>",
        f"<h2>{escape(t('volume'))}</h2>",
        charts.heatmap(report["volume_by_hour"], WEEKDAYS[lang], t("volume")),
        "</section>",
        "<section><h2>" + escape(t("frt")) + '</h2><div class="two"><div>',
        f"<b>{escape(t('frt_bot'))}</b> · {_dist(summary['frt_bot'], t)}",
        charts.bars([(a, b) for a, b in report["frt_histogram"]["bot"]], t("frt_bot")),
        "</div><div>",
        f"<b>{escape(t('frt_human'))}</b> ({escape(t(clock))}) · {_dist(human, t)}",
        charts.bars(
            [(a, b) for a, b in report["frt_histogram"]["human"]],
            t("frt_human"),
            color=charts.ORANGE,
        ),
        "</div></div></section>",
        f'<section><h2>{escape(t("trend"))}</h2><div class="two"><div>',
        f"<b>CSAT</b> · {_pct(summary['csat']['rate'])} · "
        f"{_num(summary['csat']['mean'])} / 5 · {summary['csat']['answers']} "
        f"{escape(t('answers'))}",
        charts.line(day_labels, [d["csat"]["mean"] for d in days], "CSAT", low=1, high=5),
        "</div><div>",
        f"<b>NPS</b> · {_num(summary['nps']['score'], 1)} · {summary['nps']['answers']} "
        f"{escape(t('answers'))}",
        charts.line(
            day_labels,
            [d["nps"]["score"] for d in days],
            "NPS",
            low=-100,
            high=100,
            color=charts.BLUE,
        ),
        "</div></div></section>",
        f"<section><h2>{escape(t('containment'))} · {_pct(summary['containment']['rate'])}</h2>",
        charts.share_bar(
            summary["containment"]["contained"],
            summary["containment"]["with_customer_text"],
            t("containment"),
            width=900,
        ),
        '<p class="note">'
        + escape(
            t("containment_of").format(
                a=summary["containment"]["contained"],
                b=summary["containment"]["with_customer_text"],
            )
        )
        + "</p></section>",
        '<div class="two"><section>',
        f"<h2>{escape(t('top_faq'))}</h2>",
        _table(
            ["FAQ", t("count")],
            [
                [
                    escape(e["faq_id"])
                    + (
                        f' <span class="note">{escape(e["question"])}</span>'
                        if e["question"]
                        else ""
                    ),
                    str(e["answers"]),
                ]
                for e in report["top_faq"]
            ],
            t,
        ),
        "</section><section>",
        f"<h2>{escape(t('unanswered'))}</h2>",
        _table(
            [t("unanswered"), t("count"), t("examples")],
            [
                [escape(u["label"]), str(u["count"]), escape(" / ".join(u["examples"]))]
                for u in report["unanswered"]
            ],
            t,
        ),
        "</section></div>",
        f"<section><h2>{escape(t('breaches'))} · {len(report['breaches'])}</h2>",
        _table(
            [t("ticket"), t("queue"), t("kind"), t("at"), t("agent")],
            [
                [
                    f"#{b['ticket']}",
                    escape(b["queue"]),
                    escape(b["breach"] or ""),
                    escape((b["at"] or "")[:16].replace("T", " ")),
                    escape(b["agent"] or "—"),
                ]
                for b in report["breaches"]
            ],
            t,
        ),
        "</section>",
        f"<section><h2>{escape(t('agents'))}</h2>",
        _ticket_table(t("agent"), [(a["agent"], a) for a in report["by_agent"]], t),
        "</section>",
        f'<div class="two"><section><h2>{escape(t("queues"))}</h2>',
        _ticket_table(t("queue"), list(report["by_queue"].items()), t, short=True),
        f"</section><section><h2>{escape(t('channels'))}</h2>",
        _channel_table(report["by_channel"], t),
        "</section></div>",
        f"<section><h2>{escape(t('definitions'))}</h2><dl>",
        *(f"<dt>{escape(d.name(lang))}</dt><dd>{escape(d.means)}</dd>" for d in DEFINITIONS),
        "</dl></section></main></body></html>",
    ]
    return "\n".join(parts) + "\n"


def _cards(changes: dict[str, dict[str, Any]], t: Any) -> str:
    out = ['<div class="cards">']
    for key, c in changes.items():
        out.append(
            f'<div class="card"><div class="k">{escape(t(key))}</div>'
            f'<div class="v">{_value(key, c["now"])}</div>'
            f'<div class="delta">{_delta(c)} '
            f'<span class="flat">{escape(t("vs"))}</span></div></div>'
        )
    out.append("</div><p></p>")
    return "".join(out)


def _value(key: str, value: float | None) -> str:
    if value is None:
        return "—"
    if key in ("frt_bot_median", "frt_human_median", "aht_mean"):
        return _duration(value)
    if key in ("fcr", "csat", "containment", "sla", "transfer", "complaint_rate", "repeat_rate"):
        return _pct(value)
    if key == "nps":
        return f"{value:.1f}"
    if key == "csat_mean":
        return f"{value:.2f}"
    return f"{value:g}"


def _delta(c: dict[str, Any]) -> str:
    """▲/▼ with the change: percent for counts and times, points for shares and NPS; green
    when it is good news (a fall, for times and complaint rates)."""
    delta = c["change"]
    if delta is None:
        return '<span class="flat">–</span>'
    if delta == 0:
        return '<span class="flat">＝ 0</span>'
    good = (delta < 0) if c["lower_is_better"] else (delta > 0)
    arrow = "▲" if delta > 0 else "▼"
    if c["kind"] == "relative":
        amount = f"{abs(delta) * 100:.1f}%"
    elif c["now"] is not None and abs(c["now"]) > 1.5:  # NPS: points on its own scale
        amount = f"{abs(delta):.1f} pt"
    else:
        amount = f"{abs(delta) * 100:.1f} pt"
    return f'<span class="{"up" if good else "down"}">{arrow} {amount}</span>'


def _dist(d: dict[str, Any], t: Any) -> str:
    if not d["count"]:
        return escape(t("none"))
    return (
        f"{escape(t('median'))} {_duration(d['median'])} · {escape(t('p90'))} "
        f"{_duration(d['p90'])} · n={d['count']}"
    )


def _duration(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.0f}s"
    if value < 3600:
        return f"{value / 60:.1f}m"
    return f"{value / 3600:.1f}h"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _table(head: list[str], rows: list[list[str]], t: Any) -> str:
    if not rows:
        return f'<p class="note">{escape(t("none"))}</p>'
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def _ticket_table(
    first: str, rows: list[tuple[str, dict[str, Any]]], t: Any, *, short: bool = False
) -> str:
    head = [
        first,
        t("tickets"),
        t("resolved"),
        t("frt_human_median"),
        t("aht_mean"),
        "CSAT",
        t("fcr"),
    ]
    if not short:
        head.append(t("sla"))
    lines = []
    for name, f in rows:
        line = [
            escape(str(name)),
            str(f["tickets"]),
            str(f["resolved_tickets"]),
            _duration(_frt_agents(f)["median"]),
            _duration(f["aht"]["mean"]),
            f"{_num(f['csat']['mean'])} ({f['csat']['answers']})",
            _pct(f["fcr"]["rate"]),
        ]
        if not short:
            line.append(_pct(f["sla"]["rate"]))
        lines.append(line)
    return _table(head, lines, t)


def _frt_agents(f: dict[str, Any]) -> dict[str, Any]:
    """The human first response agents are held to (Figures.frt_agents, from the JSON)."""
    business = f["frt_human_counts_business_hours_only"]
    figures: dict[str, Any] = f["frt_human_business_hours" if business else "frt_human"]
    return figures


def _channel_table(channels: dict[str, dict[str, Any]], t: Any) -> str:
    head = [
        t("channel"),
        t("customer_messages"),
        t("conversations"),
        t("containment"),
        t("frt_bot_median"),
        t("tickets"),
    ]
    rows = [
        [
            escape(name),
            str(f["customer_messages"]),
            str(f["conversations"]),
            _pct(f["containment"]["rate"]),
            _duration(f["frt_bot"]["median"]),
            str(f["tickets"]),
        ]
        for name, f in channels.items()
    ]
    return _table(head, rows, t)
