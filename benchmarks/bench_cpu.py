"""5. CPU-bound: 4 tasks of ~0.5 s of pure-Python work on 2 cores; speedup over running them
one after another in this process.

Each task is :func:`kernels.fixed_work` with a fixed size, and its checksum is checked against
the closed form. The ideal speedup on 2 cores is 2× (4 tasks in 2 rounds of 2). Each repetition
measures the sequential baseline first, and every variant's speedup in that repetition divides
by that repetition's baseline.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import joblib
from joblib.externals.loky import get_reusable_executor

import truepar
from common import Benchmark, Column, Goal, Metrics, Variant, check, timed
from kernels import CPU_TASK_N, expected_checksum, fixed_work

TASKS = 4
WORKERS = 2
HERE = Path(__file__).resolve().parent
EXPECTED = [expected_checksum(CPU_TASK_N, k) for k in range(TASKS)]


class _Baseline:
    """The sequential wall of the current repetition (measured first in each round)."""

    seconds = 0.0


def _check(values: list[int]) -> None:
    check(list(values) == EXPECTED, "checksums of all tasks")


def _metrics(wall_s: float) -> Metrics:
    return {"speedup": _Baseline.seconds / wall_s, "wall_s": wall_s}


def _sequential() -> Metrics:
    seconds, values = timed(lambda: [fixed_work(CPU_TASK_N, k) for k in range(TASKS)])
    _check(values)
    _Baseline.seconds = seconds
    return _metrics(seconds)


def _plan(n: int) -> truepar.Plan:
    ops = [
        truepar.PythonOp(id=f"task{k}", call="kernels:fixed_work", args=(n, k))
        for k in range(TASKS)
    ]
    return truepar.Plan(
        name="cpu", ops=ops, defaults=truepar.Defaults(workers=WORKERS), base_dir=HERE
    )


def _truepar(backend: str) -> Variant:
    plan = _plan(CPU_TASK_N)

    def fn() -> Metrics:
        outer, trace = timed(lambda: truepar.run(plan, backend=backend, workers=WORKERS))
        check(trace.status is truepar.RunStatus.OK, f"run ok ({trace.status})")
        _check([trace.results[f"task{k}"].value for k in range(TASKS)])
        result = _metrics(trace.totals.wall_s)
        result["outer_s"] = outer
        result["outer_speedup"] = _Baseline.seconds / outer
        result["cores_used"] = trace.totals.cores_used
        return result

    return Variant(f"truepar {backend} (workers {WORKERS})", "truepar", fn)


def _ppe() -> Metrics:
    def job() -> list[int]:
        with ProcessPoolExecutor(WORKERS) as ex:
            return list(ex.map(fixed_work, [CPU_TASK_N] * TASKS, range(TASKS)))

    seconds, values = timed(job)
    _check(values)
    return _metrics(seconds)


def _loky() -> Metrics:
    seconds, values = timed(
        lambda: joblib.Parallel(n_jobs=WORKERS, backend="loky")(
            joblib.delayed(fixed_work)(CPU_TASK_N, k) for k in range(TASKS)
        )
    )
    _check(values)
    return _metrics(seconds)


def _loky_warm_up() -> None:
    joblib.Parallel(n_jobs=WORKERS, backend="loky")(
        joblib.delayed(fixed_work)(10, k) for k in range(TASKS)
    )


def _loky_shutdown() -> None:
    get_reusable_executor().shutdown(wait=True)


def _prepare() -> None:
    """Start truepar's fork server once (a once-per-process cost), with tiny tasks."""
    trace = truepar.run(_plan(1000), backend="processes", workers=WORKERS)
    check(trace.status is truepar.RunStatus.OK, "warm-up run ok")


def benchmark() -> Benchmark:
    processes, threads = _truepar("processes"), _truepar("threads")
    return Benchmark(
        name="cpu",
        title=f"{TASKS} × ~0.5 s pure-Python tasks (n={CPU_TASK_N:,}) on {WORKERS} workers",
        metric="speedup",
        unit="× speedup",
        better="higher",
        goal=Goal(1.85, ">=", (processes.label,)),
        fmt="{:.2f}",
        columns=[
            Column("wall_s", "wall s", "{:.2f}"),
            Column("outer_s", "outer s", "{:.2f}"),
            Column("outer_speedup", "outer ×", "{:.2f}"),
            Column("cores_used", "cores_used", "{:.2f}"),
        ],
        variants=[
            Variant(
                "sequential in-process (baseline)",
                "floor",
                _sequential,
                note="the 4 tasks one after another; speedup 1 by definition",
            ),
            processes,
            threads,
            Variant(
                f"ProcessPoolExecutor({WORKERS})",
                "peer",
                _ppe,
                note="pool start (fork) and shutdown included",
            ),
            Variant(
                f"joblib loky n_jobs={WORKERS} (cold)",
                "peer",
                _loky,
                setup=_loky_shutdown,
                teardown=_loky_shutdown,
                note="worker start included",
            ),
            Variant(
                f"joblib loky n_jobs={WORKERS} (warm pool)",
                "peer",
                _loky,
                setup=_loky_warm_up,
                teardown=_loky_shutdown,
                note="loky's reusable workers already running",
            ),
        ],
        notes=[
            "ideal speedup = 2.00 on 2 cores; truepar threads is expected ≈ 1 or below (the GIL)",
            "truepar: speedup from trace.totals.wall_s (its 2 workers' start-up included); "
            "outer = around truepar.run",
        ],
        warmup=False,
        prepare=_prepare,
        repeats=3,
    )
