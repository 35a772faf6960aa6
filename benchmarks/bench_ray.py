"""Ray: truepar's ``ray`` backend against Ray used directly, on a local instance (this machine's
cores, a small object store), connected once before anything is timed.

``ray-dispatch``: a plan of 2,000 no-op Python ops, in µs per op. truepar sends ops of a kind it
has measured as tiny to its warm actors in chunks, each op still getting its own span; the peers
are what a Ray user writes without truepar: one ``ray.remote`` task per call, and one actor
method call per call. The goal: ≥ 10× cheaper per op than a raw ``ray.remote`` task.

``ray-cpu``: 4 × ~0.5 s pure-Python tasks on 2 workers, speedup over running them one after
another here, on ``ray`` and on ``processes`` in the same repetitions. The goal: ray's speedup
≥ 0.9 × that of processes, with cores used within 10% of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ray

import truepar
from bench_cpu import EXPECTED as CPU_EXPECTED
from bench_cpu import TASKS, WORKERS
from common import Benchmark, Column, Goal, Metrics, Variant, check, timed
from kernels import CPU_TASK_N, fixed_work, noop
from truepar.backends.ray import connect

N = 2_000
HERE = Path(__file__).resolve().parent
#: Ops in flight on the ray backend for the tiny-op plan (its actors: at most the cores).
DISPATCH_WORKERS = 256


def _connect() -> None:
    connect()  # a local instance, once per process, outside every timing


def _per_op(seconds: float, values: list[Any]) -> Metrics:
    check(list(values) == list(range(N)), "values in op order")
    return {"us": seconds / N * 1e6}


_remote_noop: Any = None
_actor: Any = None


class _Echo:
    def call(self, x: int) -> int:
        return noop(x)


def _raw_tasks() -> Metrics:
    global _remote_noop
    if _remote_noop is None:
        _remote_noop = ray.remote(noop)
    return _per_op(*timed(lambda: ray.get([_remote_noop.remote(i) for i in range(N)])))


def _raw_actor() -> Metrics:
    global _actor
    if _actor is None:
        _actor = ray.remote(_Echo).remote()
    return _per_op(*timed(lambda: ray.get([_actor.call.remote(i) for i in range(N)])))


def _dispatch_plan() -> truepar.Plan:
    ops = [truepar.PythonOp(id=f"op{i}", call="kernels:noop", args=(i,)) for i in range(N)]
    return truepar.Plan(
        name="ray-dispatch",
        ops=ops,
        defaults=truepar.Defaults(backend="ray", workers=DISPATCH_WORKERS),
        base_dir=HERE,
    )


def _truepar_plan() -> Metrics:
    plan = _dispatch_plan()
    outer, trace = timed(lambda: truepar.run(plan))
    check(trace.ok, f"run ok ({trace.status})")
    check(len(trace.spans) == N, "a span for every op")
    metrics = _per_op(trace.totals.wall_s, [trace.results[f"op{i}"].value for i in range(N)])
    metrics["outer_us"] = outer / N * 1e6
    return metrics


def _truepar_map() -> Metrics:
    outer, result = timed(lambda: truepar.map(noop, range(N), backend="ray", workers=2))
    metrics = _per_op(result.trace.totals.wall_s, result.values)
    metrics["outer_us"] = outer / N * 1e6
    return metrics


def benchmark_dispatch() -> Benchmark:
    label = f"truepar plan on ray (workers {DISPATCH_WORKERS})"
    headline = Variant(label, "truepar", _truepar_plan)
    return Benchmark(
        name="ray-dispatch",
        title=f"{N:,} no-op Python ops on a local Ray instance",
        metric="us",
        unit="µs/op",
        better="lower",
        goal=Goal(100.0, "<=", (headline.label,)),
        fmt="{:.3g}",
        columns=[Column("outer_us", "outer µs/op", "{:.3g}")],
        prepare=_connect,
        repeats=3,
        variants=[
            headline,
            Variant("truepar.map on ray (workers 2)", "truepar", _truepar_map),
            Variant("ray.remote task per call", "peer", _raw_tasks),
            Variant("one actor, a method call per call", "peer", _raw_actor),
        ],
        notes=[
            "µs/op for truepar = the run's own wall (trace.totals.wall_s) / N; outer adds "
            "building the plan, its checks and the trace",
            "truepar: ops of a kind measured as tiny go to warm actors in chunks; every op keeps "
            "its own span (pid, thread, node, times, CPU)",
            "goal: ≤ 100 µs/op, i.e. ≥ 10× cheaper than a ray.remote task (about 1 ms here)",
        ],
    )


class _Baseline:
    seconds = 0.0


def _sequential() -> Metrics:
    seconds, values = timed(lambda: [fixed_work(CPU_TASK_N, k) for k in range(TASKS)])
    check(values == CPU_EXPECTED, "checksums")
    _Baseline.seconds = seconds
    return {"speedup": 1.0, "wall_s": seconds}


def _cpu(backend: str) -> Variant:
    ops = [
        truepar.PythonOp(id=f"task{k}", call="kernels:fixed_work", args=(CPU_TASK_N, k))
        for k in range(TASKS)
    ]
    plan = truepar.Plan(
        name="ray-cpu", ops=ops, defaults=truepar.Defaults(workers=WORKERS), base_dir=HERE
    )

    def fn() -> Metrics:
        trace = truepar.run(plan, backend=backend, workers=WORKERS)
        check(trace.ok, f"run ok ({trace.status})")
        check([trace.results[f"task{k}"].value for k in range(TASKS)] == CPU_EXPECTED, "sums")
        wall = trace.totals.wall_s
        return {
            "speedup": _Baseline.seconds / wall,
            "wall_s": wall,
            "cores_used": trace.totals.cores_used,
        }

    return Variant(f"truepar {backend} (workers {WORKERS})", "truepar", fn)


def benchmark_cpu() -> Benchmark:
    ray_variant, processes = _cpu("ray"), _cpu("processes")
    return Benchmark(
        name="ray-cpu",
        title=f"{TASKS} × ~0.5 s pure-Python tasks on {WORKERS} workers: ray against processes",
        metric="speedup",
        unit="× speedup",
        better="higher",
        goal=Goal(1.6, ">=", (ray_variant.label,)),
        fmt="{:.2f}",
        columns=[Column("wall_s", "wall s", "{:.2f}"), Column("cores_used", "cores", "{:.2f}")],
        prepare=_connect,
        variants=[
            Variant("sequential in-process (baseline)", "floor", _sequential),
            ray_variant,
            processes,
        ],
        notes=[
            "each repetition measures the sequential baseline first; speedups divide by it",
            "with Ray's threads alive in this process, processes starts its workers from a fork "
            "server (see backends/processes.py), as it would in any threaded program",
            "goal: ray's speedup ≥ 0.9 × processes' (the ÷ headline column), cores within 10%",
        ],
    )
