"""1. Dispatch overhead: 10,000 calls of a no-op Python function, in µs per call.

The function does nothing, so everything measured is the cost of getting calls to workers and
results back. Every variant's time is its whole outer wall — pool or worker start-up, dispatch,
collecting the results in order — divided by the number of calls.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import joblib
from joblib.externals.loky import get_reusable_executor

import truepar
from common import Benchmark, Column, Goal, Metrics, Variant, check, timed
from kernels import noop

N = 10_000
ITEMS = range(N)
EXPECTED = list(ITEMS)


def _per_call(seconds: float, values: list[int]) -> Metrics:
    check(list(values) == EXPECTED, "values in item order")
    return {"us": seconds / N * 1e6}


def _floor() -> Metrics:
    return _per_call(*timed(lambda: [noop(i) for i in ITEMS]))


def _truepar(backend: str, workers: int) -> Variant:
    def fn() -> Metrics:
        seconds, result = timed(lambda: truepar.map(noop, ITEMS, backend=backend, workers=workers))
        check(len(result.start_ns) == N and len(result.end_ns) == N, "a span for every call")
        metrics = _per_call(seconds, result.values)
        metrics["in_run_us"] = result.trace.totals.wall_s / N * 1e6
        metrics["chunks"] = len(result.chunk_bounds)
        return metrics

    label = f"truepar.map {backend} (workers {workers})"
    return Variant(label, "truepar", fn)


def _tpe_map() -> Metrics:
    def job() -> list[int]:
        with ThreadPoolExecutor(8) as ex:
            return list(ex.map(noop, ITEMS))

    return _per_call(*timed(job))


def _tpe_submit() -> Metrics:
    def job() -> list[int]:
        with ThreadPoolExecutor(8) as ex:
            futures = [ex.submit(noop, i) for i in ITEMS]
            return [f.result() for f in futures]

    return _per_call(*timed(job))


async def _anoop(x: int) -> int:
    return x


def _gather() -> Metrics:
    async def main() -> list[int]:
        return await asyncio.gather(*(_anoop(i) for i in ITEMS))

    return _per_call(*timed(lambda: asyncio.run(main())))


def _joblib(n_jobs: int, backend: str) -> Metrics:
    return _per_call(
        *timed(
            lambda: joblib.Parallel(n_jobs=n_jobs, backend=backend)(
                joblib.delayed(noop)(i) for i in ITEMS
            )
        )
    )


def _loky_warm_up() -> None:
    joblib.Parallel(n_jobs=2, backend="loky")(joblib.delayed(noop)(i) for i in range(4))


def _loky_shutdown() -> None:
    get_reusable_executor().shutdown(wait=True)


def _ppe_map() -> Metrics:
    def job() -> list[int]:
        with ProcessPoolExecutor(2) as ex:
            return list(ex.map(noop, ITEMS, chunksize=256))

    return _per_call(*timed(job))


def benchmark() -> Benchmark:
    headline = _truepar("threads", 8)
    return Benchmark(
        name="dispatch",
        title=f"{N:,} no-op Python calls",
        metric="us",
        unit="µs/call",
        better="lower",
        goal=Goal(3.0, "<=", (headline.label,)),
        fmt="{:.3g}",
        columns=[
            Column("in_run_us", "in-run µs/call", "{:.3g}"),
            Column("chunks", "chunks", "{:.0f}"),
        ],
        variants=[
            Variant("plain loop", "floor", _floor, note="list comprehension, no parallelism"),
            headline,
            _truepar("async", 8),
            _truepar("sequential", 1),
            _truepar("processes", 2),
            Variant("ThreadPoolExecutor(8).map", "peer", _tpe_map),
            Variant("ThreadPoolExecutor(8).submit each", "peer", _tpe_submit),
            Variant(
                "asyncio.gather of 10,000 coroutines",
                "peer",
                _gather,
                note="includes asyncio.run's loop creation",
            ),
            Variant("joblib threading n_jobs=8", "peer", lambda: _joblib(8, "threading")),
            Variant(
                "joblib loky n_jobs=2 (warm pool)",
                "peer",
                lambda: _joblib(2, "loky"),
                setup=_loky_warm_up,
                teardown=_loky_shutdown,
                note="loky's reusable workers already running (joblib's default reuse)",
            ),
            Variant(
                "joblib loky n_jobs=2 (cold)",
                "peer",
                lambda: _joblib(2, "loky"),
                setup=_loky_shutdown,
                teardown=_loky_shutdown,
                note="workers started inside the timing",
            ),
            Variant(
                "ProcessPoolExecutor(2).map chunksize=256",
                "peer",
                _ppe_map,
                note="pool start (fork) and shutdown included",
            ),
        ],
        notes=[
            "µs/call = outer wall of the whole call (truepar.map builds and runs its plan) / N",
            "in-run µs/call = truepar's own trace.totals.wall_s / N (scheduler and workers only)",
            "truepar.map stamps a start/end span for every call; the peers record nothing",
            "truepar processes: wall includes starting its 2 workers (fork, or its fork server when"
            " other threads are alive)",
        ],
    )
