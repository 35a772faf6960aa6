"""The conformance suite: the same contract on every backend that runs real ops.

Pull it into a test module with ``from truepar.testing.conformance import *`` and enable the
plugin (``-p truepar.testing``; see :mod:`truepar.testing`): each ``test_*`` function below then
runs once per backend selected with ``--truepar-backend``, through the ``truepar_backend``
fixture.

Only robust facts are asserted here (ordering, caps, statuses, field consistency); exact times
belong to the virtual clock's own tests. Where backends may rightly differ, what a test expects
comes from the backend's declared capabilities (``cpu_parallel``, ``event_loop``,
``measures_real_cpu``, ``max_workers`` of an instance), never from its name.
"""

from __future__ import annotations

import json
import math
import operator
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from truepar.backends import backend_class
from truepar.engine import map_calls, run
from truepar.plan import Resource
from truepar.records import RunStatus, Status, estimate_tokens
from truepar.testing._helpers import (
    by_id,
    make_plan,
    max_workers,
    overlaps,
    statuses,
    wait_gone,
    write_module,
)
from truepar.tools import BashOp, PythonOp, ReadOp, SleepOp

__all__ = (
    "test_abandons_no_thread_without_a_timeout",
    "test_after_orders_ops",
    "test_bash_timeout_kills_the_process",
    "test_blocking_python_past_its_timeout_is_a_timeout",
    "test_continue_skips_dependents_only",
    "test_cpu_is_measured",
    "test_ctrl_c_cancels_and_returns_the_trace",
    "test_fail_fast_cancels_the_rest",
    "test_fail_fast_kills_running_subprocess",
    "test_global_workers_cap",
    "test_independent_ops_overlap",
    "test_map_keeps_item_order",
    "test_read_after_write_is_ordered",
    "test_read_op_implies_its_read",
    "test_resource_cap",
    "test_results_follow_plan_order",
    "test_retry_then_ok",
    "test_same_write_never_overlaps",
    "test_sleep_timeout",
    "test_timed_out_span_says_where_it_ran",
    "test_timeout_is_retried",
    "test_trace_is_complete",
    "test_trace_pid_matches_backend",
)


# -- ordering ------------------------------------------------------------------------------------


def test_after_orders_ops(truepar_backend: str, tmp_path: Path) -> None:
    plan = make_plan(
        tmp_path,
        [
            SleepOp(id="a", seconds=0.15),
            SleepOp(id="b", seconds=0.01, after=["a"]),
            SleepOp(id="c", seconds=0.01, after=["b"]),
        ],
        backend=truepar_backend,
    )
    trace = run(plan)
    assert trace.ok, statuses(trace)
    s = by_id(trace)
    assert s["b"].start_ns >= s["a"].end_ns
    assert s["c"].start_ns >= s["b"].end_ns
    assert s["b"].ready_ns >= s["a"].end_ns


def test_same_write_never_overlaps(truepar_backend: str, tmp_path: Path) -> None:
    ops = [
        BashOp(
            id=f"w{i}",
            shell=True,
            command=f"sleep 0.15; echo {i} >> out.txt",
            writes=["out.txt"],
        )
        for i in range(3)
    ]
    trace = run(make_plan(tmp_path, ops, backend=truepar_backend, workers=3))
    assert trace.ok, statuses(trace)
    assert overlaps(trace) == 1
    # Conflicting writers run in file order.
    s = by_id(trace)
    assert s["w0"].end_ns <= s["w1"].start_ns <= s["w1"].end_ns <= s["w2"].start_ns
    assert (tmp_path / "out.txt").read_text().split() == ["0", "1", "2"]


def test_read_after_write_is_ordered(truepar_backend: str, tmp_path: Path) -> None:
    ops = [
        BashOp(
            id="make", shell=True, command="sleep 0.15; echo hello > data.txt", writes="data.txt"
        ),
        BashOp(id="use", argv=["cat", "data.txt"], reads="data.txt"),
    ]
    trace = run(make_plan(tmp_path, ops, backend=truepar_backend))
    assert trace.ok, statuses(trace)
    s = by_id(trace)
    assert s["use"].start_ns >= s["make"].end_ns
    assert trace.results["use"].value["stdout"] == "hello\n"
    assert any("data.txt" in w for w in trace.waits["use"])


