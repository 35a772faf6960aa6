"""The scheduler on the fake backend: a virtual clock, so every time is exact and deterministic.

Times are compared with a tolerance of a nanosecond per step (``EPS``: float seconds → integer
nanoseconds), far below any duration used here, so the assertions pin the schedule exactly;
``test_virtual_times_are_bit_exact`` checks the raw nanoseconds.
"""

from __future__ import annotations

import gc
import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import truepar
from helpers.plans import by_id, make_plan, overlaps, statuses
from truepar import FakeSpec, Resource, SleepOp, Status

FIXTURE_OK = [HealthCheck.function_scoped_fixture]

#: Tolerance for virtual times, in seconds: one nanosecond of float-to-ns rounding.
EPS = 1e-9


def fake(op_id: str, duration: float, **kw: object) -> SleepOp:
    """A fake op of ``duration`` virtual seconds (fake fields in ``fake_*`` keywords)."""
    spec = {k.removeprefix("fake_"): v for k, v in kw.items() if k.startswith("fake_")}
    rest = {k: v for k, v in kw.items() if not k.startswith("fake_")}
    return SleepOp(id=op_id, seconds=duration, fake=FakeSpec(duration_s=duration, **spec), **rest)


def run_fake(
    tmp_path: Path, ops: list[SleepOp], workers: int = 4, **kw: object
) -> truepar.RunTrace:
    return truepar.run(make_plan(tmp_path, ops, backend="fake", workers=workers, **kw))


def rel(trace: truepar.RunTrace, ns: int) -> float:
    """A monotonic timestamp as seconds since the run started."""
    return (ns - trace.start_ns) / 1e9


def times(trace: truepar.RunTrace, op_id: str, attempt: int = 1) -> tuple[float, float, float]:
    """(ready, start, end) of one attempt, in seconds since the run started."""
    (s,) = [s for s in trace.spans_of(op_id) if s.attempt == attempt]
    return rel(trace, s.ready_ns), rel(trace, s.start_ns), rel(trace, s.end_ns)


def approx(x: float) -> object:
    return pytest.approx(x, abs=EPS)


# -- exact times ---------------------------------------------------------------------------------


def test_twenty_sleeps_on_ten_workers(tmp_path: Path) -> None:
    ops = [SleepOp(id=f"s{i}", seconds=0.2) for i in range(20)]  # sleep defaults to its seconds
    trace = run_fake(tmp_path, ops, workers=10)
    assert trace.ok
    assert trace.totals.wall_s == approx(0.4)
    assert overlaps(trace) == 10
    assert trace.totals.sum_op_s == approx(4.0)
    assert trace.totals.avg_concurrency == pytest.approx(10.0, rel=1e-6)
    starts = sorted({round(rel(trace, s.start_ns), 6) for s in trace.spans})
    assert starts == [0.0, 0.2]
    assert sorted(s.op_id for s in trace.spans if rel(trace, s.start_ns) < 0.1) == sorted(
        f"s{i}" for i in range(10)
    )  # plan order first
    assert {s.worker for s in trace.spans} == set(range(10))
    late = [s for s in trace.spans if rel(trace, s.start_ns) > 0.1]
    assert all(s.waited_for is not None and s.waited_for.startswith("workers") for s in late)
    assert all(rel(trace, s.ready_ns) == 0.0 for s in trace.spans)


def test_virtual_times_are_bit_exact(tmp_path: Path) -> None:
    ops = [SleepOp(id=f"s{i}", seconds=0.2) for i in range(20)]
    trace = run_fake(tmp_path, ops, workers=10)
    assert {s.start_ns - trace.start_ns for s in trace.spans} == {0, 200_000_000}
    assert trace.totals.wall_s == 0.4


