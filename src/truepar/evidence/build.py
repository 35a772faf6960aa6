"""Building evidence documents: one JSON object per ``run``, ``bench`` or ``prove`` that a third
party can check.

A document holds the plan (path, content hash, its ops with secrets redacted, and its dependency
graph), the environment it was measured in, and the raw data (every span, every trial's sample)
next to the statistics and verdicts derived from them (:mod:`truepar.evidence.recompute` derives
them again). Prove evidence holds every experiment's plan and bench, and the digests each task
result had to match.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from truepar._version import __version__
from truepar.evidence.canonical import canonical_bytes
from truepar.evidence.metadata import collect, redact_plan
from truepar.measure.prove_results import ProveReport
from truepar.measure.results import BenchReport
from truepar.plan.graph import build_graph
from truepar.plan.models import Plan
from truepar.records import RunTrace, finite, jsonable
from truepar.tools import OpBase, PythonOp

#: The version of the document format (``schema_version``).
SCHEMA_VERSION = 1


def _op_json(op: OpBase) -> dict[str, Any]:
    raw = op.model_dump(mode="python", exclude={"call"} if op.tool == "python" else None)
    out: dict[str, Any] = finite(jsonable(raw))
    if isinstance(op, PythonOp):
        out["call"] = op.call_name()
    return out


def plan_section(plan: Plan) -> dict[str, Any]:
    """The plan as evidence records it: path, content hash, redacted ops and the graph."""
    redacted = redact_plan({"ops": [_op_json(op) for op in plan.ops]})
    source = Path(plan.source)
    try:
        data = source.read_bytes() if plan.source != "<python>" and source.is_file() else None
    except OSError:
        data = None
    if data is None:
        data = canonical_bytes(
            {
                "name": plan.name,
                "defaults": plan.defaults.model_dump(mode="json"),
                "resources": {k: v.model_dump(mode="json") for k, v in plan.resources.items()},
                "ops": redacted["ops"],
            }
        )
    graph = build_graph(plan)
    return {
        "name": plan.name,
        # Absolute for a file, so that ``verify --reproduce`` finds it from any folder.
        "path": str(source.resolve())
        if plan.source != "<python>" and source.is_file()
        else plan.source,
        "sha256": hashlib.sha256(data).hexdigest(),
        "ops": redacted["ops"],
        "graph": {"ids": list(graph.ids), "preds": [list(p) for p in graph.preds]},
    }


def document(
    kind: str, plan: Plan, data: dict[str, Any], started_utc: str, ended_utc: str
) -> dict[str, Any]:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "truepar_version": __version__,
        "started_utc": started_utc,
        "ended_utc": ended_utc,
        "plan": plan_section(plan),
        "environment": collect(plan.base_dir),
        "data": data,
    }
    out: dict[str, Any] = finite(jsonable(doc))
    canonical_bytes(out)  # raises UsageError if anything is not JSON
    return out


def bench_evidence(
    report: BenchReport,
    plan: Plan,
    *,
    started_utc: str,
    ended_utc: str,
    cores: int | None = None,
) -> dict[str, Any]:
    """The evidence of a bench. ``cores`` is what was given to ``bench(cores=...)`` (the cores
    behind the physical lower bound); it is recorded as ``data.cores`` so that the bounds can be
    recomputed on another machine. Default: this machine's available cores."""
    data = report.to_json()
    data["cores"] = cores or collect()["cores_available"]
    return document("bench", plan, data, started_utc, ended_utc)


def run_evidence(
    trace: RunTrace, plan: Plan, *, started_utc: str, ended_utc: str
) -> dict[str, Any]:
    """The evidence of one run: every span and result, with the totals derived from them."""
    return document("run", plan, trace.to_json(), started_utc, ended_utc)


def prove_evidence(report: ProveReport, *, started_utc: str, ended_utc: str) -> dict[str, Any]:
    """The evidence of a prove run. Raises ``ValueError`` when nothing was measured."""
    if not report.experiments:
        raise ValueError("prove measured nothing: no evidence to write")
    cores = int(collect()["cores_available"])
    data = report.to_json()
    experiments = []
    for exp in report.experiments:
        bench = exp.bench.to_json()
        bench["cores"] = cores
        experiments.append(
            {
                "prefix": exp.prefix,
                "plan": plan_section(exp.plan),
                "bench": bench,
                "expected_digests": dict(exp.expected_digests),
            }
        )
    data["experiments"] = experiments
    return document("prove", report.experiments[0].plan, data, started_utc, ended_utc)