def test_read_op_implies_its_read(truepar_backend: str, tmp_path: Path) -> None:
    ops = [
        BashOp(
            id="make", shell=True, command="sleep 0.15; echo payload > data.txt", writes="data.txt"
        ),
        ReadOp(id="read", path="data.txt"),
    ]
    trace = run(make_plan(tmp_path, ops, backend=truepar_backend))
    assert trace.ok, statuses(trace)
    assert by_id(trace)["read"].start_ns >= by_id(trace)["make"].end_ns
    assert "payload" in str(trace.results["read"].value)


def test_independent_ops_overlap(truepar_backend: str, tmp_path: Path) -> None:
    """As many run at once as the backend can run (one, on a strictly one-at-a-time one)."""
    ops = [SleepOp(id=f"s{i}", seconds=0.3, writes=f"f{i}") for i in range(3)]
    trace = run(make_plan(tmp_path, ops, backend=truepar_backend, workers=3))
    assert trace.ok
    assert overlaps(trace) == min(3, max_workers(truepar_backend, 3))


def test_results_follow_plan_order(truepar_backend: str, tmp_path: Path) -> None:
    """The results are in the plan's order, whatever order the ops finished in."""
    ops = [SleepOp(id=f"s{i}", seconds=0.2 - 0.08 * i) for i in range(3)]
    trace = run(make_plan(tmp_path, ops, backend=truepar_backend, workers=3))
    assert trace.ok, statuses(trace)
    assert list(trace.results) == ["s0", "s1", "s2"]
    assert [r.status for r in trace.results.values()] == [Status.OK] * 3


def test_map_keeps_item_order(truepar_backend: str) -> None:
    """``truepar.map`` on this backend: every call's value, in item order, with its span."""
    result = map_calls(operator.neg, range(40), backend=truepar_backend, workers=3, chunksize=5)
    assert result.values == [-i for i in range(40)]
    assert result.errors == ()
    assert result.trace.ok
    assert len(result.trace.spans) == 8
    assert result.trace.backend == truepar_backend
    assert all(0 < result.start_ns[i] <= result.end_ns[i] for i in range(40))


# -- caps ----------------------------------------------------------------------------------------


def test_resource_cap(truepar_backend: str, tmp_path: Path) -> None:
    ops = [SleepOp(id=f"db{i}", seconds=0.1, resource="db") for i in range(3)]
    ops += [SleepOp(id=f"free{i}", seconds=0.1) for i in range(2)]
    plan = make_plan(
        tmp_path,
        ops,
        backend=truepar_backend,
        workers=4,
        resources={"db": Resource(max_concurrent=1)},
    )
    trace = run(plan)
    assert trace.ok
    db_spans = [s for s in trace.spans if s.op_id.startswith("db")]
    assert len(db_spans) == 3
    assert overlaps(db_spans) == 1
    assert overlaps(trace) <= 4


def test_global_workers_cap(truepar_backend: str, tmp_path: Path) -> None:
    ops = [SleepOp(id=f"s{i}", seconds=0.08) for i in range(6)]
    trace = run(make_plan(tmp_path, ops, backend=truepar_backend, workers=2))
    assert trace.ok
    assert overlaps(trace) <= 2
    assert trace.workers <= 2
    assert len({s.worker for s in trace.spans}) <= 2


# -- timeouts ------------------------------------------------------------------------------------


def test_bash_timeout_kills_the_process(truepar_backend: str, tmp_path: Path) -> None:
    op = BashOp(id="slow", shell=True, command="echo $$ > pid.txt; exec sleep 5", timeout=0.3)
    t0 = time.monotonic()
    trace = run(make_plan(tmp_path, [op], backend=truepar_backend))
    elapsed = time.monotonic() - t0
    assert elapsed < 3.0
    pid = int((tmp_path / "pid.txt").read_text())
    assert wait_gone(pid), f"sleep {pid} outlived its timed-out op"
    span = trace.spans_of("slow")[0]
    assert span.duration_s < 3.0
    assert trace.status is RunStatus.FAILED
    result = trace.results["slow"]
    assert result.status is Status.TIMEOUT, result
    assert span.status is Status.TIMEOUT


def test_sleep_timeout(truepar_backend: str, tmp_path: Path) -> None:
    ops = [SleepOp(id="nap", seconds=3, timeout=0.2), SleepOp(id="ok", seconds=0.01)]
    t0 = time.monotonic()
    trace = run(make_plan(tmp_path, ops, backend=truepar_backend))
    assert time.monotonic() - t0 < 2.5
    assert trace.results["nap"].status is Status.TIMEOUT
    assert trace.results["ok"].status is Status.OK
    assert trace.totals.failed == 1


