"""Evidence of ``truepar prove``: every experiment's plan and bench, and the verdicts drawn.

``data`` is the prove JSON (``ProveReport.to_json()``) plus ``experiments``: per experiment its
``prefix`` ("kernel", "control: sleeps" …), its plan section, its full bench data (every sample
and span) and the digests each task result had to match. ``verify`` recomputes each bench from
its samples, then every prove result from those benches: speedup, interval, cores, work ratio,
verdict, the expected verdict (from the recorded GIL state, cores and task count), the checksum
counts, and ``ok``. The top-level ``plan`` is the kernel experiment's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from truepar.evidence.document import (
    _compare,
    _document,
    _recompute_bench_data,
    bench_report_of,
    plan_section,
)
from truepar.evidence.metadata import collect
from truepar.measure.prove import ProveReport, experiment_results
from truepar.records import finite


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
    return _document("prove", report.experiments[0].plan, data, started_utc, ended_utc)


def recompute_prove(doc: Mapping[str, Any]) -> list[str]:
    """One line per number of prove evidence that its raw samples do not give again."""
    data, env = doc["data"], doc["environment"]
    gil = bool(env.get("gil_enabled", True))
    cores = int(data["experiments"][0]["bench"].get("cores") or env["cores_available"])
    tasks = int(data["tasks"])
    out: list[str] = []
    derived: list[dict[str, Any]] = []
    for exp in data["experiments"]:
        prefix = str(exp["prefix"])
        bench = exp["bench"]
        out += [f"{prefix}: {line}" for line in _recompute_bench_data(exp["plan"], bench, env)]
        report = bench_report_of(exp["plan"], bench, env)
        want = {str(k): str(v) for k, v in exp["expected_digests"].items()}
        results = experiment_results(prefix, report, want, gil=gil, cores=cores, tasks=tasks)
        derived += [finite(r.to_json()) for r in results]
    stored = list(data["results"])
    if len(stored) != len(derived):
        out.append(f"results: {len(stored)} in the evidence, {len(derived)} from its experiments")
    for mine, theirs in zip(derived, stored, strict=False):
        out += _compare(theirs, mine, f"prove {mine['name']} ×{mine['workers']}")
    ok = bool(data["complete"]) and all(r["as_expected"] and r["checksums_ok"] for r in derived)
    out += _compare(data["ok"], ok, "ok")
    out += _compare(data["checksums_ok"], all(r["checksums_ok"] for r in derived), "checksums_ok")
    return out
