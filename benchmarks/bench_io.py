"""2. I/O-bound fan-out: 200 waits of 20 ms, 32 at a time.

The ideal wall is ceil(200 / 32) = 7 rounds of 20 ms = 140 ms; efficiency = ideal / wall, so
100% means no overhead at all on top of the waits themselves.
"""

from __future__ import annotations

import asyncio
import math
import time
from concurrent.futures import ThreadPoolExecutor

import joblib

import truepar
from common import Benchmark, Column, Goal, Metrics, Variant, check, timed

OPS = 200
SECONDS = 0.020
WORKERS = 32
IDEAL_S = math.ceil(OPS / WORKERS) * SECONDS


def _metrics(wall_s: float) -> Metrics:
    return {"eff": IDEAL_S / wall_s * 100, "wall_ms": wall_s * 1e3}


def _plan() -> truepar.Plan:
    ops = [truepar.SleepOp(id=f"s{i}", seconds=SECONDS) for i in range(OPS)]
    return truepar.Plan(name="io", ops=ops, defaults=truepar.Defaults(workers=WORKERS))


def _truepar(backend: str) -> Variant:
    plan = _plan()

    def fn() -> Metrics:
        outer, trace = timed(lambda: truepar.run(plan, backend=backend, workers=WORKERS))
        check(trace.status is truepar.RunStatus.OK and trace.totals.ok == OPS, "all ops ok")
        metrics = _metrics(trace.totals.wall_s)
        metrics["outer_ms"] = outer * 1e3
        metrics["outer_eff"] = IDEAL_S / outer * 100
        return metrics

    return Variant(f"truepar {backend} (workers {WORKERS})", "truepar", fn)


def _tpe() -> Metrics:
    def job() -> None:
        with ThreadPoolExecutor(WORKERS) as ex:
            list(ex.map(time.sleep, [SECONDS] * OPS))

    return _metrics(timed(job)[0])


def _asyncio() -> Metrics:
    async def main() -> None:
        sem = asyncio.Semaphore(WORKERS)

        async def one() -> None:
            async with sem:
                await asyncio.sleep(SECONDS)

        await asyncio.gather(*(one() for _ in range(OPS)))

    return _metrics(timed(lambda: asyncio.run(main()))[0])


def _joblib() -> Metrics:
    seconds, values = timed(
        lambda: joblib.Parallel(n_jobs=WORKERS, backend="threading")(
            joblib.delayed(time.sleep)(SECONDS) for _ in range(OPS)
        )
    )
    check(len(values) == OPS, "all calls returned")
    return _metrics(seconds)


def benchmark() -> Benchmark:
    threads, async_ = _truepar("threads"), _truepar("async")
    return Benchmark(
        name="io",
        title=f"{OPS} × {SECONDS * 1e3:g} ms sleep, {WORKERS} at a time "
        f"(ideal {IDEAL_S * 1e3:.0f} ms)",
        metric="eff",
        unit="% efficiency",
        better="higher",
        goal=Goal(98.0, ">=", (threads.label, async_.label)),
        fmt="{:.1f}",
        columns=[
            Column("wall_ms", "wall ms", "{:.1f}"),
            Column("outer_ms", "outer ms", "{:.1f}"),
            Column("outer_eff", "outer eff %", "{:.1f}"),
        ],
        variants=[
            threads,
            async_,
            Variant(f"ThreadPoolExecutor({WORKERS}) + time.sleep", "peer", _tpe),
            Variant(
                f"asyncio Semaphore({WORKERS}) + asyncio.sleep",
                "peer",
                _asyncio,
                note="includes asyncio.run's loop creation",
            ),
            Variant(f"joblib threading n_jobs={WORKERS}", "peer", _joblib),
        ],
        notes=[
            "truepar: efficiency and wall from trace.totals.wall_s (around the scheduler, "
            "workers' start-up included); outer = around truepar.run (plan check, event loop)",
            "peers: wall = outer wall of the whole job, pool start-up and shutdown included",
        ],
    )
