"""``truepar compare A B``: a regression gate between two benches.

Exit codes: 0 no regression · 1 a configuration got slower beyond the noise, or its verdict got
worse · 2 a file cannot be read as bench evidence, or the benches share no configuration.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from truepar.evidence import load_evidence
from truepar.evidence.compare import compare

STYLE = {"slower": "bold red", "faster": "green", "same": ""}


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
    table = Table(
        title=f"compare {a} → {b} (threshold {result.threshold:.0%}, {pct}% CI)",
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
    )
    for col in ("config", "A wall", "B wall", f"B/A [{pct}% CI]", "change", "verdict A → B"):
        table.add_column(col, justify="right" if "wall" in col or "CI" in col else "left")
    for c in result.configs:
        verdicts = f"{c.a_verdict or '–'} → {c.b_verdict or '–'}"
        if c.verdict_change == "worse":
            verdicts += " (worse)"
        elif c.verdict_change == "better":
            verdicts += " (better)"
        table.add_row(
            Text(c.label),
            f"{c.a_wall_s:.3f} s",
            f"{c.b_wall_s:.3f} s",
            f"{c.ratio:.3f} [{c.ci[0]:.3f}–{c.ci[1]:.3f}]",
            Text(c.change, style=STYLE[c.change]),
            Text(verdicts, style="bold red" if c.verdict_change == "worse" else ""),
        )
    out.print(table)
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
