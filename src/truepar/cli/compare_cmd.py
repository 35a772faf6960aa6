"""``truepar compare A B``: a regression gate between two benches.

Exit codes: 0 no regression · 1 a configuration got slower beyond the noise, or its verdict got
worse · 2 a file cannot be read as bench evidence, or the benches share no configuration.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, RenderableType
from rich.text import Text

from truepar.cli.bench_table import Column, fitted_table
from truepar.evidence import load_evidence
from truepar.evidence.compare import compare

STYLE = {"slower": "bold red", "faster": "green", "same": ""}


def _columns(pct: int) -> tuple[Column, ...]:
    """The configuration, the change and the verdicts are never left out; the walls, whose
    ratio is the column beside them, go first when the table is too wide."""
    return (
        Column("config", justify="left", key=True),
        Column("A wall", drop_order=1),
        Column("B wall", drop_order=2),
        Column(f"B/A [{pct}% CI]"),
        Column("change", justify="left", key=True),
        Column("verdict (A → B)", justify="left", key=True),
    )


def compare_command(
    a: Annotated[Path, typer.Argument(help="Bench evidence JSON: the reference.")],
    b: Annotated[Path, typer.Argument(help="Bench evidence JSON: the candidate.")],
    threshold: Annotated[
        float,
        typer.Option("--threshold", help="Relative change that counts, beyond the noise."),
    ] = 0.05,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> int:
    """Compare bench B with bench A per configuration; exit 1 on any regression."""
    result = compare(
        load_evidence(a), load_evidence(b), threshold=threshold, names=(str(a), str(b))
    )
    out = Console(highlight=False, soft_wrap=True)
    if as_json:
        out.print(json.dumps(result.to_json(), indent=2), markup=False)
        return 0 if result.ok else 1
    pct = round(result.level * 100)
    title = f"compare {a} → {b} (threshold {result.threshold:.0%}, {pct}% CI)"
    rows: list[list[RenderableType]] = []
    for c in result.configs:
        verdicts = c.a_verdict or "–"
        if c.b_verdict != c.a_verdict:
            verdicts += f" → {c.b_verdict or '–'}"
        if c.verdict_change in ("worse", "better"):
            verdicts += f" ({c.verdict_change})"
        rows.append(
            [
                Text(c.label),
                f"{c.a_wall_s:.3f} s",
                f"{c.b_wall_s:.3f} s",
                f"{c.ratio:.3f} [{c.ci[0]:.3f}–{c.ci[1]:.3f}]",
                Text(c.change, style=STYLE[c.change]),
                Text(verdicts, style="bold red" if c.verdict_change == "worse" else ""),
            ]
        )
    table, dropped = fitted_table(out, title, _columns(pct), rows)
    out.print(table)
    if dropped:
        left_out = ", ".join(c.heading for c in dropped)
        out.print(f"[dim]left out to fit {out.width} columns: {left_out} (in --json)[/]")
    for warning in result.warnings:
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"truepar: warning: {warning}", markup=False
        )
    if result.only_a:
        out.print(f"only in A: {', '.join(result.only_a)}", markup=False)
    if result.only_b:
        out.print(f"only in B: {', '.join(result.only_b)}", markup=False)
    if result.ok:
        out.print("[bold green]OK[/]: no regression")
        return 0
    labels = ", ".join(c.label for c in result.regressions)
    out.print(f"[bold red]REGRESSION[/]: {len(result.regressions)} configuration(s): ", end="")
    out.print(labels, markup=False)
    return 1
