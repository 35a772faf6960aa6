"""Evidence as Chrome Trace Event JSON, which loads in Perfetto and chrome://tracing.

One process track per backend run (a small stable integer ``pid``, named by a ``process_name``
metadata event: "threads ×4", or "mixed tools: threads ×4" when several documents share the
file) — per node of it for a run over several machines ("ray ×8 · node 1a2b3c4d") — one thread
track per worker (``tid`` = worker id, named "worker N"), and one complete
event (``"ph": "X"``) per span: its op id as ``name``, its tool as ``cat``, ``ts`` and ``dur`` in
microseconds from the start of its run. A run evidence has one run; a bench has one per
configuration (its median-wall trial, as in the HTML report); prove, one per configuration of
each experiment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from truepar.report.timeline import Timeline, run_timeline, timelines

#: tid of spans with no worker id (an op that never reached a worker).
NO_WORKER_TID = 10_000


def _meta(name: str, pid: int, tid: int, args: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "ph": "M", "pid": pid, "tid": tid, "args": args}


def trace_of(runs: Iterable[Timeline], *, with_groups: bool = False) -> dict[str, Any]:
    """The Chrome trace of ``runs``: one process track each, in order."""
    meta: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    pid = 0
    for run in runs:
        label = f"{run.group}: {run.label}" if with_groups and run.group else run.label
        pids: dict[str | None, int] = {}
        for node in run.nodes or [None]:
            pid += 1
            pids[node] = pid
            name = label if node is None else f"{label} · node {node[:8]}"
            meta.append(_meta("process_name", pid, 0, {"name": name}))
            meta.append(_meta("process_sort_index", pid, 0, {"sort_index": pid}))
        for node, worker in run.rows:
            tid = NO_WORKER_TID if worker is None else worker
            name = "no worker" if worker is None else f"worker {worker}"
            meta.append(_meta("thread_name", pids[node], tid, {"name": name}))
            meta.append(_meta("thread_sort_index", pids[node], tid, {"sort_index": tid}))
        for bar in run.bars:
            events.append(
                {
                    "name": bar.op_id,
                    "cat": bar.tool,
                    "ph": "X",
                    "ts": max(0.0, bar.start_s) * 1e6,
                    "dur": max(0.0, bar.duration_s) * 1e6,
                    "pid": pids[bar.node],
                    "tid": NO_WORKER_TID if bar.worker is None else bar.worker,
                    "args": {
                        "status": bar.status,
                        "attempt": bar.attempt,
                        "cpu_s": bar.cpu_s,
                        "bytes_out": bar.bytes_out,
                        "error": bar.error,
                    },
                }
            )
    events.sort(key=lambda e: (e["pid"], e["tid"], e["ts"]))
    return {"traceEvents": meta + events, "displayTimeUnit": "ms"}


def chrome_trace(run_data: Mapping[str, Any]) -> dict[str, Any]:
    """The Chrome trace of one run: run evidence's ``data``, or ``RunTrace.to_json()``.
    Raises ``KeyError``/``TypeError`` for data without spans."""
    return trace_of([run_timeline(run_data)])


def evidence_trace(docs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The Chrome trace of every run in evidence documents (run, bench or prove)."""
    runs = [t for doc in docs for t in timelines(doc)]
    return trace_of(runs, with_groups=len(docs) > 1 or len({t.group for t in runs}) > 1)
