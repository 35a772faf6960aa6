"""``truepar history``: the ledger's records, oldest first."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from truepar.errors import UsageError
from truepar.evidence import Ledger, summary_text
from truepar.evidence.paths import default_ledger_path


def history_command(
    ledger: Annotated[
        Path | None,
        typer.Option("--ledger", help="Ledger (default: $TRUEPAR_LEDGER or the data dir's)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Newest N records.")] = 20,
) -> int:
    """List the runs and benches recorded in the ledger, oldest first; check its chain."""
    if limit < 1:
        raise UsageError(f"--limit must be at least 1, not {limit}")
    out = Console(highlight=False)
    if ledger is None and not default_ledger_path().exists():
        out.print(f"no records yet: {default_ledger_path()} does not exist", markup=False)
        return 0
    # An existing ledger only: a typo in --ledger is an error, not a new empty ledger.
    with Ledger(ledger, create=False) as book:
        records = book.records(limit=limit)
        chain = book.verify_chain()
        path = book.path
    table = Table(
        title=f"{path} — {len(records)} record(s)",
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
    )
    for col in ("seq", "time (UTC)", "kind", "plan", "signer", "summary"):
        table.add_column(col, justify="right" if col == "seq" else "left", no_wrap=col != "summary")
    for r in records:
        table.add_row(
            str(r.seq),
            r.recorded_utc[:19].replace("T", " "),
            Text(r.kind),
            Text(r.plan),
            Text(r.signer or "unsigned"),
            Text(summary_text(r.kind, r.summary)),
        )
    out.print(table)
    if not chain.ok:
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"truepar: warning: the ledger's chain is broken — {chain.reason}; records from "
            f"{chain.first_bad_seq} on cannot be trusted (truepar verify --ledger {path})",
            markup=False,
        )
        return 1
    return 0
