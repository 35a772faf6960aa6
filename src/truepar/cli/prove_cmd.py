"""``truepar prove``: is parallelism real on this interpreter and machine?

A fixed-work pure-Python kernel with a verified checksum on every backend, plus three controls
whose verdicts are known in advance (sleeps → concurrent, hashlib in threads → parallel, a
time-bounded decoy → suspect). Exit 0 when every verdict is the expected one and every task
result verified, 1 otherwise, 2 for bad input, 130 when interrupted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from truepar.cli import evidence_opts
from truepar.cli.layout import INDENT, fits, joined, record
from truepar.cli.report_outputs import HtmlOpt, MdOpt, ReportOutputs, TraceOpt
from truepar.cli.tree import VERDICT_STYLE
from truepar.errors import UsageError
from truepar.evidence import prove_evidence, prove_summary
from truepar.evidence.metadata import utc_now
from truepar.fileio import atomic_write_json, check_writable
from truepar.measure.prove import ProveReport, prove
from truepar.units import fmt_num, fmt_ratio


def prove_command(
    tasks: Annotated[
        int, typer.Option("--tasks", "-k", help="Tasks run at once (and workers), at least 2.")
    ] = 4,
    repeat: Annotated[int, typer.Option("--repeat", "-r", help="Measured trials.")] = 3,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the results as JSON here (atomically).")
    ] = None,
    evidence: evidence_opts.EvidenceOpt = None,
    no_evidence: evidence_opts.NoEvidenceOpt = False,
    ledger: evidence_opts.LedgerOpt = None,
    keys: evidence_opts.KeysOpt = None,
    html_out: HtmlOpt = None,
    md: MdOpt = None,
    trace: TraceOpt = None,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray/--no-ray",
            help="Also prove the ray backend where Ray is installed (after everything else).",
        ),
    ] = True,
) -> int:
    """Prove whether parallelism is real here: a checked kernel on every backend, and controls."""
    if tasks < 2:
        raise UsageError(f"--tasks must be at least 2 (tasks to run at once), not {tasks}")
    if repeat < 1:
        raise UsageError(f"--repeat must be at least 1, not {repeat}")
    if json_out is not None:
        check_writable(json_out, "--json")
    outputs = ReportOutputs(html=html_out, md=md, trace=trace)
    outputs.check()
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    writer = evidence_opts.EvidenceOutput.optional(
        evidence,
        off=no_evidence,
        kind="prove",
        name="prove",
        keys=keys,
        ledger=ledger,
        console=out,
    )
    started = utc_now()
    report = prove(
        tasks=tasks,
        repeat=repeat,
        on_progress=lambda s: err.print(f"proving: {s}", style="dim"),
        last=ray,
    )
    if json_out is not None:
        atomic_write_json(json_out, report.to_json())
    show(out, report)
    if json_out is not None:
        out.print(f"results written to {json_out}")
    if report.experiments and (writer is not None or outputs.any):
        doc = prove_evidence(report, started_utc=started, ended_utc=utc_now())
        if writer is not None:
            writer.write(doc)
            writer.finish(prove_summary(report))
            doc = writer.last or doc
        outputs.write([doc], out, label="prove")
    if not report.complete:
        return 130
    return 0 if report.ok else 1


def show(console: Console, report: ProveReport) -> None:
    """The results table, then the conclusion lines and any warnings."""
    env = report.environment
    gil = "GIL enabled" if env.get("gil_enabled", True) else "GIL off (free-threaded)"
    title = (
        f"truepar prove — Python {env.get('python_version', '?')}, {gil}, "
        f"{env.get('cores_available', '?')} core(s); {report.tasks} tasks × "
        f"{report.kernel_task_s:.2f} s kernel, {report.repeat} trials"
    )
    show_results(console, title, [r.to_json() for r in report.results])
    for line in report.conclusion:
        console.print(line, markup=False)
    for r in report.results:
        if not (r.as_expected and r.checksums_ok):
            console.print(Text.assemble((r.name, "bold"), f" {r.verdict}: " + "; ".join(r.reasons)))
    for warning in report.warnings:
        console.print(Text.assemble(("warning:", "yellow"), f" {warning}"))


def show_results(console: Console, title: str, results: Sequence[Mapping[str, Any]]) -> None:
    """Prove's results (:meth:`ProveResult.to_json` shape): a table where its names fit whole,
    otherwise one short record per result (names, verdict, then the numbers)."""
    table = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD)
    table.add_column("name", no_wrap=True)
    table.add_column("backend", no_wrap=True)
    for col in ("W", "speedup [95% CI]", "cores", "work R"):
        table.add_column(col, justify="right", no_wrap=True)
    for col in ("verdict", "expected", ""):
        table.add_column(col, no_wrap=True)
    for r in results:
        table.add_row(
            Text(str(r["name"])),
            Text(str(r["backend"])),
            str(r["workers"]),
            _speedup(r),
            fmt_ratio(r.get("cores_used")),
            fmt_ratio(r.get("work_ratio")),
            _verdict(r),
            Text(str(r.get("expected"))),
            _mark(r),
        )
    if fits(console, table):
        console.print(table)
        return
    console.print(Text(title, style="italic"))
    for r in results:
        name, backend = str(r["name"]), str(r["backend"])
        head = Text.assemble(_mark(r), " ", (name, "bold"))
        if backend not in name:
            head.append(f" ({backend})")
        head.append(f" ×{r['workers']}: ")
        head.append(_verdict(r))
        if r.get("verdict") != r.get("expected"):
            head.append(f", expected {r.get('expected')}")
        numbers = [
            f"speedup {_speedup(r)}",
            f"cores used {fmt_ratio(r.get('cores_used'))}",
            f"work ratio {fmt_ratio(r.get('work_ratio'))}",
        ]
        record(console, head, [joined(numbers, console.width - INDENT)])
    console.print()


def _good(r: Mapping[str, Any]) -> bool:
    return bool(r.get("as_expected")) and bool(r.get("checksums_ok"))


def _mark(r: Mapping[str, Any]) -> Text:
    return Text("✓", style="green") if _good(r) else Text("✗", style="bold red")


def _speedup(r: Mapping[str, Any]) -> str:
    lo, hi = (r.get("speedup_ci") or [None, None])[:2]
    return f"{fmt_num(r.get('speedup'))}× [{fmt_num(lo)}–{fmt_num(hi)}]"


def _verdict(r: Mapping[str, Any]) -> Text:
    verdict = str(r.get("verdict") or "—")
    text = Text(verdict, style=VERDICT_STYLE.get(verdict, ""))
    if not r.get("checksums_ok", True):
        text.append(" (bad checksum)", style="bold red")
    return text
