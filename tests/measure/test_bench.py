"""``bench``: exact arithmetic on the fake backend, and the verdicts on real backends.

The real-backend cases are the tricks the verdicts must see through (ANCHORS.md, "The seed's
fake proof"): each runs a few small ops, 3 trials, on 2 cores in a few seconds.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import truepar
from helpers.cli import until_as_expected
from truepar import FakeSpec, PythonOp, SleepOp
from truepar.engine.environment import cores_available, gil_enabled
from truepar.measure import BenchReport, bench, noise
from truepar.measure.bench import configurations, summarize
from truepar.measure.results import Sample
from truepar.measure.verdict import Thresholds

# Real parallelism is measured here: `make test` runs these alone, on idle cores.
pytestmark = pytest.mark.idle_cores


def fake_plan(
    tmp_path: Path, n: int = 4, duration: float = 1.0, cpu: float = 0.9, **kw: object
) -> truepar.Plan:
    ops = [
        SleepOp(
            id=f"s{i}",
            seconds=duration,
            fake=FakeSpec(duration_s=duration, cpu_s=cpu, value=i, bytes_out=400),
            **kw,
        )  # type: ignore[arg-type]
        for i in range(n)
    ]
    return truepar.Plan(
        name="fake", ops=ops, defaults=truepar.Defaults(backend="fake"), base_dir=tmp_path
    )


def result(report: BenchReport, backend: str, workers: int) -> truepar.measure.ConfigResult:
    (r,) = [r for r in report.results if (r.backend, r.workers) == (backend, workers)]
    return r


# -- fake backend: exact numbers -------------------------------------------------------------------


def test_exact_measures_on_known_durations(tmp_path: Path) -> None:
    report = bench(
        fake_plan(tmp_path), backends=("fake",), workers=(2, 4), repeat=3, warmup=1, cores=8
    )
    assert report.complete
    base = report.baseline
    assert (
        base is not None and base.wall_s == pytest.approx(4.0) and base.cpu_s == pytest.approx(3.6)
    )
    r2, r4 = result(report, "fake", 2), result(report, "fake", 4)
    assert r2.speedup == pytest.approx(2.0) and r2.speedup_ci == pytest.approx((2.0, 2.0))
    assert r4.speedup == pytest.approx(4.0) and r4.efficiency == pytest.approx(1.0)
    assert r4.wall_ci_s == pytest.approx((1.0, 1.0)) and r4.wall_cv == 0.0
    assert r4.avg_concurrency == pytest.approx(4.0)
    assert r4.cores_used == pytest.approx(3.6) and r4.work_ratio == pytest.approx(1.0)
    # LB = max(critical path 1, Σ durations / W = 1, Σ CPU / cores = 3.6 / 8).
    assert r4.lower_bound_s == pytest.approx(1.0) and r4.bound_efficiency == pytest.approx(1.0)
    assert r2.lower_bound_s == pytest.approx(2.0) and r2.overhead_s == pytest.approx(0.0)
    assert r4.karp_flatt == pytest.approx(0.0, abs=1e-9)
    assert r4.errors == 0 and r4.op_runs == 12 and r4.error_rate == 0.0
    assert r4.context_bytes == 1600 and r4.context_per_op["s0"] == 400
    assert r4.verdict == "parallel" and r2.verdict == "parallel"
    assert len([s for s in report.samples if s.warmup]) == 3  # one warmup trial, 3 configurations


def test_critical_path_bounds_a_chain(tmp_path: Path) -> None:
    ops = [
        SleepOp(id="a", seconds=1, fake=FakeSpec(duration_s=1)),
        SleepOp(id="b", seconds=2, after=("a",), fake=FakeSpec(duration_s=2)),
        SleepOp(id="c", seconds=1, fake=FakeSpec(duration_s=1)),
    ]
    plan = truepar.Plan(
        name="chain", ops=ops, defaults=truepar.Defaults(backend="fake"), base_dir=tmp_path
    )
    report = bench(plan, backends=("fake",), workers=(4,), repeat=1, warmup=0, cores=8)
    r = result(report, "fake", 4)
    assert r.lower_bound_s == pytest.approx(3.0) and r.wall_s == pytest.approx(3.0)
    assert r.speedup == pytest.approx(4 / 3)
    assert r.verdict == "concurrent"  # the fake ops declare no CPU: waits overlapped


def test_trials_are_interleaved_with_a_rotating_order(tmp_path: Path) -> None:
    report = bench(fake_plan(tmp_path), backends=("fake",), workers=(2, 4), repeat=3, warmup=0)
    order = [(s.trial, s.workers) for s in report.samples]
    # (-1, 1): the unmeasured priming run of the baseline (there is no warmup trial).
    assert order == [
        (-1, 1),
        (0, 1),
        (0, 2),
        (0, 4),
        (1, 2),
        (1, 4),
        (1, 1),
        (2, 4),
        (2, 1),
        (2, 2),
    ]
    raw = report.to_json()["trials"]
    assert len(raw) == 10 and {"wall_s", "cpu_s", "backend", "workers", "warmup"} <= set(raw[0])


def test_interrupt_keeps_what_was_measured(tmp_path: Path) -> None:
    seen: list[bool] = []

    def stop_after_four(report: BenchReport) -> None:
        seen.append(report.complete)
        if len(seen) == 4:
            raise KeyboardInterrupt

    report = bench(
        fake_plan(tmp_path),
        backends=("fake",),
        workers=(2, 4),
        repeat=3,
        warmup=0,
        on_config=stop_after_four,
    )
    assert not report.complete and not any(seen)
    measured = [s for s in report.samples if not s.warmup]
    assert len(measured) == 4
    # With no warmup trial, one unmeasured baseline run primes the caches: kept, as trial -1.
    assert [(s.trial, s.backend) for s in report.samples if s.warmup] == [(-1, "fake")]
    # Trial 1's ×2 run has no baseline run to pair with yet: it is kept raw, not in the stats.
    assert {(r.workers, r.trials) for r in report.results} == {(2, 1), (4, 1)}
    assert report.to_json()["complete"] is False
    # The docs' promise: intervals from fewer than 3 trials are said to mean nothing.
    assert any("interrupted after 1 of 3 trial(s)" in w for w in report.warnings)


def test_json_contract(tmp_path: Path) -> None:
    report = bench(fake_plan(tmp_path), backends=("fake",), workers=(2, 4, 8), repeat=2, warmup=0)
    data = json.loads(json.dumps(report.to_json()))
    assert {
        "results",
        "baseline",
        "warnings",
        "environment",
        "thresholds",
        "trials",
        "complete",
    } <= set(data)
    for r in data["results"]:
        assert {"backend", "workers", "speedup", "cores_used", "verdict", "reasons"} <= set(r)
        assert r["verdict"] in ("parallel", "concurrent", "serialized", "suspect")
    assert data["thresholds"]["min_speedup"] == 1.1
    sweep = data["scaling"]["fake"]
    assert sweep["workers"] == [1, 2, 4, 8] and sweep["recommended_workers"] >= 4


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(truepar.UsageError, match="at least 2 ops"):
        bench(fake_plan(tmp_path, n=1), backends=("fake",))
    with pytest.raises(truepar.UsageError, match="repeat"):
        bench(fake_plan(tmp_path), backends=("fake",), repeat=0)
    with pytest.raises(truepar.UsageError, match="worker"):
        bench(fake_plan(tmp_path), backends=("fake",), workers=(0,))


# -- noise warnings -----------------------------------------------------------------------------


def test_short_ops_are_warned_about(tmp_path: Path) -> None:
    report = bench(
        fake_plan(tmp_path, duration=0.0002), backends=("fake",), workers=(2,), repeat=2, warmup=0
    )
    assert any("too short to time reliably" in w for w in report.warnings)


def test_noise_warnings_say_what_to_change() -> None:
    t = Thresholds()
    assert "--repeat" in noise.unstable("threads ×4", [1.0, 1.5, 0.8], t)[0]
    assert noise.unstable("threads ×4", [1.0, 1.01, 0.99], t) == []
    assert "--warmup 1" in noise.cold_start("x", [3.0, 1.0, 1.0], 0, t)[0]
    assert noise.cold_start("x", [1.1, 1.0, 1.0], 0, t) == []
    assert "load average 7.00 on 2" in noise.busy_machine(7.0, 2, t)[0]
    assert noise.busy_machine(0.2, 2, t) == []


# -- real backends: the tricks -----------------------------------------------------------------

KERNELS = textwrap.dedent(
    """
    import hashlib
    import threading
    import time

    BUF = bytes(range(256)) * (32 * 1024 * 1024 // 256)


    def spin():
        t0 = time.time()
        n = 0
        while time.time() - t0 < 0.25:
            n += 1
        return n


    def kernel(n=4_000_000):
        acc = 0
        for i in range(n):
            acc = (acc * 31 + i) % 1_000_003
        return acc


    def sha():
        h = hashlib.sha256()
        for _ in range(4):
            h.update(BUF)
        return h.hexdigest()


    def nap():
        time.sleep(0.1)
        return "rested"


    def where():
        return threading.current_thread().name == "MainThread"
    """
)


def python_plan(tmp_path: Path, fn: str, n: int = 4) -> truepar.Plan:
    (tmp_path / "benchwork.py").write_text(KERNELS)
    ops = [PythonOp(id=f"{fn}{i}", call=f"benchwork:{fn}") for i in range(n)]
    return truepar.Plan(name=fn, ops=ops, base_dir=tmp_path)


needs_gil_and_cores = pytest.mark.skipif(
    not (gil_enabled() and cores_available() >= 2),
    reason="these verdicts are those of a GIL CPython on 2+ cores",
)


def numbers(r: truepar.measure.ConfigResult) -> str:
    ratio = r.work_ratio
    return f"{r.label}: {r.verdict} S={r.speedup:.2f} U={r.cores_used:.2f} R={ratio} {r.reasons}"


def test_time_bounded_loops_on_threads_are_suspect(tmp_path: Path) -> None:
    report = bench(
        python_plan(tmp_path, "spin"), backends=("threads",), workers=(4,), repeat=3, warmup=0
    )
    r = result(report, "threads", 4)
    assert r.verdict == "suspect", numbers(r)
    assert r.speedup > 2  # the wall clock alone would call this a great success
    assert r.work_ratio is not None and r.work_ratio < 0.7
    assert any("CPU spent" in x and "the work shrank" in x for x in r.reasons), r.reasons


def test_sleeps_on_threads_are_concurrent(tmp_path: Path) -> None:
    report = bench(
        python_plan(tmp_path, "nap"), backends=("threads",), workers=(4,), repeat=3, warmup=0
    )
    r = result(report, "threads", 4)
    assert r.verdict == "concurrent", numbers(r)
    assert r.speedup > 3 and r.cores_used < 0.5


@needs_gil_and_cores
def test_pure_python_is_serialized_on_threads_and_parallel_on_processes(tmp_path: Path) -> None:
    plan = python_plan(tmp_path, "kernel")
    report = until_as_expected(
        lambda: bench(plan, backends=("threads", "processes"), workers=(2,), repeat=3, warmup=1),
        lambda rep: result(rep, "processes", 2).verdict == "parallel",
    )
    threads, procs = result(report, "threads", 2), result(report, "processes", 2)
    assert threads.verdict == "serialized", numbers(threads)
    assert procs.verdict == "parallel", numbers(procs)
    assert procs.cores_used > 1.2 and procs.work_ratio is not None and procs.work_ratio > 0.7


@needs_gil_and_cores
def test_hashlib_releases_the_gil_so_threads_are_parallel(tmp_path: Path) -> None:
    plan = python_plan(tmp_path, "sha")
    report = until_as_expected(
        lambda: bench(plan, backends=("threads",), workers=(2,), repeat=3, warmup=1),
        lambda rep: result(rep, "threads", 2).verdict == "parallel",
    )
    r = result(report, "threads", 2)
    assert r.verdict == "parallel", numbers(r)


def test_a_sync_sleep_on_the_async_backend_is_serialized(tmp_path: Path) -> None:
    report = bench(
        python_plan(tmp_path, "nap"), backends=("async",), workers=(4,), repeat=3, warmup=0
    )
    r = result(report, "async", 4)
    assert r.verdict == "serialized", numbers(r)
    assert any("event loop" in x for x in r.reasons)


def test_results_that_change_with_the_backend_are_suspect(tmp_path: Path) -> None:
    report = bench(
        python_plan(tmp_path, "where"), backends=("threads",), workers=(2,), repeat=1, warmup=0
    )
    r = result(report, "threads", 2)
    assert r.verdict == "suspect" and "results differ" in r.reasons[0]


def test_ops_failing_only_on_processes_are_listed(tmp_path: Path) -> None:
    ops = [PythonOp(id=f"l{i}", call=lambda: 1) for i in range(2)]  # a lambda cannot be pickled
    plan = truepar.Plan(name="lambdas", ops=ops, base_dir=tmp_path)
    report = bench(plan, backends=("processes",), workers=(2,), repeat=1, warmup=0)
    r = result(report, "processes", 2)
    assert r.failed_only_here == ("l0", "l1") and r.errors == 2
    assert r.verdict == "suspect"


def test_ops_without_duration_are_bad_input(tmp_path: Path) -> None:
    plan = fake_plan(tmp_path, duration=0.0)
    with pytest.raises(truepar.UsageError, match="no measurable time"):
        bench(plan, backends=("fake",), workers=(2,), repeat=2, warmup=0)


def test_raw_samples_round_trip_so_results_can_be_recomputed(tmp_path: Path) -> None:

    plan = fake_plan(tmp_path)
    report = bench(plan, backends=("fake",), workers=(2, 4), repeat=2, warmup=1, cores=8)
    data = json.loads(json.dumps(report.to_json()))
    samples = [Sample.from_json(s) for s in data["trials"]]
    assert samples == list(report.samples)
    configs = configurations(("fake",), (2, 4))
    again = summarize(plan, configs, samples, Thresholds(), None, 2, 1, True, 8)
    assert [r.to_json() for r in again.results] == [r.to_json() for r in report.results]
