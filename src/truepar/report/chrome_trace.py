"""A run trace as Chrome Trace Event JSON, which loads in Perfetto and chrome://tracing.

One process track per backend run (a small stable integer ``pid``, named by a ``process_name``
metadata event), one thread track per worker (``tid`` = worker id, named "worker N"), and one
complete event (``"ph": "X"``) per span: its op id as ``name``, its tool as ``cat``, ``ts`` and
``dur`` in microseconds from the start of the run.

Only run evidence has spans (``truepar run --evidence``); bench evidence keeps per-trial samples,
not spans, so it has no timeline to export.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: tid of spans with no worker id (an op that never reached a worker).
NO_WORKER_TID = 10_000


def _tid(worker: Any) -> int:
    return worker if isinstance(worker, int) and not isinstance(worker, bool) else NO_WORKER_TID


def chrome_trace(run_data: Mapping[str, Any]) -> dict[str, Any]:
    """The Chrome trace of ``run_data``: a run trace (the ``data`` of run evidence, or
    ``RunTrace.to_json()``). Raises ``KeyError``/``TypeError`` for data without spans."""
    spans = run_data["spans"]
    origin = int(run_data["start_ns"])
    run_backend = str(run_data.get("backend") or "run")
    pids: dict[str, int] = {}
    threads: dict[tuple[int, int], str] = {}
    events: list[dict[str, Any]] = []
    for span in spans:
        backend = str(span.get("backend") or run_backend)
        pid = pids.setdefault(backend, len(pids) + 1)
        worker = span.get("worker")
        tid = _tid(worker)
        threads.setdefault((pid, tid), f"worker {worker}" if tid != NO_WORKER_TID else "no worker")
        start, end = int(span["start_ns"]), int(span["end_ns"])
        events.append(
            {
                "name": str(span["op_id"]),
                "cat": str(span.get("tool") or "op"),
                "ph": "X",
                "ts": max(0, start - origin) / 1000,
                "dur": max(0, end - start) / 1000,
                "pid": pid,
                "tid": tid,
                "args": {
                    "status": span.get("status"),
                    "attempt": span.get("attempt"),
                    "cpu_s": span.get("cpu_s"),
                    "bytes_out": span.get("bytes_out"),
                    "error": span.get("error"),
                },
            }
        )
    if not pids:
        pids[run_backend] = 1
    meta: list[dict[str, Any]] = []
    workers = run_data.get("workers")
    for backend, pid in pids.items():
        label = f"{backend} ×{workers}" if isinstance(workers, int) else backend
        meta.append(
            {"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": label}}
        )
        meta.append(
            {
                "name": "process_sort_index",
                "ph": "M",
                "pid": pid,
                "tid": 0,
                "args": {"sort_index": pid},
            }
        )
    for (pid, tid), name in sorted(threads.items()):
        meta.append(
            {"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": name}}
        )
        meta.append(
            {
                "name": "thread_sort_index",
                "ph": "M",
                "pid": pid,
                "tid": tid,
                "args": {"sort_index": tid},
            }
        )
    events.sort(key=lambda e: (e["pid"], e["tid"], e["ts"]))
    return {"traceEvents": meta + events, "displayTimeUnit": "ms"}