def test_runs_are_deterministic(tmp_path: Path) -> None:
    ops = [
        fake(f"o{i}", 0.1 * (i % 3 + 1), after=[f"o{i - 2}"] if i >= 2 else []) for i in range(8)
    ]
    a = run_fake(tmp_path, ops, workers=3)
    b = run_fake(tmp_path, ops, workers=3)
    key = [(s.op_id, s.attempt, s.start_ns - a.start_ns, s.end_ns - a.start_ns) for s in a.spans]
    assert key == [
        (s.op_id, s.attempt, s.start_ns - b.start_ns, s.end_ns - b.start_ns) for s in b.spans
    ]
    assert a.start_ns == b.start_ns == 1_000_000_000_000


def test_ready_queue_has_no_superstep_barrier(tmp_path: Path) -> None:
    ops = [
        fake("a", 1.0),
        fake("b", 0.1, after="a"),
        fake("c", 0.1),
        fake("d", 0.1, after="c"),
    ]
    trace = run_fake(tmp_path, ops, workers=4)
    assert times(trace, "d") == (approx(0.1), approx(0.1), approx(0.2))
    assert times(trace, "b") == (approx(1.0), approx(1.0), approx(1.1))
    assert trace.totals.wall_s == approx(1.1)


def test_after_chain_is_sequential(tmp_path: Path) -> None:
    ops = [fake("a", 0.3), fake("b", 0.2, after="a"), fake("c", 0.1, after=["a", "b"])]
    trace = run_fake(tmp_path, ops)
    assert times(trace, "c") == (approx(0.5), approx(0.5), approx(0.6))
    assert trace.waits["c"] == ("c after a: declared in after", "c after b: declared in after")
    assert "a" not in trace.waits


# -- retries -------------------------------------------------------------------------------------


def test_retry_exponential_backoff_exact(tmp_path: Path) -> None:
    # x fails its first two attempts; backoff 0.1 then 0.2.
    ops = [fake("x", 0.5, fake_fail=2, retries=3)]
    trace = run_fake(tmp_path, ops, workers=1, retry_backoff_s=0.1)
    spans = trace.spans_of("x")
    assert [s.status for s in spans] == [Status.FAILED, Status.FAILED, Status.OK]
    assert times(trace, "x", 1) == (approx(0.0), approx(0.0), approx(0.5))
    assert times(trace, "x", 2) == (approx(0.6), approx(0.6), approx(1.1))
    assert times(trace, "x", 3) == (approx(1.3), approx(1.3), approx(1.8))
    result = trace.results["x"]
    assert (result.status, result.attempts) == (Status.OK, 3)
    assert trace.totals.wall_s == approx(1.8)
    assert "attempt 1" in (spans[0].error or "")


def test_backoff_releases_the_slot(tmp_path: Path) -> None:
    ops = [fake("x", 0.5, fake_fail=1, retries=1), fake("z", 0.05)]
    trace = run_fake(tmp_path, ops, workers=1, retry_backoff_s=0.1)
    assert times(trace, "z") == (approx(0.0), approx(0.5), approx(0.55))  # ran during the backoff
    assert times(trace, "x", 2) == (approx(0.6), approx(0.6), approx(1.1))
    assert by_id(trace)["z"].waited_for is not None
    assert by_id(trace)["z"].waited_for.startswith("workers")
    assert overlaps(trace) == 1


def test_retries_exhausted(tmp_path: Path) -> None:
    ops = [fake("x", 0.1, fake_fail=-1, retries=2), fake("y", 0.1, after="x")]
    trace = run_fake(tmp_path, ops, retry_backoff_s=0.0)
    assert statuses(trace) == {"x": "failed", "y": "skipped"}
    assert trace.results["x"].attempts == 3
    assert len(trace.spans_of("x")) == 3
    assert trace.results["y"].attempts == 0
    assert "x" in (trace.results["y"].error or "")


def test_plan_default_retries_and_op_override(tmp_path: Path) -> None:
    ops = [fake("a", 0.1, fake_fail=1), fake("b", 0.1, fake_fail=1, retries=0)]
    trace = run_fake(tmp_path, ops, retries=1, retry_backoff_s=0.0)
    assert statuses(trace) == {"a": "ok", "b": "failed"}
    assert trace.results["a"].attempts == 2
    assert trace.results["b"].attempts == 1


