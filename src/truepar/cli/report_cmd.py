"""``truepar report EVIDENCE...``: evidence in the terminal, or as HTML, Markdown and a trace.

With no output option: for each bench (and each prove experiment) its verification tree and
configurations table, recomputed from the raw samples; a run's totals and ops, and a prove's
verdicts, as Rich tables. ``--html``, ``--md`` and ``--trace`` write files (several documents go
into one file); ``--trust`` says in the reports whether each signer is trusted.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table
from rich.text import Text

from truepar.cli.bench_cmd import show as show_bench
from truepar.cli.layout import fits, joined, record
from truepar.cli.prove_cmd import show_results as show_prove
from truepar.cli.report_outputs import HtmlOpt, MdOpt, ReportOutputs, TraceOpt
from truepar.cli.tree import verification_tree
from truepar.errors import UsageError
from truepar.evidence import load_evidence
from truepar.evidence.keys import Trust, load_trust
from truepar.evidence.recompute import bench_report_of
from truepar.measure.criteria import Criteria, validate
from truepar.report.markdown import footer
from truepar.report.timeline import benches
from truepar.units import fmt_num, fmt_s


def report_command(
    evidence: Annotated[
        list[Path],
        typer.Argument(help="Evidence files (from --evidence).", show_default=False),
    ],
    html_out: HtmlOpt = None,
    md: MdOpt = None,
    trace: TraceOpt = None,
    trust: Annotated[
        Path | None,
        typer.Option("--trust", help="Trust list: reports say whether each signer is in it."),
    ] = None,
) -> int:
    """Report EVIDENCE: in the terminal, or to --html / --md / --trace files."""
    outputs = ReportOutputs(html=html_out, md=md, trace=trace)
    outputs.check()
    trusted: Trust | None = load_trust(trust) if trust is not None else None
    docs = [load_evidence(path) for path in evidence]
    for path, doc in zip(evidence, docs, strict=True):
        if doc.get("kind") not in ("bench", "run", "prove"):
            raise UsageError(f"{path}: not evidence: unknown kind {doc.get('kind')!r}")
    console = Console(highlight=False)
    if outputs.any:
        label = str(evidence[0]) if len(evidence) == 1 else f"{len(evidence)} evidence files"
        outputs.write(docs, console, trust=trusted, sources=[str(p) for p in evidence], label=label)
        return 0
    for path, doc in zip(evidence, docs, strict=True):
        try:
            _terminal(console, doc)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise UsageError(
                f"{path}: malformed {doc.get('kind')} evidence: {type(exc).__name__}: {exc}"
            ) from exc
    return 0


def _tool_counts(plan: Mapping[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op in plan["ops"]:
        counts[str(op["tool"])] = counts.get(str(op["tool"]), 0) + 1
    return counts


def _run(console: Console, doc: Mapping[str, Any]) -> None:
    """A run's totals, then its ops: a table where the op ids fit whole, else one record each."""
    data = doc["data"]
    totals = data.get("totals") or {}
    plan = (doc.get("plan") or {}).get("name") or data.get("plan") or "?"
    console.print(Text(f"truepar run — {plan}", style="bold"))
    facts = [
        f"{data.get('backend')} ×{data.get('workers')}",
        f"status {data.get('status')}",
        f"wall {fmt_s(totals.get('wall_s'))}",
        f"CPU {fmt_s(totals.get('cpu_s'))}",
        f"avg concurrency {fmt_num(totals.get('avg_concurrency'))}",
        f"cores used {fmt_num(totals.get('cores_used'))}",
        f"{totals.get('ok')} ok of {totals.get('ops')} ops",
        *(f"{totals.get(k)} {k}" for k in ("failed", "skipped", "cancelled") if totals.get(k)),
    ]
    console.print(joined(facts, console.width))
    table = Table(header_style="bold", box=box.SIMPLE_HEAD)
    for col in ("op", "tool", "status", "duration", "worker"):
        table.add_column(
            col, no_wrap=True, justify="right" if col in ("duration", "worker") else "left"
        )
    rows = []
    for span in data.get("spans") or []:
        op = str(span.get("op_id"))
        if (span.get("attempt") or 1) > 1:
            op += f" (attempt {span['attempt']})"
        duration = fmt_s((int(span["end_ns"]) - int(span["start_ns"])) / 1e9)
        rows.append(
            (op, str(span.get("tool")), str(span.get("status")), duration, str(span.get("worker")))
        )
        table.add_row(*(Text(cell) for cell in rows[-1]))
    if fits(console, table):
        console.print(table)
    else:
        for op, tool, status, duration, worker in rows:
            record(
                console,
                Text(op, style="bold"),
                [f"{tool} · {status} · {duration} · worker {worker}"],
            )
    console.print(Markdown("\n".join(footer(doc))))


def _terminal(console: Console, doc: Mapping[str, Any]) -> None:
    kind = doc["kind"]
    if kind == "run":
        _run(console, doc)
        return
    if kind == "prove":
        # Prove's own results view, not the Markdown table: its names stay whole at 80 columns.
        data = doc["data"]
        show_prove(console, "truepar prove — is parallelism real here?", data["results"])
        for line in data.get("conclusion") or []:
            console.print(line, markup=False)
        console.print(Markdown("\n".join(footer(doc))))
    plans = [doc["plan"]] if kind == "bench" else [e["plan"] for e in doc["data"]["experiments"]]
    for plan, (title, data) in zip(plans, benches(doc), strict=True):
        report = bench_report_of(plan, data, doc["environment"])
        show_bench(console, report)
        tree = verification_tree(title, _tool_counts(plan), report, validate(report, Criteria()))
        console.print(tree)
    if kind == "bench":
        console.print(Markdown("\n".join(footer(doc))))
