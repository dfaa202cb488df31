"""Waits and ages as agents say them: "2 天 3 小时", "5 分钟", "刚刚" ("2 d 3 h", "5 min",
"just now"), never `1384:19:22`. The page's script (static/console.js) counts on in the same
shape, with the same words, which the page hands it in `data-units` on <body>."""

from __future__ import annotations

#: the words of each unit and of "under a minute", per console language
UNITS: dict[str, dict[str, str]] = {
    "zh": {"d": "天", "h": "小时", "min": "分钟", "now": "刚刚", "soon": "不到 1 分钟"},
    "en": {"d": "d", "h": "h", "min": "min", "now": "just now", "soon": "< 1 min"},
}


def spoken(seconds: float | None, language: str, *, ahead: bool = False) -> str:
    """The two largest units that matter: days and hours, hours and minutes, or minutes.

    Under a minute an elapsed wait is "just now"; a deadline `ahead` is "under a minute"."""
    if seconds is None:
        return "–"
    words = UNITS.get(language, UNITS["en"])
    whole = max(int(seconds), 0)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        parts = [(days, "d"), (hours, "h")]
    elif hours:
        parts = [(hours, "h"), (minutes, "min")]
    elif minutes:
        parts = [(minutes, "min")]
    else:
        return words["soon" if ahead else "now"]
    return " ".join(f"{n} {words[unit]}" for n, unit in parts if n)