def test_crash_status_and_retry(tmp_path: Path) -> None:
    ops = [fake("c", 0.2, fake_crash=True, retries=2), fake("ok", 0.1)]
    trace = run_fake(tmp_path, ops, retry_backoff_s=0.1)
    spans = trace.spans_of("c")
    assert [s.status for s in spans] == [Status.CRASHED] * 3
    assert all(s.cpu_s is None for s in spans)
    assert trace.results["c"].status is Status.CRASHED
    assert trace.results["c"].attempts == 3
    assert times(trace, "c", 2)[1] == approx(0.3)
    assert times(trace, "c", 3)[1] == approx(0.7)
    assert trace.results["ok"].status is Status.OK


def test_timeout_on_virtual_clock(tmp_path: Path) -> None:
    ops = [fake("slow", 10.0, timeout=0.3), fake("next", 0.1, after="slow"), fake("other", 0.2)]
    trace = run_fake(tmp_path, ops)
    assert statuses(trace) == {"slow": "timeout", "next": "skipped", "other": "ok"}
    assert times(trace, "slow")[2] == approx(0.3)
    assert "0.3" in (trace.results["slow"].error or "")
    assert trace.totals.wall_s == approx(0.3)


def test_default_timeout_from_plan(tmp_path: Path) -> None:
    ops = [fake("slow", 10.0), fake("quick", 0.1)]
    trace = run_fake(tmp_path, ops, timeout=1.0)
    assert statuses(trace) == {"slow": "timeout", "quick": "ok"}


def test_fail_fast_exact(tmp_path: Path) -> None:
    ops = [
        fake("bad", 0.2, fake_fail=-1),
        fake("long", 1.0),
        fake("queued", 0.1),
        fake("dep", 0.1, after="long"),
    ]
    trace = run_fake(tmp_path, ops, workers=2, on_error="fail-fast")
    assert statuses(trace) == {
        "bad": "failed",
        "long": "cancelled",
        "queued": "cancelled",
        "dep": "cancelled",
    }
    assert times(trace, "long")[2] == approx(0.2)  # cancelled at the failure, not at 1.0
    assert trace.spans_of("queued") == []
    assert trace.totals.wall_s == approx(0.2)
    assert trace.status is truepar.RunStatus.FAILED
    assert "fail-fast" in (trace.results["queued"].error or "")
    t = trace.totals
    assert (t.ok, t.failed, t.skipped, t.cancelled) == (0, 1, 0, 3)


def test_fail_fast_cancels_pending_retry(tmp_path: Path) -> None:
    ops = [fake("flaky", 0.1, fake_fail=-1, retries=5), fake("bad", 0.15, fake_fail=-1, retries=0)]
    trace = run_fake(tmp_path, ops, workers=2, on_error="fail-fast", retry_backoff_s=1.0)
    assert statuses(trace) == {"flaky": "cancelled", "bad": "failed"}
    assert len(trace.spans_of("flaky")) == 1
    assert trace.totals.wall_s == approx(0.15)


def test_fail_fast_waits_for_retries_to_run_out(tmp_path: Path) -> None:
    ops = [fake("flaky", 0.1, fake_fail=1, retries=1), fake("other", 0.5)]
    trace = run_fake(tmp_path, ops, workers=2, on_error="fail-fast", retry_backoff_s=0.1)
    assert trace.ok
    assert trace.results["flaky"].attempts == 2


def test_continue_runs_everything_independent(tmp_path: Path) -> None:
    ops = [
        fake("bad", 0.1, fake_fail=-1),
        fake("child", 0.1, after="bad"),
        fake("grandchild", 0.1, after=["child", "free"]),
        fake("free", 0.5),
        fake("free2", 0.1, after="free"),
    ]
    trace = run_fake(tmp_path, ops, on_error="continue")
    assert statuses(trace) == {
        "bad": "failed",
        "child": "skipped",
        "grandchild": "skipped",
        "free": "ok",
        "free2": "ok",
    }
    assert trace.totals.wall_s == approx(0.6)
    t = trace.totals
    assert (t.ops, t.ok, t.failed, t.skipped, t.cancelled) == (5, 2, 1, 2, 0)


