"""Small inline SVG charts drawn by hand: the report must open anywhere, offline, with no
script and nothing fetched (no CDN, no JavaScript charting library). Each function returns one
`<svg>` element as text; colours and sizes are fixed so that pages look alike week to week.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
BLUE = "#2563eb"
GREEN = "#059669"
ORANGE = "#d97706"


def _svg(width: int, height: int, body: str, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def _text(x: float, y: float, text: str, *, anchor: str = "middle", size: int = 11) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{MUTED}" '
        f'text-anchor="{anchor}">{escape(text)}</text>'
    )


def bars(
    items: Sequence[tuple[str, float]], title: str, *, color: str = BLUE, width: int = 420
) -> str:
    """Vertical bars with their labels under them and values on top."""
    height, top, bottom, left = 180, 18, 28, 8
    peak = max((v for _, v in items), default=0) or 1
    slot = (width - 2 * left) / max(1, len(items))
    body = [
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - left}" '
        f'y2="{height - bottom}" stroke="{GRID}"/>'
    ]
    for i, (label, value) in enumerate(items):
        h = (height - top - bottom) * value / peak
        x = left + i * slot + slot * 0.15
        y = height - bottom - h
        body.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
            f'fill="{color}" rx="2"><title>{escape(label)}: {value:g}</title></rect>'
        )
        body.append(_text(x + slot * 0.35, y - 4, f"{value:g}", size=10))
        body.append(_text(x + slot * 0.35, height - bottom + 15, label, size=10))
    return _svg(width, height, "".join(body), title)


def heatmap(grid: Sequence[Sequence[int]], rows: Sequence[str], title: str) -> str:
    """Rows (weekdays) by 24 hours; the darker the cell, the more messages."""
    cell, left, top = 22, 44, 18
    width, height = left + 24 * cell + 8, top + len(rows) * cell + 8
    peak = max((n for row in grid for n in row), default=0) or 1
    body = [_text(left + h * cell + cell / 2, 12, f"{h}", size=9) for h in range(0, 24, 3)]
    for r, (name, row) in enumerate(zip(rows, grid, strict=True)):
        y = top + r * cell
        body.append(_text(left - 6, y + cell * 0.68, name, anchor="end"))
        for h, n in enumerate(row):
            shade = 0.06 + 0.94 * n / peak if n else 0
            fill = f'fill="{BLUE}" fill-opacity="{shade:.2f}"' if n else f'fill="{GRID}"'
            body.append(
                f'<rect x="{left + h * cell + 1}" y="{y + 1}" width="{cell - 2}" '
                f'height="{cell - 2}" {fill} rx="2"><title>{escape(name)} {h}:00 — {n}</title>'
                "</rect>"
            )
    return _svg(width, height, "".join(body), title)


def line(
    labels: Sequence[str],
    values: Sequence[float | None],
    title: str,
    *,
    low: float,
    high: float,
    color: str = GREEN,
    width: int = 420,
) -> str:
    """A line over the days on a fixed scale (CSAT 1–5, NPS −100…100), with the days without
    answers left as gaps rather than drawn as zero."""
    height, top, bottom, left, right = 170, 14, 28, 34, 10
    span = (high - low) or 1
    step = (width - left - right) / max(1, len(labels) - 1)

    def y_of(value: float) -> float:
        return top + (height - top - bottom) * (high - value) / span

    body = []
    for tick in (low, (low + high) / 2, high):
        y = y_of(tick)
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        body.append(_text(left - 4, y + 4, f"{tick:g}", anchor="end", size=10))
    run: list[str] = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = left + i * step
        body.append(_text(x, height - 10, label, size=10))
        if value is None:
            if len(run) > 1:
                body.append(_polyline(run, color))
            run = []
            continue
        run.append(f"{x:.1f},{y_of(value):.1f}")
        body.append(
            f'<circle cx="{x:.1f}" cy="{y_of(value):.1f}" r="3.5" fill="{color}">'
            f"<title>{escape(label)}: {value:.2f}</title></circle>"
        )
    if len(run) > 1:
        body.append(_polyline(run, color))
    return _svg(width, height, "".join(body), title)


def _polyline(points: list[str], color: str) -> str:
    return f'<polyline points="{" ".join(points)}" fill="none" stroke="{color}" stroke-width="2"/>'


def share_bar(part: int, whole: int, title: str, *, color: str = GREEN, width: int = 420) -> str:
    """One horizontal bar: the share `part` of `whole` filled."""
    height = 26
    filled = (width - 2) * part / whole if whole else 0
    body = (
        f'<rect x="1" y="1" width="{width - 2}" height="{height - 2}" fill="{GRID}" rx="4"/>'
        f'<rect x="1" y="1" width="{filled:.1f}" height="{height - 2}" fill="{color}" rx="4"/>'
    )
    return _svg(width, height, body, title)
