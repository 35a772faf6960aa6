"""What only one backend does: crashes and pickling (processes), abandoned threads (threads),
a blocked event loop (async), strict one-at-a-time (sequential), per-op backend overrides."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import truepar
from helpers.plans import by_id, make_plan, overlaps, statuses, write_module
from truepar import PythonOp, SleepOp, Status
from truepar.backends.base import Outcome, replace_outcome

HELPERS = """
import asyncio
import itertools
import os
import threading
import time
from pathlib import Path

def die():
    os._exit(1)

def value(x):
    return {"x": x, "pid": os.getpid(), "items": [1, 2, 3]}

def burn(seconds):
    t0 = time.process_time()
    n = 0
    while time.process_time() - t0 < seconds:
        n += 1
    return n

def spin_forever(stop_file):
    while not Path(stop_file).exists():
        time.sleep(0.01)
    return "stopped"

def blocking_sleep(seconds):
    time.sleep(seconds)
    return seconds

async def async_sleep(seconds):
    await asyncio.sleep(seconds)
    return seconds

def pid():
    return os.getpid()

def unpicklable_result():
    return lambda: 1
"""


@pytest.fixture
def helpers(tmp_path: Path) -> str:
    return write_module(tmp_path, HELPERS)


# -- processes -----------------------------------------------------------------------------------


def test_processes_crash_is_isolated_and_pool_recovers(tmp_path: Path, helpers: str) -> None:
    ops = [
        PythonOp(id="crash", call=f"{helpers}:die"),
        *(PythonOp(id=f"v{i}", call=f"{helpers}:value", args=(i,)) for i in range(4)),
    ]
    trace = truepar.run(make_plan(tmp_path, ops, backend="processes", workers=1))
    assert statuses(trace) == {"crash": "crashed", **{f"v{i}": "ok" for i in range(4)}}
    crash = trace.spans_of("crash")[0]
    assert crash.status is Status.CRASHED
    assert crash.pid != os.getpid()
    assert "exit code 1" in (crash.error or "")
    assert crash.start_ns <= crash.end_ns
    later_pids = {trace.results[f"v{i}"].value["pid"] for i in range(4)}
    assert crash.pid not in later_pids  # a fresh worker took the dead one's place
    assert trace.status is truepar.RunStatus.FAILED
    assert (trace.totals.ok, trace.totals.failed) == (4, 1)


def test_processes_crash_is_retried(tmp_path: Path, helpers: str) -> None:
    op = PythonOp(id="crash", call=f"{helpers}:die", retries=1)
    trace = truepar.run(make_plan(tmp_path, [op], backend="processes", retry_backoff_s=0.01))
    spans = trace.spans_of("crash")
    assert [s.status for s in spans] == [Status.CRASHED, Status.CRASHED]
    assert trace.results["crash"].attempts == 2
    assert spans[0].pid != spans[1].pid


def test_processes_unpicklable_argument_fails_clearly(tmp_path: Path) -> None:
    ops = [
        PythonOp(id="lam", call=len, args=(lambda: 1,)),
        SleepOp(id="fine", seconds=0.01),
    ]
    t0 = time.monotonic()
    trace = truepar.run(make_plan(tmp_path, ops, backend="processes", workers=2))
    assert time.monotonic() - t0 < 10
    result = trace.results["lam"]
    assert result.status is Status.FAILED
    assert "pickle" in (result.error or "").lower()
    assert "lam" in (result.error or "")
    assert trace.results["fine"].status is Status.OK


def test_processes_unpicklable_result_fails_clearly(tmp_path: Path, helpers: str) -> None:
    ops = [PythonOp(id="res", call=f"{helpers}:unpicklable_result")]
    trace = truepar.run(make_plan(tmp_path, ops, backend="processes"))
    result = trace.results["res"]
    assert result.status is Status.FAILED
    assert "pickle" in (result.error or "").lower()


def test_processes_value_comes_back(tmp_path: Path, helpers: str) -> None:
    ops = [PythonOp(id="v", call=f"{helpers}:value", args=("hi",))]
    trace = truepar.run(make_plan(tmp_path, ops, backend="processes"))
    value = trace.results["v"].value
    assert value["x"] == "hi"
    assert value["items"] == [1, 2, 3]
    assert value["pid"] == trace.spans[0].pid != os.getpid()


def test_processes_measures_worker_cpu(tmp_path: Path, helpers: str) -> None:
    ops = [PythonOp(id="burn", call=f"{helpers}:burn", args=(0.3,))]
    trace = truepar.run(make_plan(tmp_path, ops, backend="processes"))
    assert trace.ok
    span = trace.spans[0]
    assert span.cpu_s is not None
    assert span.cpu_s >= 0.2
    assert trace.totals.cpu_s >= 0.2
    assert trace.totals.cpu_s >= span.cpu_s * 0.9


def test_processes_python_timeout_kills_worker(tmp_path: Path, helpers: str) -> None:
    stop = tmp_path / "never"
    ops = [
        PythonOp(id="spin", call=f"{helpers}:spin_forever", args=(str(stop),), timeout=0.3),
        PythonOp(id="after", call=f"{helpers}:pid", after="spin"),
        PythonOp(id="indep", call=f"{helpers}:pid"),
    ]
    t0 = time.monotonic()
    trace = truepar.run(make_plan(tmp_path, ops, backend="processes", workers=1))
    assert time.monotonic() - t0 < 5
    assert statuses(trace) == {"spin": "timeout", "after": "skipped", "indep": "ok"}
    assert trace.abandoned_threads == 0


# -- threads -------------------------------------------------------------------------------------


@pytest.fixture
def stop_file(tmp_path: Path) -> Iterator[Path]:
    """A file whose creation ends ``spin_forever``: abandoned threads end after the test."""
    path = tmp_path / "stop"
    yield path
    path.write_text("stop")


def test_threads_runaway_op_is_abandoned(tmp_path: Path, helpers: str, stop_file: Path) -> None:
    ops = [
        PythonOp(id="spin", call=f"{helpers}:spin_forever", args=(str(stop_file),), timeout=0.3),
        SleepOp(id="other", seconds=0.05),
    ]
    t0 = time.monotonic()
    trace = truepar.run(make_plan(tmp_path, ops, backend="threads", workers=2))
    assert time.monotonic() - t0 < 5
    span = trace.spans_of("spin")[0]
    assert span.status is Status.TIMEOUT
    assert span.abandoned is True
    assert "abandoned" in (span.error or "")
    assert trace.abandoned_threads == 1
    assert trace.results["other"].status is Status.OK
    assert trace.to_json()["abandoned_threads"] == 1


def test_threads_pool_keeps_working_after_abandon(
    tmp_path: Path, helpers: str, stop_file: Path
) -> None:
    ops = [
        PythonOp(id="spin", call=f"{helpers}:spin_forever", args=(str(stop_file),), timeout=0.2),
        *(SleepOp(id=f"t{i}", seconds=0.05) for i in range(3)),
    ]
    trace = truepar.run(make_plan(tmp_path, ops, backend="threads", workers=1))
    assert statuses(trace) == {"spin": "timeout", "t0": "ok", "t1": "ok", "t2": "ok"}
    assert trace.abandoned_threads == 1


def test_threads_run_in_other_threads(tmp_path: Path) -> None:
    ops = [SleepOp(id=f"s{i}", seconds=0.2) for i in range(3)]
    trace = truepar.run(make_plan(tmp_path, ops, backend="threads", workers=3))
    assert {s.pid for s in trace.spans} == {os.getpid()}
    assert len({s.thread_id for s in trace.spans}) == 3
    assert overlaps(trace) == 3


# -- async ---------------------------------------------------------------------------------------


def test_async_sync_function_blocks_the_loop(tmp_path: Path, helpers: str) -> None:
    ops = [PythonOp(id=f"b{i}", call=f"{helpers}:blocking_sleep", args=(0.2,)) for i in range(3)]
    trace = truepar.run(make_plan(tmp_path, ops, backend="async", workers=3))
    assert trace.ok
    assert trace.totals.wall_s >= 0.6
    assert overlaps(trace) == 1
    assert {s.thread_id for s in trace.spans} == {trace.spans[0].thread_id}


def test_async_coroutine_function_overlaps(tmp_path: Path, helpers: str) -> None:
    ops = [PythonOp(id=f"a{i}", call=f"{helpers}:async_sleep", args=(0.2,)) for i in range(3)]
    trace = truepar.run(make_plan(tmp_path, ops, backend="async", workers=3))
    assert trace.ok
    assert overlaps(trace) == 3
    assert trace.totals.wall_s < 0.55
    assert [trace.results[f"a{i}"].value for i in range(3)] == [0.2] * 3


def test_coroutine_function_on_threads_gets_its_own_loop(tmp_path: Path, helpers: str) -> None:
    ops = [PythonOp(id="a", call=f"{helpers}:async_sleep", args=(0.01,))]
    trace = truepar.run(make_plan(tmp_path, ops, backend="threads"))
    assert trace.results["a"].value == 0.01


def test_arun_inside_a_running_loop(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, [SleepOp(id="s", seconds=0.01)], backend="async")
    trace = asyncio.run(truepar.arun(plan))
    assert trace.ok
    with pytest.raises(truepar.UsageError, match="fake"):
        asyncio.run(truepar.arun(plan, backend="fake"))


# -- sequential ----------------------------------------------------------------------------------


def test_sequential_never_overlaps(tmp_path: Path, helpers: str) -> None:
    ops = [SleepOp(id=f"s{i}", seconds=0.03) for i in range(4)]
    ops += [PythonOp(id=f"p{i}", call=f"{helpers}:pid") for i in range(4)]
    trace = truepar.run(make_plan(tmp_path, ops, backend="sequential", workers=8))
    assert trace.ok
    assert overlaps(trace) == 1
    assert trace.workers == 1
    spans = sorted(trace.spans, key=lambda s: s.start_ns)
    for a, b in itertools.pairwise(spans):
        assert a.end_ns <= b.start_ns
    assert [s.op_id for s in spans] == [op.id for op in ops]  # file order


# -- per-op backend ------------------------------------------------------------------------------


def test_per_op_backend_override(tmp_path: Path, helpers: str) -> None:
    ops = [
        PythonOp(id="here", call=f"{helpers}:pid"),
        PythonOp(id="there", call=f"{helpers}:pid", backend="processes"),
    ]
    trace = truepar.run(make_plan(tmp_path, ops, backend="threads"))
    assert trace.ok, trace.results
    spans = by_id(trace)
    assert trace.results["here"].value == os.getpid() == spans["here"].pid
    assert trace.results["there"].value != os.getpid()
    assert spans["there"].pid == trace.results["there"].value
    assert spans["there"].backend == "processes"
    assert spans["here"].backend == "threads"


def test_fake_cannot_be_mixed_with_real(tmp_path: Path) -> None:
    with pytest.raises(truepar.PlanError, match="fake"):
        make_plan(tmp_path, [SleepOp(id="s", seconds=1, backend="threads")], backend="fake")
    plan = make_plan(tmp_path, [SleepOp(id="s", seconds=1, backend="threads")])
    with pytest.raises(truepar.BadInput, match="fake"):
        truepar.run(plan, backend="fake")


def test_unknown_backend_at_run_time(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, [SleepOp(id="s", seconds=0.01)])
    with pytest.raises(truepar.BackendUnavailable, match="unknown backend"):
        truepar.run(plan, backend="nope")
    with pytest.raises(truepar.UsageError):
        truepar.run(plan, workers=0)


# -- reuse and threads of the caller -------------------------------------------------------------


@pytest.mark.parametrize("name", ["threads", "processes"])
def test_backend_instance_is_reused_across_runs(tmp_path: Path, helpers: str, name: str) -> None:
    warm = truepar.create_backend(name, 2)
    try:
        plan = make_plan(tmp_path, [PythonOp(id=f"p{i}", call=f"{helpers}:pid") for i in range(4)])
        pids = set()
        for _ in range(3):
            trace = truepar.run(plan, backend_instance=warm)
            assert trace.ok, trace.results
            assert trace.backend == name
            pids |= {s.pid for s in trace.spans}
        if name == "processes":
            assert len(pids) <= 2  # the same warm workers served every run
            assert os.getpid() not in pids
    finally:
        asyncio.run(warm.aclose())


def test_run_from_a_worker_thread(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, [SleepOp(id=f"s{i}", seconds=0.05) for i in range(3)])
    out: list[truepar.RunTrace] = []
    thread = threading.Thread(target=lambda: out.append(truepar.run(plan)))
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    assert out[0].ok


def test_replace_outcome_is_dataclasses_replace() -> None:
    """The quick copy Ray uses once per op gives what ``dataclasses.replace`` gives."""
    outcome = Outcome(Status.OK, 10, 20, 1, 2, 3, 0.5, summary="done", value={"k": 1})
    for changes in ({"host": "h", "node": "n"}, {"start_ns": 11, "end_ns": 21}, {}):
        quick = replace_outcome(outcome, **changes)
        assert quick == dataclasses.replace(outcome, **changes) and type(quick) is Outcome
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.host = "elsewhere"  # type: ignore[misc]
    with pytest.raises(KeyError):
        replace_outcome(outcome, colour="blue")