# -- caps and waits ------------------------------------------------------------------------------


def test_resource_cap_exact(tmp_path: Path) -> None:
    ops = [fake(f"q{i}", 0.2, resource="db") for i in range(4)]
    trace = run_fake(tmp_path, ops, workers=4, resources={"db": Resource(max_concurrent=2)})
    assert overlaps(trace) == 2
    assert trace.totals.wall_s == approx(0.4)
    assert by_id(trace)["q0"].waited_for is None
    assert by_id(trace)["q3"].waited_for == "resource db (max_concurrent 2)"


def test_resource_without_cap_does_not_limit(tmp_path: Path) -> None:
    ops = [fake(f"q{i}", 0.2, resource="api") for i in range(4)]
    trace = run_fake(tmp_path, ops, workers=4, resources={"api": Resource()})
    assert overlaps(trace) == 4


def test_no_head_of_line_blocking(tmp_path: Path) -> None:
    ops = [fake("r1", 1.0, resource="db"), fake("r2", 1.0, resource="db"), fake("f", 0.1)]
    trace = run_fake(tmp_path, ops, workers=2, resources={"db": Resource(max_concurrent=1)})
    assert times(trace, "f") == (approx(0.0), approx(0.0), approx(0.1))  # not stuck behind r2
    assert times(trace, "r2") == (approx(0.0), approx(1.0), approx(2.0))
    spans = by_id(trace)
    assert spans["r2"].waited_for is not None
    assert spans["r2"].waited_for.startswith("resource db")
    assert spans["f"].waited_for is None
    assert spans["r1"].waited_for is None


def test_waited_for_workers(tmp_path: Path) -> None:
    ops = [fake("a", 1.0), fake("b", 0.1)]
    trace = run_fake(tmp_path, ops, workers=1)
    spans = by_id(trace)
    assert spans["a"].waited_for is None
    assert spans["b"].waited_for is not None
    assert spans["b"].waited_for.startswith("workers")
    assert times(trace, "b") == (approx(0.0), approx(1.0), approx(1.1))


def test_workers_override_at_run_time(tmp_path: Path) -> None:
    ops = [fake(f"s{i}", 0.1) for i in range(6)]
    plan = make_plan(tmp_path, ops, backend="fake", workers=1)
    trace = truepar.run(plan, workers=3)
    assert trace.workers == 3
    assert overlaps(trace) == 3
    assert trace.totals.wall_s == approx(0.2)


def test_fake_cpu_and_bytes(tmp_path: Path) -> None:
    ops = [
        fake("a", 1.0, fake_cpu_s=0.25, fake_bytes_out=10, fake_value={"k": 1}),
        fake("b", 1.0, fake_cpu_s=0.5),
    ]
    trace = run_fake(tmp_path, ops)
    spans = by_id(trace)
    assert spans["a"].cpu_s == 0.25
    assert spans["a"].bytes_out == 10
    assert spans["a"].tokens_out == 3
    assert trace.results["a"].value == {"k": 1}
    assert trace.totals.cpu_s == pytest.approx(0.75)
    assert trace.totals.cores_used == pytest.approx(0.75, rel=1e-6)
    assert all(s.pid == spans["a"].pid for s in trace.spans)


# -- critical path -------------------------------------------------------------------------------


def test_critical_path_is_the_longest_chain(tmp_path: Path) -> None:
    ops = [
        fake("a", 0.5),
        fake("b", 0.3, after="a"),
        fake("c", 1.0),
        fake("d", 0.4, after=["b", "c"]),
        fake("e", 0.2, after="a"),
    ]
    plan = make_plan(tmp_path, ops, backend="fake", workers=8)
    durations = {op.id: op.fake_spec().duration_s for op in ops}
    length, path = truepar.build_graph(plan).critical_path(durations)
    assert length == pytest.approx(1.4)
    assert path == ["c", "d"]
    trace = truepar.run(plan)
    assert trace.totals.wall_s == approx(length)


def test_critical_path_empty_durations(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, [fake("a", 1.0)], backend="fake")
    assert truepar.build_graph(plan).critical_path({}) == (0.0, ["a"])


