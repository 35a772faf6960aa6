"""The ledger's one-line account of each kind of evidence: the summary a record keeps, and how
``truepar history`` words it. One shape per kind, made here for every front end."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from truepar.measure.prove_results import ProveReport
from truepar.measure.results import BenchReport
from truepar.records import RunTrace


def run_summary(trace: RunTrace) -> dict[str, Any]:
    return {
        "backend": trace.backend,
        "workers": trace.workers,
        "wall_s": round(trace.totals.wall_s, 6),
        "ok": bool(trace.ok),
        "status": trace.status.value,
    }


def bench_summary(report: BenchReport) -> dict[str, Any]:
    best = report.best()
    return {
        "best": best.label if best else None,
        "speedup": round(best.speedup, 4) if best else None,
        "verdict": best.verdict if best else None,
        "complete": bool(report.complete),
    }


def prove_summary(report: ProveReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "as_expected": sum(r.as_expected and r.checksums_ok for r in report.results),
        "results": len(report.results),
        "verdicts": {r.name: r.verdict for r in report.results},
    }


def summary_text(kind: str, summary: Mapping[str, Any]) -> str:
    """A record's summary in a few words (``truepar history``)."""
    if kind == "bench":
        speedup = summary.get("speedup")
        if summary.get("best") is None:
            done = "interrupted" if summary.get("complete") is False else "no configuration"
            return f"{done} before any result"
        text = f"best {summary.get('best')}"
        if isinstance(speedup, int | float):
            text += f" {speedup:.2f}×"
        text += f" {summary.get('verdict')}"
        if summary.get("complete") is False:
            text += " (incomplete)"
        return text
    if kind == "run":
        wall = summary.get("wall_s")
        wall_text = f"{wall:.3f}s" if isinstance(wall, int | float) else "?"
        state = "ok" if summary.get("ok") else "FAILED"
        if summary.get("status") == "interrupted":
            state = "interrupted"
        return f"wall {wall_text} {state}"
    if kind == "swarm":
        return (
            f"{summary.get('ok')}/{summary.get('agents')} agents ok, {summary.get('merged')} "
            f"merged, {summary.get('conflicts')} conflict(s)"
        )
    if kind == "prove":
        state = "as expected" if summary.get("ok") else "NOT as expected"
        return f"{summary.get('as_expected')}/{summary.get('results')} verdicts {state}"
    return json.dumps(dict(summary), sort_keys=True)
