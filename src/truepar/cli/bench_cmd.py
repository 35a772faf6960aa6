"""``truepar bench PLAN``: the sequential baseline against backends × worker counts, judged.

Results are written (atomically) after every run while the bench goes, so a crash or Ctrl-C
keeps what was measured; the file says ``"complete": false`` until the last run is in.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.console import Console

from truepar.backends import backend_names
from truepar.cli import backend_opts, evidence_opts
from truepar.cli.bench_progress import ProgressView
from truepar.cli.bench_table import show
from truepar.cli.report_outputs import HtmlOpt, MdOpt, ReportOutputs, TraceOpt
from truepar.cli.tree import verification_tree
from truepar.engine.environment import cores_available
from truepar.errors import UsageError
from truepar.evidence import bench_evidence, bench_summary
from truepar.evidence.metadata import utc_now
from truepar.fileio import atomic_write_json, check_writable
from truepar.measure import VERDICTS, BenchReport, bench
from truepar.measure.bench import configurations, worker_counts
from truepar.measure.criteria import Criteria, validate
from truepar.measure.early_stop import DEFAULT_STOP_RULE
from truepar.measure.verdict import Verdict
from truepar.plan.load import load_plan
from truepar.plan.models import Plan

# ``show`` is the bench table: ``report`` shows the benches of evidence with it too.
__all__ = ("bench_command", "show")


def _items(text: str, flag: str, example: str) -> list[str]:
    """The items of a comma list; an empty one (``1,,2``, a trailing comma) is a typo."""
    items = [p.strip() for p in text.split(",")]
    if not any(items):
        raise UsageError(f"{flag} is empty; give a comma list such as {example}")
    if not all(items):
        raise UsageError(f"{flag} {text!r} has an empty item; give a comma list such as {example}")
    return items


def _backends(text: str) -> list[str]:
    names = _items(text, "--backends", "threads,processes")
    for name in names:
        if name not in backend_names():
            raise UsageError(
                f"--backends: {name!r} is unknown (one of: {', '.join(backend_names())})"
            )
    return names


def _workers(text: str) -> list[int]:
    parts = _items(text, "--workers", "1,2,4,8")
    out = []
    for part in parts:
        try:
            n = int(part)
        except ValueError:
            raise UsageError(f"--workers: {part!r} is not a whole number") from None
        if n < 1:
            raise UsageError(f"--workers: {n} is not a worker count (at least 1)")
        out.append(n)
    return out


def bench_command(
    plan: Annotated[Path, typer.Argument(help="Plan file (TOML, or YAML).", show_default=False)],
    backends: Annotated[
        str, typer.Option("--backends", "-b", help="Comma list of backends to compare.")
    ] = "threads,processes,async",
    workers: Annotated[
        str | None,
        typer.Option(
            "--workers",
            "-w",
            help=(
                "Comma list of worker counts (the sequential run is the 1-worker point). "
                "Default: the plan's own workers; 2,4,8 for a scaling curve."
            ),
            show_default=False,
        ),
    ] = None,
    repeat: Annotated[
        int | None,
        typer.Option(
            "--repeat",
            "-r",
            help=(
                "Measured trials: exactly N. Default: 3 to 5 — a configuration stops after 3 "
                "once its speedup's 95% interval is within ±5% and wholly above or below 1.1 "
                "(docs/verdicts.md)."
            ),
            show_default=False,
        ),
    ] = None,
    warmup: Annotated[
        int,
        typer.Option(
            "--warmup",
            help=(
                "Discarded trials of every configuration first. With 0, one unmeasured run "
                "of the sequential baseline and of each backend at its most workers instead."
            ),
        ),
    ] = 0,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the results as JSON here (atomically).")
    ] = None,
    require_speedup: Annotated[
        float | None,
        typer.Option("--require-speedup", help="Exit 1 unless the best speedup is at least this."),
    ] = None,
    require_verdict: Annotated[
        str | None,
        typer.Option(
            "--require-verdict",
            help=f"Exit 1 unless the best configuration's verdict is this ({', '.join(VERDICTS)}).",
        ),
    ] = None,
    address: backend_opts.AddressOpt = None,
    evidence: evidence_opts.EvidenceOpt = None,
    no_evidence: evidence_opts.NoEvidenceOpt = False,
    ledger: evidence_opts.LedgerOpt = None,
    keys: evidence_opts.KeysOpt = None,
    html_out: HtmlOpt = None,
    md: MdOpt = None,
    trace: TraceOpt = None,
) -> int:
    """Measure PLAN sequentially and on each backend × worker count, and judge every gain."""
    backend_opts.use_address(address)
    names = _backends(backends)
    counts = _workers(workers) if workers is not None else None
    if repeat is not None and repeat < 1:
        raise UsageError(f"--repeat must be at least 1, not {repeat}")
    if warmup < 0:
        raise UsageError(f"--warmup must be 0 or more, not {warmup}")
    if require_verdict is not None and require_verdict not in VERDICTS:
        raise UsageError(
            f"--require-verdict {require_verdict!r} is unknown (one of: {', '.join(VERDICTS)})"
        )
    if require_speedup is not None and not (math.isfinite(require_speedup) and require_speedup > 0):
        raise UsageError(f"--require-speedup must be positive, not {require_speedup}")
    if json_out is not None:
        check_writable(json_out, "--json")
    outputs = ReportOutputs(html=html_out, md=md, trace=trace)
    outputs.check()
    loaded = load_plan(plan)
    if len(loaded.ops) < 2:
        raise UsageError(
            f"a bench needs at least 2 ops; {plan} has {len(loaded.ops)}: add ops to compare"
        )
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    writer = evidence_opts.EvidenceOutput.optional(
        evidence,
        off=no_evidence,
        kind="bench",
        name=loaded.name,
        keys=keys,
        ledger=ledger,
        console=out,
    )
    cores = cores_available()
    started = utc_now()
    own = counts is None
    counts = list(worker_counts(loaded, counts))
    n_configs = len(configurations(names, counts))
    rule = DEFAULT_STOP_RULE
    trials = f"{repeat}" if repeat is not None else f"{rule.min_trials}–{rule.max_trials}"
    err.print(
        f"benching {loaded.name}: {n_configs} configurations × {trials} trials"
        + (f" (+{warmup} warmup)" if warmup else "")
        + (
            f"; workers {counts[0]}, the plan's own (--workers 2,4,8 for a scaling curve)"
            if own
            else ""
        ),
        style="dim",
        markup=False,
    )

    def save(report: BenchReport) -> None:
        if json_out is not None:
            atomic_write_json(json_out, report.to_json())
        if writer is not None:
            writer.write(evidence_of(report))

    def evidence_of(report: BenchReport) -> dict[str, Any]:
        return bench_evidence(report, loaded, started_utc=started, ended_utc=utc_now(), cores=cores)

    with ProgressView(err) as progress:
        report = bench(
            loaded,
            backends=names,
            workers=counts,
            repeat=repeat,
            warmup=warmup,
            on_config=save,
            cores=cores,
            stop_rule=rule,
            on_progress=progress.update,
        )
    save(report)
    show(out, report)
    if json_out is not None:
        out.print(f"results written to {json_out}")
    if writer is not None:
        writer.finish(bench_summary(report))
    if outputs.any:
        doc = writer.last if writer is not None and writer.last else evidence_of(report)
        outputs.write([doc], out, label=str(plan))
    if not report.complete:
        out.print("[bold]interrupted[/]: the results above cover the runs that finished")
        return 130
    return _gate(out, loaded, report, require_speedup, require_verdict)


def _gate(
    out: Console,
    plan: Plan,
    report: BenchReport,
    require_speedup: float | None,
    require_verdict: str | None,
) -> int:
    """The verification tree; with ``--require-*``, exit 1 unless the criteria are met."""
    criteria = Criteria(require_speedup, cast("Verdict | None", require_verdict))
    validation = validate(report, criteria)
    out.print(verification_tree(plan.name, plan, report, validation))
    if require_speedup is None and require_verdict is None:
        return 0
    return 0 if validation.validated else 1