# -- property: random DAGs -----------------------------------------------------------------------


@st.composite
def random_dags(draw: st.DrawFn) -> tuple[list[SleepOp], int]:
    n = draw(st.integers(min_value=1, max_value=12))
    ops = []
    for i in range(n):
        duration = draw(st.integers(min_value=1, max_value=50)) / 100  # 0.01 .. 0.5 s
        preds = draw(st.sets(st.integers(min_value=0, max_value=i - 1), max_size=3)) if i else set()
        ops.append(fake(f"o{i}", duration, after=[f"o{p}" for p in sorted(preds)]))
    workers = draw(st.integers(min_value=1, max_value=8))
    return ops, workers


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(random_dags())
def test_random_dags_respect_the_schedule_laws(
    tmp_path: Path, dag: tuple[list[SleepOp], int]
) -> None:
    ops, workers = dag
    plan = make_plan(tmp_path, ops, backend="fake", workers=workers)
    trace = truepar.run(plan)
    assert trace.ok
    spans = by_id(trace)
    n = len(ops)
    eps = EPS * (n + 1)
    for op in ops:
        span = spans[op.id]
        for dep in op.after:
            assert span.start_ns >= spans[dep].end_ns
        if op.after:
            assert rel(trace, span.ready_ns) == pytest.approx(
                max(rel(trace, spans[d].end_ns) for d in op.after), abs=eps
            )
    assert overlaps(trace) <= workers
    durations = {op.id: op.fake_spec().duration_s for op in ops}
    critical, _ = truepar.build_graph(plan).critical_path(durations)
    total = sum(durations.values())
    wall = trace.totals.wall_s
    assert wall >= critical - eps
    assert wall >= total / workers - eps
    assert trace.totals.sum_op_s == pytest.approx(total, abs=eps)
    if workers >= n:
        assert wall == pytest.approx(critical, abs=eps)
        for span in spans.values():
            assert span.start_ns == span.ready_ns  # never waits for a slot


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(random_dags())
def test_random_dags_one_worker_is_the_sum(tmp_path: Path, dag: tuple[list[SleepOp], int]) -> None:
    ops, _ = dag
    trace = truepar.run(make_plan(tmp_path, ops, backend="fake", workers=1))
    total = sum(op.fake_spec().duration_s for op in ops)
    assert trace.totals.wall_s == pytest.approx(total, abs=EPS * (len(ops) + 1))
    assert overlaps(trace) == 1


