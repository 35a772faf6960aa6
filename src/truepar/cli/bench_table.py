"""The bench's results on a terminal: a table that fits the width it is given, then words.

A CI log or a pipe is 80 columns. Rich would shrink every column of a table that is too wide and
cut the names short ("back…", "concurre…"), so the columns that tell rows apart (backend, W,
verdict) are never shrunk: the table leaves out its least needed numbers instead (efficiency,
which is speedup / W; then the bound efficiency), one by one until it fits, and says which.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

from rich import box
from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from truepar.cli.tree import VERDICT_STYLE
from truepar.measure import BenchReport
from truepar.measure.results import ConfigResult
from truepar.units import fmt_ratio, fmt_s

#: Wider than any terminal: the width a table measures within is its natural width.
NATURAL_WIDTH = 10_000


@dataclasses.dataclass(frozen=True, slots=True)
class Column:
    heading: str
    justify: Literal["left", "right"] = "right"
    #: Left out, lowest first, when the table is too wide; ``None``: never left out.
    drop_order: int | None = None
    #: What the note says of the column when it is left out.
    means: str = ""
    #: It tells rows apart (a name, a worker count): never shrunk, never cut short.
    key: bool = False


def fitted_table(
    console: Console,
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[RenderableType]],
) -> tuple[Table, list[Column]]:
    """The widest table of ``columns`` that fits ``console``, and the columns left out."""
    dropped: list[Column] = []
    droppable = sorted((c for c in columns if c.drop_order is not None), key=_order)
    while True:
        kept = [i for i, c in enumerate(columns) if c not in dropped]
        table = Table(
            title=title,
            title_justify="left",
            header_style="bold",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            padding=(0, 1, 0, 0),  # with the box's blank divider: two spaces between columns
        )
        for i in kept:
            col = columns[i]
            # A column that tells rows apart keeps its full width however narrow the console.
            widest = max((Text.from_markup(str(r[i])).cell_len for r in rows), default=0)
            table.add_column(
                col.heading,
                justify=col.justify,
                no_wrap=True,
                min_width=max(widest, len(col.heading)) if col.key else None,
            )
        for row in rows:
            table.add_row(*(row[i] for i in kept))
        # Measured without the console's limit: within it, rich reports what it would shrink to.
        natural = console.options.update(max_width=NATURAL_WIDTH)
        width = Measurement.get(console, natural, table).maximum
        if width <= console.width or not droppable:
            return table, dropped
        dropped.append(droppable.pop(0))


def _order(c: Column) -> int:
    return c.drop_order if c.drop_order is not None else 0


BENCH_COLUMNS = (
    Column("backend", justify="left", key=True),
    Column("W", key=True),
    Column("wall"),
    Column("speedup [95% CI]"),
    Column("eff.", drop_order=1, means="efficiency = speedup / W"),
    Column("cores"),
    Column("work R"),
    Column("bound", drop_order=2, means="bound efficiency = lower bound / wall"),
    Column("verdict", justify="left", key=True),
)


def _row(r: ConfigResult) -> list[RenderableType]:
    lo, hi = r.speedup_ci
    return [
        Text(r.backend),
        str(r.workers),
        fmt_s(r.wall_s),
        f"{r.speedup:.2f}× [{lo:.2f}–{hi:.2f}]",
        f"{r.efficiency:.0%}",
        f"{r.cores_used:.2f}",
        fmt_ratio(r.work_ratio),
        f"{r.bound_efficiency:.2f}",
        Text(r.verdict or "", style=VERDICT_STYLE.get(r.verdict or "", "")),
    ]


def trials_text(report: BenchReport) -> str:
    """``5 trials``, or ``3–5 trials`` when configurations stopped at different counts."""
    fewest, most = report.trial_counts()
    if most == 0:
        return f"{report.repeat} trials asked for"
    n = str(most) if fewest == most else f"{fewest}–{most}"
    return f"{n} trial{'s' if most > 1 else ''}"


def show(console: Console, report: BenchReport) -> None:
    """The results table, each configuration's reasons, then early stops and warnings."""
    base = report.baseline
    title = f"{report.plan} — bench, {trials_text(report)}"
    if base is not None:
        title += f"; sequential {fmt_s(base.wall_s)} (CV {base.wall_cv:.0%})"
    table, dropped = fitted_table(console, title, BENCH_COLUMNS, [_row(r) for r in report.results])
    console.print(table)
    if dropped:
        left_out = "; ".join(f"{c.heading} ({c.means})" for c in dropped)
        console.print(f"[dim]left out to fit {console.width} columns: {left_out}[/]")
    for r in report.results:
        console.print(f"[bold]{r.label}[/] {r.verdict}: " + "; ".join(r.reasons))
        if r.failed_only_here:
            console.print(f"  failed only here: {', '.join(r.failed_only_here)}")
    for backend, fit in report.scaling.items():
        if fit.get("diagnosis"):  # the USL fit, Karp–Flatt and the recommendation, in words
            console.print(f"[bold]{backend}[/] scaling: {fit['diagnosis']}")
        else:
            console.print(
                f"[bold]{backend}[/] scaling: recommended workers {fit['recommended_workers']} "
                f"({fit['recommended_why']})"
            )
    for line in early_stop_lines(report):
        console.print(line, markup=False)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}")


def early_stop_lines(report: BenchReport) -> list[str]:
    """Which configurations stopped before the cap, and why: no one should think runs were lost."""
    record = report.early_stop
    if record is None or not record.stops:
        return []
    by_count: dict[int, list[str]] = {}
    for s in record.stops:
        by_count.setdefault(s.trials, []).append(f"{s.backend} ×{s.workers}")
    widest = max(s.rel_half_width for s in record.stops)
    done = "; ".join(f"{', '.join(labels)} after {n}" for n, labels in by_count.items())
    rule = record.rule
    return [
        f"stopped early: {done} of at most {rule.max_trials} trials — their speedup intervals "
        f"were already within ±{rule.max_rel_half_width:.0%} (widest ±{widest:.1%}) and wholly "
        f"above or below {record.min_speedup:g}; --repeat N measures exactly N trials"
    ]
