"""``truepar run PLAN``: run a plan once, live progress, then the ops table and a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from truepar.backends import backend_names
from truepar.cli import backend_opts, evidence_opts, render
from truepar.engine.resume import Resumption, plan_resume, resume_planned
from truepar.engine.run import check_workers, run
from truepar.errors import UsageError
from truepar.evidence import run_evidence, run_summary
from truepar.evidence.metadata import utc_now
from truepar.fileio import atomic_write_json, check_writable
from truepar.plan.load import load_plan


def run_command(
    plan: Annotated[Path, typer.Argument(help="Plan file (TOML, or YAML).", show_default=False)],
    backend: Annotated[
        str | None,
        typer.Option("--backend", "-b", help=f"One of: {', '.join(backend_names())}."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", "-w", help="Ops at once (default: the plan's).")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the trace as JSON here (atomically).")
    ] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Say why each op waited for others.")
    ] = False,
    all_ops: Annotated[bool, typer.Option("--all", help="Show every op in the table.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary line.")] = False,
    resume_from: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            help="A trace of this plan (its --json, or the run's evidence): run again only the "
            "ops that did not end ok there, and those after them; reuse the others' results.",
            show_default=False,
        ),
    ] = None,
    address: backend_opts.AddressOpt = None,
    evidence: evidence_opts.EvidenceOpt = None,
    no_evidence: evidence_opts.NoEvidenceOpt = False,
    ledger: evidence_opts.LedgerOpt = None,
    keys: evidence_opts.KeysOpt = None,
) -> int:
    """Run PLAN once and print what ran where, for how long, at what cost."""
    backend_opts.use_address(address)
    if workers is not None:
        check_workers(workers)
    if backend is not None and backend not in backend_names():
        raise UsageError(f"--backend {backend!r} is unknown (one of: {', '.join(backend_names())})")
    if json_out is not None:
        check_writable(json_out, "--json")
    loaded = load_plan(plan)
    out = Console(highlight=False)
    resumption = plan_resume(loaded, resume_from) if resume_from is not None else None
    if resumption is not None and not resumption.rerun:
        done = f"nothing to rerun: all {len(loaded.ops)} ops ended ok in {resume_from}"
        out.print(done, markup=False)
        if json_out is not None:
            trace = resume_planned(resumption, backend=backend, workers=workers)
            atomic_write_json(json_out, trace.to_json())
            out.print(f"trace written to {json_out}", markup=False)
        return 0
    writer = evidence_opts.EvidenceOutput.optional(
        evidence,
        off=no_evidence,
        kind="run",
        name=loaded.name,
        keys=keys,
        ledger=ledger,
        console=Console(quiet=True) if quiet else out,  # -q: the summary line, nothing else
    )
    started = utc_now()
    progress = render.LiveProgress(Console(stderr=True), enabled=not quiet)
    with progress:
        # The run refuses an unsafe plan and checks its live budgets first (checks=True).
        if resumption is None:
            trace = run(loaded, backend=backend, workers=workers, observer=progress)
        else:
            trace = resume_planned(resumption, backend=backend, workers=workers, observer=progress)
    ended = utc_now()
    if json_out is not None:
        atomic_write_json(json_out, trace.to_json())
    if not quiet:
        render.ops_table(out, trace, limit=None if all_ops else 40)
    if explain:
        render.explain(out, trace)
    if resumption is not None and resume_from is not None and not quiet:
        out.print(_resumed(resumption, resume_from), markup=False)
    render.summary(out, trace)
    if json_out is not None:
        out.print(f"trace written to {json_out}")
    if writer is not None:
        writer.write(run_evidence(trace, loaded, started_utc=started, ended_utc=ended))
        writer.finish(run_summary(trace))
    if trace.interrupt_exit_code is not None:
        return trace.interrupt_exit_code
    return 0 if trace.ok else 1


def _resumed(resumption: Resumption, source: Path) -> str:
    """One line: how many ops the trace gave, and which ran again."""
    again = resumption.rerun
    shown = ", ".join(again[:8]) + (f" and {len(again) - 8} more" if len(again) > 8 else "")
    reused = len(resumption.reused)
    return (
        f"resumed from {source}: {reused} op{'s' * (reused != 1)} reused (ok there), "
        f"{len(again)} run again: {shown}"
    )