def test_blocking_python_past_its_timeout_is_a_timeout(
    truepar_backend: str, tmp_path: Path
) -> None:
    """Even where a sync function cannot be interrupted (inline, on the loop), it is reported."""
    mod = write_module(tmp_path, "import time\n\ndef block(s):\n    time.sleep(s)\n    return s\n")
    ops = [PythonOp(id="block", call=f"{mod}:block", args=(0.5,), timeout=0.2)]
    trace = run(make_plan(tmp_path, ops, backend=truepar_backend))
    result = trace.results["block"]
    assert result.status is Status.TIMEOUT, result
    assert trace.spans[0].status is Status.TIMEOUT
    assert trace.abandoned_threads == 0


def test_timed_out_span_says_where_it_ran(truepar_backend: str, tmp_path: Path) -> None:
    ops = [
        SleepOp(id="nap", seconds=2, timeout=0.1),
        BashOp(id="cmd", argv=["sleep", "2"], timeout=0.1),
    ]
    trace = run(make_plan(tmp_path, ops, backend=truepar_backend, workers=2))
    assert statuses(trace) == {"nap": "timeout", "cmd": "timeout"}
    for s in trace.spans:
        assert s.pid > 0
        assert s.worker >= 0
        assert s.host
        assert s.thread_id > 0, s


def test_timeout_is_retried(truepar_backend: str, tmp_path: Path) -> None:
    ops = [SleepOp(id="nap", seconds=3, timeout=0.15, retries=1)]
    t0 = time.monotonic()
    trace = run(make_plan(tmp_path, ops, backend=truepar_backend, retry_backoff_s=0.01))
    assert time.monotonic() - t0 < 2.5
    spans = trace.spans_of("nap")
    assert [s.status for s in spans] == [Status.TIMEOUT, Status.TIMEOUT]
    assert trace.results["nap"].attempts == 2
    assert "timed out" in (trace.results["nap"].error or "")


# -- retries and errors --------------------------------------------------------------------------

FLAKY = """
from pathlib import Path

def flaky(counter):
    p = Path(counter)
    n = int(p.read_text()) if p.exists() else 0
    p.write_text(str(n + 1))
    if n == 0:
        raise RuntimeError("first call fails")
    return "fine"

def boom():
    raise ValueError("boom")
"""


def test_retry_then_ok(truepar_backend: str, tmp_path: Path) -> None:
    mod = write_module(tmp_path, FLAKY)
    counter = tmp_path / "counter.txt"
    op = PythonOp(id="flaky", call=f"{mod}:flaky", args=(str(counter),), retries=1)
    trace = run(make_plan(tmp_path, [op], backend=truepar_backend, retry_backoff_s=0.01))
    assert trace.ok, trace.results
    spans = trace.spans_of("flaky")
    assert [s.attempt for s in spans] == [1, 2]
    assert [s.status for s in spans] == [Status.FAILED, Status.OK]
    assert "first call fails" in (spans[0].error or "")
    assert spans[1].start_ns >= spans[0].end_ns
    result = trace.results["flaky"]
    assert result.attempts == 2
    assert result.status is Status.OK
    assert result.value == "fine"
    assert counter.read_text() == "2"


def test_continue_skips_dependents_only(truepar_backend: str, tmp_path: Path) -> None:
    mod = write_module(tmp_path, FLAKY)
    ops = [
        PythonOp(id="bad", call=f"{mod}:boom"),
        SleepOp(id="child", seconds=0.01, after="bad"),
        SleepOp(id="grandchild", seconds=0.01, after="child"),
        SleepOp(id="other", seconds=0.01),
        BashOp(id="echo", argv=["echo", "x"]),
    ]
    trace = run(make_plan(tmp_path, ops, backend=truepar_backend, on_error="continue"))
    assert statuses(trace) == {
        "bad": "failed",
        "child": "skipped",
        "grandchild": "skipped",
        "other": "ok",
        "echo": "ok",
    }
    assert "boom" in (trace.results["bad"].error or "")
    assert trace.results["child"].attempts == 0
    assert trace.spans_of("child") == []
    assert trace.status is RunStatus.FAILED
    t = trace.totals
    assert (t.ops, t.ok, t.failed, t.skipped, t.cancelled) == (5, 2, 1, 2, 0)