@st.composite
def random_capped_dags(draw: st.DrawFn) -> tuple[list[SleepOp], int, int]:
    n = draw(st.integers(min_value=1, max_value=12))
    ops = []
    for i in range(n):
        duration = draw(st.integers(min_value=1, max_value=50)) / 100
        preds = draw(st.sets(st.integers(min_value=0, max_value=i - 1), max_size=2)) if i else set()
        capped = draw(st.booleans())
        ops.append(
            fake(
                f"o{i}",
                duration,
                after=[f"o{p}" for p in sorted(preds)],
                resource="r" if capped else None,
            )
        )
    return (
        ops,
        draw(st.integers(min_value=1, max_value=6)),
        draw(st.integers(min_value=1, max_value=3)),
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(random_capped_dags())
def test_random_dags_are_work_conserving(
    tmp_path: Path, dag: tuple[list[SleepOp], int, int]
) -> None:
    """Caps hold, and a ready op waits only while every worker is busy or its resource is full."""
    ops, workers, cap = dag
    plan = make_plan(
        tmp_path,
        ops,
        backend="fake",
        workers=workers,
        resources={"r": Resource(max_concurrent=cap)},
    )
    trace = truepar.run(plan)
    assert trace.ok
    capped = {op.id for op in ops if op.resource == "r"}
    assert overlaps(trace) <= workers
    assert overlaps([s for s in trace.spans if s.op_id in capped]) <= cap
    spans = list(trace.spans)
    edges = sorted({s.start_ns for s in spans} | {s.end_ns for s in spans})
    for span in spans:
        for lo, hi in itertools.pairwise(edges):
            if lo < span.ready_ns or hi > span.start_ns:
                continue
            mid = (lo + hi) / 2  # the schedule is constant between two events
            busy = [s for s in spans if s.start_ns <= mid < s.end_ns]
            if len(busy) >= workers:
                continue
            assert span.op_id in capped, (span.op_id, "waited with a free worker")
            assert sum(1 for s in busy if s.op_id in capped) >= cap, (span.op_id, "idle resource")


# -- observer and JSON ---------------------------------------------------------------------------


class Recorder(truepar.Observer):
    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def run_started(self, total_ops: int) -> None:
        self.events.append(("run_started", str(total_ops)))

    def op_started(self, op_id: str, attempt: int) -> None:
        self.events.append(("started", op_id, str(attempt)))

    def op_finished(self, span: truepar.Span) -> None:
        self.events.append(("finished", span.op_id, str(span.attempt), span.status.value))

    def op_skipped(self, op_id: str) -> None:
        self.events.append(("skipped", op_id))

    def run_finished(self) -> None:
        self.events.append(("run_finished",))


def test_observer_sees_every_step(tmp_path: Path) -> None:
    ops = [
        fake("a", 0.1, fake_fail=1, retries=1),
        fake("b", 0.3, fake_fail=-1),
        fake("c", 0.1, after="b"),
    ]
    rec = Recorder()
    plan = make_plan(tmp_path, ops, backend="fake", workers=1, retry_backoff_s=0.05)
    truepar.run(plan, observer=rec)
    assert rec.events == [
        ("run_started", "3"),
        ("started", "a", "1"),
        ("finished", "a", "1", "failed"),
        ("started", "b", "1"),
        ("finished", "b", "1", "failed"),
        ("skipped", "c"),
        ("started", "a", "2"),
        ("finished", "a", "2", "ok"),
        ("run_finished",),
    ]


def test_trace_to_json_is_json(tmp_path: Path) -> None:
    ops = [
        fake("a", 0.1, fake_value={"raw": b"\xffbytes", "path": Path("x"), "set": {1}}),
        fake("b", 0.1, fake_fail=-1),
        fake("c", 0.1, after="b"),
    ]
    trace = run_fake(tmp_path, ops)
    text = json.dumps(trace.to_json())
    data = json.loads(text)
    assert data["status"] == "failed"
    assert data["results"]["c"]["status"] == "skipped"
    assert data["results"]["a"]["value"]["raw"] == "\ufffdbytes"
    assert data["totals"]["ops"] == 3
    assert data["waits"] == {"c": ["c after b: declared in after"]}
    assert [s["op_id"] for s in data["spans"]] == ["a", "b"]
    assert data["spans"][0]["duration_s"] == pytest.approx(0.1, abs=EPS)


def test_sleeps_share_a_spec_per_duration_and_keep_its_sign(tmp_path: Path) -> None:
    assert SleepOp(id="a", seconds=0.5).fake_spec() is SleepOp(id="b", seconds=0.5).fake_spec()
    ops = [SleepOp(id="zero", seconds=0.0), SleepOp(id="minus", seconds=-0.0)]
    trace = run_fake(tmp_path, ops)
    assert [trace.results[k].summary for k in ("zero", "minus")] == ["fake 0 s", "fake -0 s"]


def _garbage_of_a_run(tmp_path: Path, n: int) -> int:
    plan = make_plan(tmp_path, [SleepOp(id=f"s{k}", seconds=0) for k in range(n)], backend="fake")
    gc.collect()
    gc.disable()
    try:
        gc.set_debug(gc.DEBUG_SAVEALL)
        truepar.run(plan)
        gc.collect()
        return len(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_ops_leave_no_reference_cycles_behind(tmp_path: Path) -> None:
    # Each op's records go when the trace does; a cycle per op would leave them to the garbage
    # collector, whose passes then cost more than the scheduler itself on small ops.
    assert _garbage_of_a_run(tmp_path, 300) == _garbage_of_a_run(tmp_path, 10)
