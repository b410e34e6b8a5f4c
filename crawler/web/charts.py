"""Charts drawn on the server as inline SVG.

Why SVG from Python rather than a JS chart library: the pages work with scripts off and with
no internet, nothing is vendored, a test reads the numbers in the markup, and every chart
sits beside the table of the numbers behind it. A chart is a few dozen elements.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from markupsafe import Markup, escape

SVG_NS = "http://www.w3.org/2000/svg"
AXIS = 'font-size="10" fill="#6b7280" font-family="sans-serif"'  # inline: an <img> gets no page CSS
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777")


def fill_days(
    points: Sequence[tuple[date, int]], span: tuple[date, date] | None = None
) -> list[tuple[date, int]]:
    """Every day from the first to the last point (or of `span`), 0 where nothing was counted."""
    if not points and span is None:
        return []
    counts = dict(points)
    first, last = span or (min(counts), max(counts))
    if (last - first).days > 3660:  # a stray date far off: plot what there is, unfilled
        return sorted(counts.items())
    return [
        (first + timedelta(days=i), counts.get(first + timedelta(days=i), 0))
        for i in range((last - first).days + 1)
    ]


def bars(
    points: Sequence[tuple[date, int]],
    *,
    width: int = 640,
    height: int = 120,
    label: str = "articles per day",
    span: tuple[date, date] | None = None,
    total_label: str = "",
) -> Markup:
    """A bar per day; each bar's <title> says its day and count (a tooltip, and testable)."""
    days = fill_days(points, span)
    if not days or not any(n for _, n in days):
        return Markup('<p class="muted">no dated articles</p>')
    top = max(n for _, n in days) or 1
    step = min(width / len(days), max(24.0, 160 / len(days)))  # at least 160 px wide
    width = max(int(step * len(days)), 160)
    top_margin = 12  # room for "max N" above the tallest bar
    parts = [
        f'<svg xmlns="{SVG_NS}" class="chart" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {width} {height + 28}" width="{width}" height="{height + 28}">',
        f'<text x="0" y="9" {AXIS}>{escape(total_label)}max {top} a day</text>',
    ]
    for i, (day, n) in enumerate(days):
        h = n / top * height
        parts.append(
            f'<rect x="{i * step:.1f}" y="{top_margin + height - h:.1f}" width="{max(step - 1, 1):.1f}" '
            f'height="{h:.1f}" fill="{PALETTE[0]}"><title>{day.isoformat()}: {n}</title></rect>'
        )
    base = top_margin + height + 13
    parts.append(f'<text x="0" y="{base}" {AXIS}>{days[0][0].isoformat()}</text>')
    parts.append(
        f'<text x="{width}" y="{base}" text-anchor="end" {AXIS}>{days[-1][0].isoformat()}</text></svg>'
    )
    return Markup("".join(parts))


def lines(
    series: dict[str, list[tuple[date, int]]], *, width: int = 640, height: int = 180
) -> Markup:
    """One line per series over the same days, with a legend."""
    all_days = fill_days([(d, 0) for pts in series.values() for d, _ in pts])
    if not all_days:
        return Markup('<p class="muted">no dated matches</p>')
    index = {d: i for i, (d, _) in enumerate(all_days)}
    top = max((n for pts in series.values() for _, n in pts), default=1) or 1
    step = width / max(len(all_days) - 1, 1)
    parts = [
        f'<svg xmlns="{SVG_NS}" class="chart" role="img" aria-label="mentions over time" viewBox="0 0 {width} {height + 16}" '
        f'width="{width}" height="{height + 16}">'
    ]
    for k, (name, pts) in enumerate(sorted(series.items())):
        counts = dict(pts)
        coords = " ".join(
            f"{index[d] * step:.1f},{height - counts.get(d, 0) / top * height:.1f}"
            for d, _ in all_days
        )
        color = PALETTE[k % len(PALETTE)]
        parts.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{coords}">'
            f"<title>{escape(name)}: {sum(counts.values())}</title></polyline>"
        )
    parts.append(f'<text x="0" y="{height + 13}" {AXIS}>{all_days[0][0].isoformat()}</text>')
    parts.append(
        f'<text x="{width}" y="{height + 13}" text-anchor="end" {AXIS}>'
        f"{all_days[-1][0].isoformat()}</text>"
    )
    parts.append(f'<text x="4" y="10" {AXIS}>max {top}</text></svg>')
    legend = "".join(
        f'<span class="key"><i style="background:{PALETTE[k % len(PALETTE)]}"></i>{escape(name)}</span>'
        for k, name in enumerate(sorted(series))
    )
    return Markup("".join(parts) + f'<div class="legend">{legend}</div>')
