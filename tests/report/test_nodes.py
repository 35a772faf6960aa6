"""A run over several machines (Ray): the timelines group rows by node, the Chrome trace has one
process per node (issue 12, item 5)."""

from __future__ import annotations

from typing import Any

from truepar.report.chrome_trace import chrome_trace
from truepar.report.svg import gantt
from truepar.report.timeline import run_timeline


def _span(op: str, node: str | None, worker: int, start: int, end: int) -> dict[str, Any]:
    return {
        "op_id": op, "attempt": 1, "tool": "sleep", "status": "ok", "worker": worker,
        "start_ns": start, "end_ns": end, "ready_ns": start, "cpu_s": 0.0, "node": node,
    }  # fmt: skip


RUN = {
    "backend": "ray",
    "workers": 4,
    "start_ns": 0,
    "end_ns": 10**9,
    "spans": [
        _span("a", "aaaaaaaa1111", 0, 0, 5 * 10**8),
        _span("b", "bbbbbbbb2222", 0, 0, 6 * 10**8),
        _span("c", "aaaaaaaa1111", 1, 10**8, 9 * 10**8),
    ],
}


def test_rows_are_node_and_worker() -> None:
    timeline = run_timeline(RUN)
    assert timeline.rows == [("aaaaaaaa1111", 0), ("aaaaaaaa1111", 1), ("bbbbbbbb2222", 0)]
    svg = gantt(timeline, 1.0, "t")
    assert "node aaaaaaaa · worker 1" in svg and "node bbbbbbbb · worker 0" in svg


def test_one_chrome_process_per_node() -> None:
    events = chrome_trace(RUN)["traceEvents"]
    names = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert sorted(names.values()) == ["ray ×4 · node aaaaaaaa", "ray ×4 · node bbbbbbbb"]
    by_op = {e["name"]: e["pid"] for e in events if e["ph"] == "X"}
    assert by_op["a"] == by_op["c"] != by_op["b"]


def test_a_run_on_one_machine_is_as_before() -> None:
    one = {**RUN, "spans": [{**s, "node": None} for s in RUN["spans"]]}
    timeline = run_timeline(one)
    assert timeline.rows == [(None, 0), (None, 1)]
    assert "worker 1" in gantt(timeline, 1.0, "t") and "node" not in gantt(timeline, 1.0, "t")
    names = [
        e["args"]["name"] for e in chrome_trace(one)["traceEvents"] if e["name"] == "process_name"
    ]
    assert names == ["ray ×4"]
