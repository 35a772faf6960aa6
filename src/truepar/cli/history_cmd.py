"""``truepar history``: the ledger's records, oldest first."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from truepar.cli.layout import FREE_TEXT_MIN, fits, record
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
    title = f"{path} — {len(records)} record(s)"
    table = Table(title=Text(title), title_justify="left", header_style="bold", box=box.SIMPLE_HEAD)
    for col in ("seq", "time (UTC)", "kind", "plan", "signer", "summary"):
        table.add_column(col, justify="right" if col == "seq" else "left", no_wrap=col != "summary")
    rows = [
        (
            r.seq,
            r.recorded_utc[:19].replace("T", " "),
            r.kind,
            r.plan,
            r.signer or "unsigned",
            summary_text(r.kind, r.summary),
        )
        for r in records
    ]
    for seq, when, kind, plan, signer, text in rows:
        table.add_row(str(seq), when, Text(kind), Text(plan), Text(signer), Text(text))
    if fits(out, table, free={"summary": FREE_TEXT_MIN}):
        out.print(table)
    else:
        # Too narrow for the table (a CI log): each record's names on one line, the plan and
        # its summary whole on the lines below.
        out.print(title, markup=False, soft_wrap=True)
        for seq, when, kind, plan, signer, text in rows:
            head = Text.assemble((f"#{seq}", "bold"), f"  {when} UTC  {kind}  ")
            head.append("unsigned" if signer == "unsigned" else f"signer {signer}")
            record(out, head, [Text.assemble(("plan ", "dim"), plan), Text(text)])
    if not chain.ok:
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"truepar: warning: the ledger's chain is broken — {chain.reason}; records from "
            f"{chain.first_bad_seq} on cannot be trusted (truepar verify --ledger {path})",
            markup=False,
        )
        return 1
    return 0