def test_fail_fast_cancels_the_rest(truepar_backend: str, tmp_path: Path) -> None:
    ops = [
        BashOp(id="bad", argv=["false"]),
        SleepOp(id="long", seconds=3),
        SleepOp(id="later", seconds=0.01, after="long"),
    ]
    t0 = time.monotonic()
    trace = run(make_plan(tmp_path, ops, backend=truepar_backend, workers=2, on_error="fail-fast"))
    assert time.monotonic() - t0 < 2.5
    assert trace.status is RunStatus.FAILED
    assert trace.results["bad"].status is Status.FAILED
    assert trace.results["long"].status is Status.CANCELLED
    assert trace.results["later"].status is Status.CANCELLED
    assert trace.spans_of("later") == []
    t = trace.totals
    assert (t.ops, t.ok, t.failed, t.skipped, t.cancelled) == (3, 0, 1, 0, 2)
    assert len(trace.results) == 3


def test_fail_fast_kills_running_subprocess(truepar_backend: str, tmp_path: Path) -> None:
    if max_workers(truepar_backend, 2) < 2:
        pytest.skip("this backend runs one op at a time: nothing else is running at the failure")
    ops = [
        BashOp(id="long", shell=True, command="echo $$ > pid.txt; exec sleep 5"),
        BashOp(id="bad", shell=True, command="sleep 0.3; exit 1"),
    ]
    t0 = time.monotonic()
    trace = run(make_plan(tmp_path, ops, backend=truepar_backend, workers=2, on_error="fail-fast"))
    assert time.monotonic() - t0 < 3.5
    assert statuses(trace) == {"long": "cancelled", "bad": "failed"}
    pid = int((tmp_path / "pid.txt").read_text())
    assert wait_gone(pid)
    assert "fail-fast" in (trace.results["long"].error or "")


# -- the trace -----------------------------------------------------------------------------------


def test_trace_is_complete(truepar_backend: str, tmp_path: Path) -> None:
    mod = write_module(tmp_path, "def text(n):\n    return 'x' * n\n")
    (tmp_path / "input.txt").write_text("0123456789" * 3)
    ops = [
        SleepOp(id="sleep", seconds=0.05),
        BashOp(id="bash", argv=["echo", "hello world"]),
        PythonOp(id="py", call=f"{mod}:text", args=(13,)),
        ReadOp(id="read", path="input.txt"),
        BashOp(id="fails", argv=["sh", "-c", "echo oops >&2; exit 3"]),
    ]
    t0 = time.monotonic_ns()
    trace = run(make_plan(tmp_path, ops, backend=truepar_backend, name="complete"))
    t1 = time.monotonic_ns()
    assert trace.plan_name == "complete"
    assert trace.backend == truepar_backend
    assert set(trace.results) == {op.id for op in ops}
    assert {s.op_id for s in trace.spans} == {op.id for op in ops}
    assert len(trace.spans) == len(ops)
    assert t0 <= trace.start_ns <= trace.end_ns <= t1
    for s in trace.spans:
        assert trace.start_ns <= s.ready_ns <= s.start_ns <= s.end_ns <= trace.end_ns, s
        assert s.pid > 0
        assert s.thread_id > 0
        assert s.host
        assert s.worker >= 0
        assert s.backend == truepar_backend
        assert s.tokens_out == math.ceil(s.bytes_out / 4)
        assert s.tokens_out == estimate_tokens(s.bytes_out)
        if s.status is Status.OK:
            assert s.cpu_s is not None
            assert s.cpu_s >= 0
    spans = by_id(trace)
    assert spans["py"].bytes_out == 13
    assert spans["py"].tokens_out == 4
    assert spans["read"].bytes_out == 30
    assert spans["bash"].bytes_out == len("hello world\n")
    assert spans["fails"].status is Status.FAILED
    assert "exit code 3" in (spans["fails"].error or "")
    assert trace.results["fails"].value["stderr"] == "oops\n"  # kept despite failing
    assert trace.results["py"].value == "x" * 13

    totals = trace.totals
    assert totals.sum_op_s == pytest.approx(sum(s.duration_s for s in trace.spans), abs=1e-9)
    assert (totals.ops, totals.ok, totals.failed) == (5, 4, 1)
    assert (totals.skipped, totals.cancelled) == (0, 0)
    assert totals.wall_s == pytest.approx((trace.end_ns - trace.start_ns) / 1e9)
    assert totals.cpu_s >= 0
    assert trace.status is RunStatus.FAILED
    data = trace.to_json()
    assert data["format"] == "truepar.trace"
    assert len(data["spans"]) == 5


