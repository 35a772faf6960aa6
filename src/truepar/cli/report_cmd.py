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
from rich.console import Console
from rich.markdown import Markdown

from truepar.cli.bench_cmd import show as show_bench
from truepar.cli.report_outputs import HtmlOpt, MdOpt, ReportOutputs, TraceOpt
from truepar.cli.tree import verification_tree
from truepar.errors import UsageError
from truepar.evidence import load_evidence
from truepar.evidence.keys import Trust, load_trust
from truepar.evidence.recompute import bench_report_of
from truepar.measure.criteria import Criteria, validate
from truepar.report import markdown
from truepar.report.markdown import footer
from truepar.report.timeline import benches


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


def _terminal(console: Console, doc: Mapping[str, Any]) -> None:
    kind = doc["kind"]
    if kind != "bench":
        console.print(Markdown(markdown(doc)))
    if kind == "run":
        return
    plans = [doc["plan"]] if kind == "bench" else [e["plan"] for e in doc["data"]["experiments"]]
    for plan, (title, data) in zip(plans, benches(doc), strict=True):
        report = bench_report_of(plan, data, doc["environment"])
        show_bench(console, report)
        tree = verification_tree(title, _tool_counts(plan), report, validate(report, Criteria()))
        console.print(tree)
    if kind == "bench":
        console.print(Markdown("\n".join(footer(doc))))
