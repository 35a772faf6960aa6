"""The two charts of the HTML report, as inline SVG: no script, no network, crisp at any zoom.

- :func:`gantt`: one row per worker, one bar per op attempt, coloured by status, on a time axis
  shared by every timeline of the report (so that a faster configuration *looks* shorter).
- :func:`scaling`: speedup against workers per backend, with 95% intervals, the ideal line
  ``S = W`` and the fitted USL curve ``S(N) = N / (1 + σ(N−1) + κN(N−1))``. Each backend has
  its own colour *and* marker shape, outlined in white and nudged a few pixels sideways, so
  points that land on one another stay told apart (in grey print too).

Every bar and point carries a ``<title>``: the browser shows its numbers on hover.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from truepar.report.timeline import Timeline, row_label
from truepar.units import fmt_s3

#: Status → fill colour (colour-blind-safe hues from the Okabe–Ito palette).
STATUS_COLOURS = {
    "ok": "#0072B2",
    "failed": "#D55E00",
    "timeout": "#E69F00",
    "crashed": "#CC79A7",
    "cancelled": "#999999",
    "skipped": "#CCCCCC",
}
SERIES_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
SERIES_SHAPES = ("circle", "square", "triangle", "diamond", "triangle-down", "hexagon")
#: Shape → (sides, turn in degrees from a corner at the top).
_POLYGONS = {
    "square": (4, 45),
    "triangle": (3, 0),
    "diamond": (4, 0),
    "triangle-down": (3, 180),
    "hexagon": (6, 0),
}
#: Pixels between the markers of neighbouring series at one worker count.
SERIES_NUDGE = 5.0

WIDTH = 880
LABEL_W = 84
ROW_H = 18
AXIS_H = 26


def nice_step(span: float, target_ticks: int = 6) -> float:
    """A 1-2-5 step that cuts ``span`` into about ``target_ticks`` pieces."""
    if span <= 0:
        return 1.0
    raw = span / target_ticks
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * power:
            return m * power
    return 10 * power


def _attrs(**attrs: Any) -> str:
    return " ".join(
        f'{k.rstrip("_").replace("_", "-")}="{escape(str(v))}"' for k, v in attrs.items()
    )


def _bar_title(bar: Any) -> str:
    parts = [
        f"{bar.op_id}" + (f" (attempt {bar.attempt})" if bar.attempt > 1 else ""),
        f"{bar.tool} · {bar.status} · {fmt_s3(bar.duration_s)}",
        f"starts at {fmt_s3(bar.start_s)} · {row_label(bar.row)}",
    ]
    if bar.cpu_s is not None:
        parts.append(f"CPU {fmt_s3(bar.cpu_s)}")
    if bar.error:
        parts.append(f"error: {bar.error[:200]}")
    return "\n".join(parts)


def gantt(timeline: Timeline, scale_s: float, chart_id: str) -> str:
    """The timeline as SVG, ``scale_s`` seconds across the plot (shared between timelines)."""
    rows = timeline.rows or [(None, None)]
    plot_w = WIDTH - LABEL_W - 12
    height = len(rows) * ROW_H + AXIS_H + 6
    span = max(scale_s, 1e-9)

    def x(t: float) -> float:
        return LABEL_W + max(0.0, t) / span * plot_w

    out = [
        f"<svg {_attrs(id=chart_id, class_='gantt', width=WIDTH, height=height)} "
        f'viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(timeline.label)} timeline">'
    ]
    step = nice_step(span)
    tick = 0.0
    while tick <= span + 1e-12:
        tx = x(tick)
        out.append(
            f'<line class="grid" x1="{tx:.1f}" x2="{tx:.1f}" y1="0" y2="{height - AXIS_H}"/>'
        )
        out.append(
            f'<text class="tick" x="{tx:.1f}" y="{height - AXIS_H + 14}" '
            f'text-anchor="middle">{escape(fmt_s3(tick))}</text>'
        )
        tick += step
    wall_x = x(timeline.wall_s)
    out.append(
        f'<line class="wall" x1="{wall_x:.1f}" x2="{wall_x:.1f}" y1="0" '
        f'y2="{height - AXIS_H}"><title>wall {escape(fmt_s3(timeline.wall_s))}</title></line>'
    )
    row_of = {row: i for i, row in enumerate(rows)}
    for i, row in enumerate(rows):
        y = i * ROW_H
        label = row_label(row)
        out.append(f'<text class="row-label" x="{LABEL_W - 6}" y="{y + 13}" text-anchor="end">')
        out.append(f"{escape(label)}</text>")
    for bar in timeline.bars:
        y = row_of.get(bar.row, 0) * ROW_H + 2
        x0 = x(bar.start_s)
        w = max(1.0, x(bar.end_s) - x0)
        colour = STATUS_COLOURS.get(bar.status, "#555555")
        out.append(
            f'<rect class="bar status-{escape(bar.status)}" x="{x0:.2f}" y="{y}" '
            f'width="{w:.2f}" height="{ROW_H - 4}" fill="{colour}" '
            f'data-op="{escape(bar.op_id)}"><title>{escape(_bar_title(bar))}</title></rect>'
        )
    out.append("</svg>")
    return "".join(out)


def legend() -> str:
    items = "".join(
        f'<span class="key"><span class="swatch" style="background:{colour}"></span>'
        f"{escape(status)}</span>"
        for status, colour in STATUS_COLOURS.items()
    )
    return f'<div class="legend">{items}</div>'


def marker(
    shape: str, cx: float, cy: float, colour: str, size: float = 4.5, role: str = "point"
) -> str:
    """An SVG marker of ``shape`` (one of :data:`SERIES_SHAPES`) centred on (``cx``, ``cy``),
    filled with ``colour`` and outlined in white; left open for a ``<title>`` (:func:`close`).
    ``role``: its class, "point" on the plot, "key" in the legend."""
    common = f'class="{role} marker-{shape}" fill="{colour}" stroke="#ffffff" stroke-width="1"'
    if shape == "circle":
        return f'<circle {common} cx="{cx:.1f}" cy="{cy:.1f}" r="{size:.1f}">'
    sides, turn = _POLYGONS[shape]
    r = size * 1.3  # a polygon's corners reach further than a circle of the same area
    angles = (math.radians(turn + 360 * k / sides) for k in range(sides))
    points = " ".join(f"{cx + r * math.sin(a):.1f},{cy - r * math.cos(a):.1f}" for a in angles)
    return f'<polygon {common} points="{points}">'


def close(shape: str) -> str:
    """The closing tag of :func:`marker`'s element."""
    return "</circle>" if shape == "circle" else "</polygon>"