def test_trace_pid_matches_backend(truepar_backend: str, tmp_path: Path) -> None:
    """Spans name the process and thread that really ran the op, as the backend's kind says.

    ``cpu_parallel = "yes"`` (pure-Python CPU in parallel even under a GIL) means other
    processes; otherwise this one. ``"without_gil"`` means other threads of this process, one
    per op running at once; ``"no"`` means one thread — the loop's own, on an ``event_loop``
    backend (strictly inline backends are checked by the project's own tests).
    """
    ops = [SleepOp(id=f"s{i}", seconds=0.05) for i in range(3)]
    trace = run(make_plan(tmp_path, ops, backend=truepar_backend, workers=3))
    kind = backend_class(truepar_backend)
    pids = {s.pid for s in trace.spans}
    if kind.cpu_parallel == "yes":
        assert os.getpid() not in pids
    else:
        assert pids == {os.getpid()}
    tids = {s.thread_id for s in trace.spans}
    if kind.cpu_parallel == "no":
        assert len(tids) == 1
        if kind.event_loop:
            assert tids == {threading.get_native_id()}  # on the loop's thread
    elif kind.cpu_parallel == "without_gil":
        assert threading.get_native_id() not in tids
        if max_workers(truepar_backend, 3) >= 3:
            assert len(tids) == 3


def test_abandons_no_thread_without_a_timeout(truepar_backend: str, tmp_path: Path) -> None:
    trace = run(make_plan(tmp_path, [SleepOp(id="s", seconds=0.01)], backend=truepar_backend))
    assert trace.ok
    assert trace.abandoned_threads == 0
    assert not any(s.abandoned for s in trace.spans)


BURN = """
import time

def burn(seconds):
    t0 = time.process_time()
    n = 0
    while time.process_time() - t0 < seconds:
        n += 1
    return n
"""


def test_cpu_is_measured(truepar_backend: str, tmp_path: Path) -> None:
    """A CPU-bound op's span is charged its CPU, and the run's total includes it (worker
    processes too)."""
    if not backend_class(truepar_backend).measures_real_cpu:
        pytest.skip("this backend declares CPU instead of measuring it")
    mod = write_module(tmp_path, BURN)
    ops = [PythonOp(id="burn", call=f"{mod}:burn", args=(0.3,))]
    trace = run(make_plan(tmp_path, ops, backend=truepar_backend))
    assert trace.ok, trace.results
    span = trace.spans[0]
    assert span.cpu_s is not None
    assert span.cpu_s >= 0.2
    assert trace.totals.cpu_s >= 0.2
    assert trace.totals.cpu_s >= span.cpu_s * 0.9


_INTERRUPT = """
import os, signal, sys, threading, time, json
from pathlib import Path
import truepar

def interrupt_once_started(pid_file):
    deadline = time.monotonic() + 10
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    os.kill(os.getpid(), signal.SIGINT)

def main():
    base = Path(sys.argv[2])
    ops = [
        truepar.BashOp(id="sh", shell=True, command="echo $$ > pid.txt; exec sleep 5"),
        truepar.SleepOp(id="long", seconds=5),
        truepar.SleepOp(id="after", seconds=0.1, after="long"),
    ]
    plan = truepar.Plan(
        ops=ops, defaults=truepar.Defaults(backend=sys.argv[1], workers=2), base_dir=base
    )
    threading.Thread(target=interrupt_once_started, args=(base / "pid.txt",), daemon=True).start()
    trace = truepar.run(plan)
    print(json.dumps({"status": trace.status.value,
                      "results": {k: r.status.value for k, r in trace.results.items()}}))

if __name__ == "__main__":
    main()
"""


def test_ctrl_c_cancels_and_returns_the_trace(truepar_backend: str, tmp_path: Path) -> None:
    script = tmp_path / "interrupt.py"
    script.write_text(_INTERRUPT)
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, str(script), truepar_backend, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - t0 < 10
    data = json.loads(out.stdout)
    assert data["status"] == "interrupted"
    assert data["results"] == {"long": "cancelled", "sh": "cancelled", "after": "cancelled"}
    pid = int((tmp_path / "pid.txt").read_text())
    assert wait_gone(pid)