def usl_speedup(n: float, sigma: float, kappa: float) -> float:
    return n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


def scaling(
    results: Sequence[Mapping[str, Any]],
    fits: Mapping[str, Mapping[str, Any]],
    chart_id: str,
) -> str:
    """Speedup against workers, per backend: points with 95% bars, ideal and USL lines."""
    series: dict[str, list[Mapping[str, Any]]] = {}
    for r in results:
        series.setdefault(str(r["backend"]), []).append(r)
    max_w = max([int(r["workers"]) for r in results] + [2])
    hi_values = [float((r.get("speedup_ci") or [0, 0])[1] or 0) for r in results]
    max_s = max([float(r.get("speedup") or 0) for r in results] + hi_values + [1.0])
    max_s = max(max_s * 1.1, min(float(max_w), max_s * 1.6))
    width, height, left, bottom, top, right = 560, 300, 48, 36, 12, 110
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(w: float) -> float:
        return left + (w - 1) / max(max_w - 1, 1) * plot_w

    def y(s: float) -> float:
        return top + plot_h - s / max_s * plot_h

    out = [
        f"<svg {_attrs(id=chart_id, class_='scaling', width=width, height=height)} "
        f'viewBox="0 0 {width} {height}" role="img" aria-label="speedup against workers">'
    ]
    for ws in range(1, max_w + 1):
        if max_w > 16 and ws % max(1, max_w // 8):
            continue
        out.append(f'<line class="grid" x1="{x(ws):.1f}" x2="{x(ws):.1f}" y1="{top}" ')
        out.append(f'y2="{top + plot_h}"/>')
        out.append(f'<text class="tick" x="{x(ws):.1f}" y="{top + plot_h + 14}" ')
        out.append(f'text-anchor="middle">{ws}</text>')
    step = nice_step(max_s, 5)
    s = 0.0
    while s <= max_s + 1e-12:
        out.append(f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y(s):.1f}" ')
        out.append(f'y2="{y(s):.1f}"/>')
        out.append(f'<text class="tick" x="{left - 6}" y="{y(s) + 4:.1f}" text-anchor="end">')
        out.append(f"{s:g}×</text>")
        s += step
    out.append(f'<text class="axis" x="{left + plot_w / 2}" y="{height - 4}" ')
    out.append('text-anchor="middle">workers</text>')
    out.append(f'<text class="axis" x="12" y="{top + plot_h / 2}" text-anchor="middle" ')
    out.append(f'transform="rotate(-90 12 {top + plot_h / 2})">speedup</text>')
    ideal_end = min(float(max_w), max_s)
    out.append(
        f'<line class="ideal" x1="{x(1):.1f}" y1="{y(1):.1f}" x2="{x(ideal_end):.1f}" '
        f'y2="{y(ideal_end):.1f}"><title>ideal: speedup = workers</title></line>'
    )
    legend_y = top + 4
    curves = 0
    for i, (backend, unsorted) in enumerate(series.items()):
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        shape = SERIES_SHAPES[i % len(SERIES_SHAPES)]
        nudge = (i - (len(series) - 1) / 2) * SERIES_NUDGE
        rows = sorted(unsorted, key=lambda r: int(r["workers"]))
        fit = (fits.get(backend) or {}).get("usl") or {}
        sigma, kappa = fit.get("sigma"), fit.get("kappa")
        if isinstance(sigma, int | float) and isinstance(kappa, int | float):
            curves += 1
            points = " ".join(
                f"{x(n):.1f},{y(min(usl_speedup(n, sigma, kappa), max_s)):.1f}"
                for n in (1 + k * (max_w - 1) / 60 for k in range(61))
            )
            out.append(
                f'<polyline class="usl" data-backend="{escape(backend)}" points="{points}" '
                f'stroke="{colour}"><title>{escape(backend)} USL fit: σ = {sigma:.3g}, '
                f"κ = {kappa:.3g}</title></polyline>"
            )
        path = " ".join(
            f"{x(int(r['workers'])) + nudge:.1f},{y(float(r['speedup'])):.1f}" for r in rows
        )
        out.append(f'<polyline class="measured" points="{path}" stroke="{colour}"/>')
        for r in rows:
            cx, cy = x(int(r["workers"])) + nudge, y(float(r["speedup"]))
            lo, hi = (r.get("speedup_ci") or [None, None])[:2]
            if isinstance(lo, int | float) and isinstance(hi, int | float):
                out.append(
                    f'<line class="ci" x1="{cx:.1f}" x2="{cx:.1f}" y1="{y(min(hi, max_s)):.1f}" '
                    f'y2="{y(lo):.1f}" stroke="{colour}"/>'
                )
            title = (
                f"{backend} ×{r['workers']}: {float(r['speedup']):.2f}×"
                + (f" [{lo:.2f}–{hi:.2f}]" if isinstance(lo, int | float) else "")
                + f" · {r.get('verdict') or 'no verdict'}"
            )
            out.append(marker(shape, cx, cy, colour))
            out.append(f"<title>{escape(title)}</title>{close(shape)}")
        ly = legend_y + i * 18
        lx = left + plot_w + 12
        out.append(marker(shape, lx + 6, ly + 6, colour, size=5, role="key") + close(shape))
        out.append(f'<text class="tick" x="{lx + 16}" y="{ly + 10}">{escape(backend)}</text>')
    ly = legend_y + len(series) * 18 + 6
    lx = left + plot_w + 12
    out.append(f'<line class="ideal" x1="{lx}" x2="{lx + 12}" y1="{ly + 6}" y2="{ly + 6}"/>')
    out.append(f'<text class="tick" x="{lx + 16}" y="{ly + 10}">ideal</text>')
    if curves:
        # Only where a curve is drawn: a backend without a fit has no dotted line to explain.
        out.append(
            f'<line class="usl-key" x1="{lx}" x2="{lx + 12}" y1="{ly + 24}" y2="{ly + 24}"/>'
        )
        out.append(f'<text class="tick" x="{lx + 16}" y="{ly + 28}">USL fit</text>')
    out.append("</svg>")
    return "".join(out)
