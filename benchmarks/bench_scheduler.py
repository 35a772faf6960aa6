"""11. Scheduler cost: what the engine itself adds per op, on 10,000 instant ops, in µs.

A Ray-sized plan is thousands of tiny ops, and batching them to warm workers only pays if the
engine does not eat the gain back: every op still goes through the scheduler and gets its span
and result. The ops here take no time at all, so a run is nothing but overhead, in two parts:

- the backend's own: on ``fake``, a virtual-clock timer, a worker slot and an outcome per op;
  on ``sequential``, a turn of the event loop and ``invoke`` (CPU and monotonic clocks around
  the call, the tool's own work). Measured as the same backend driven by the least a driver can
  do: ``WORKERS`` calls in flight, each completion submitting the next, every outcome kept;
- the engine's own: checking the plan, the ready queue, dispatch, one span and one result per
  op, the trace. That is the metric: ``truepar.run(plan, checks=False)`` minus the backend
  alone, per op, each timed ``PAIRS`` times back to back and the best kept (the difference of
  two timings taken apart would carry the machine's drift between them).

The plan is built once (its dependency graph is cached on it, as for any plan run twice);
``whole run() µs/op`` is the full ``truepar.run(plan)``, pre-run checks and backend included.
Peers schedule and record the same 10,000 calls their own way, with no event loop between
them (``graphlib``) or a task per call (``asyncio``): their whole job per call.
"""

from __future__ import annotations

import asyncio
import graphlib
import time
from collections.abc import Callable
from pathlib import Path

import truepar
from common import Benchmark, Column, Goal, Metrics, Variant, check, timed
from kernels import noop
from truepar.backends import create_backend
from truepar.backends.base import OpCall, Outcome
from truepar.backends.inline import loop_guard

N = 10_000
WORKERS = 8
#: Back-to-back pairs (backend alone, engine) per repetition; the best of each is kept.
PAIRS = 2
HERE = Path(__file__).resolve().parent


def _plan(backend: str) -> truepar.Plan:
    if backend == "fake":
        ops: list[truepar.OpBase] = [truepar.SleepOp(id=f"s{k}", seconds=0) for k in range(N)]
    else:
        ops = [truepar.PythonOp(id=f"w{k}", call=noop, args=(k,)) for k in range(N)]
    plan = truepar.Plan(
        name="scheduler",
        ops=ops,
        base_dir=HERE,
        defaults=truepar.Defaults(backend=backend, workers=WORKERS),
    )
    plan.check()
    return plan


def _backend_alone(plan: truepar.Plan) -> tuple[float, list[Outcome | BaseException]]:
    """Seconds for the plan's backend to run its ops with no engine: ``WORKERS`` calls in
    flight, each completion submitting the next, every outcome kept."""
    backend = create_backend(plan.defaults.backend, WORKERS)
    loop = backend.new_event_loop()
    root = plan.root
    pending = iter(plan.ops)
    outcomes: list[Outcome | BaseException] = []

    async def drive() -> None:
        finished = loop.create_future()

        def submit_next() -> None:
            op = next(pending, None)
            if op is not None:
                backend.submit(OpCall(op, 1, root, root), done)

        def done(result: Outcome | BaseException) -> None:
            outcomes.append(result)
            if len(outcomes) == N:
                finished.set_result(None)
            else:
                submit_next()

        for _ in range(min(WORKERS, backend.max_workers)):
            submit_next()
        await finished

    try:
        t0 = time.perf_counter()
        loop.run_until_complete(drive())
        seconds = time.perf_counter() - t0
    finally:
        loop.close()
        loop_guard().shutdown()
    return seconds, outcomes


def _engine(backend: str) -> Variant:
    plan = _plan(backend)
    last = f"s{N - 1}" if backend == "fake" else f"w{N - 1}"

    def fn() -> Metrics:
        # Alone and with the engine back to back, twice, the best of each: a difference of
        # two timings taken apart would carry the machine's drift between them.
        alone, engine = [], []
        for _ in range(PAIRS):
            seconds, outcomes = _backend_alone(plan)
            ok = all(isinstance(o, Outcome) and o.status is truepar.Status.OK for o in outcomes)
            check(len(outcomes) == N and ok, "every call ok")
            alone.append(seconds)
            seconds, trace = timed(lambda: truepar.run(plan, checks=False))
            check(trace.ok and len(trace.spans) == N and last in trace.results, "run ok")
            engine.append(seconds)
        whole, again = timed(lambda: truepar.run(plan))
        check(again.ok, "run ok")
        return {
            "us": (min(engine) - min(alone)) / N * 1e6,
            "backend_us": min(alone) / N * 1e6,
            "whole_us": whole / N * 1e6,
        }

    note = (
        "backend alone: a virtual-clock timer, a worker slot and an outcome per op"
        if backend == "fake"
        else "backend alone: a loop turn per op, invoke's clocks, the python tool calling noop"
    )
    return Variant(f"truepar engine on {backend} (workers {WORKERS})", "truepar", fn, note=note)


def _record(k: int) -> tuple[int, int, int]:
    start = time.monotonic_ns()
    value = noop(k)
    return value, start, time.monotonic_ns()


def _graphlib() -> Metrics:
    def job() -> list[tuple[int, int, int]]:
        sorter: graphlib.TopologicalSorter[int] = graphlib.TopologicalSorter()
        for k in range(N):
            sorter.add(k)
        sorter.prepare()
        records = []
        while sorter.is_active():
            for k in sorter.get_ready():
                records.append(_record(k))
                sorter.done(k)
        return records

    seconds, records = timed(job)
    check(len(records) == N and sorted(r[0] for r in records) == list(range(N)), "records")
    return {"us": seconds / N * 1e6}


def _asyncio_tasks() -> Metrics:
    async def main() -> list[tuple[int, int, int]]:
        sem = asyncio.Semaphore(WORKERS)

        async def one(k: int) -> tuple[int, int, int]:
            async with sem:
                return _record(k)

        return await asyncio.gather(*(one(k) for k in range(N)))

    seconds, records = timed(lambda: asyncio.run(main()))
    check([r[0] for r in records] == list(range(N)), "records in order")
    return {"us": seconds / N * 1e6}


def _peer(label: str, fn: Callable[[], Metrics], note: str) -> Variant:
    return Variant(label, "peer", fn, note=note)


def benchmark() -> Benchmark:
    headline = _engine("fake")
    return Benchmark(
        name="scheduler",
        title=f"the engine's own cost per op, {N:,} instant ops",
        metric="us",
        unit="µs/op",
        better="lower",
        goal=Goal(10.0, "<=", (headline.label,)),
        fmt="{:.3g}",
        columns=[
            Column("backend_us", "backend µs/op", "{:.3g}"),
            Column("whole_us", "whole run() µs/op", "{:.3g}"),
        ],
        variants=[
            headline,
            _engine("sequential"),
            _peer(
                "graphlib.TopologicalSorter, a (value, start, end) record per op",
                _graphlib,
                "the standard library's DAG scheduler, calls inline, no event loop",
            ),
            _peer(
                f"asyncio: a task per op, {WORKERS} at a time, a record per op",
                _asyncio_tasks,
                "asyncio.run, Semaphore, gather",
            ),
        ],
        notes=[
            "truepar rows: (truepar.run(plan, checks=False) − the backend alone) / N, best of"
            f" {PAIRS} back-to-back pairs — what the engine adds: plan check, ready queue,"
            " dispatch, a span and a result per op, the trace",
            "backend µs/op: the backend alone; whole run() µs/op: truepar.run(plan), checks on",
            "peer rows: their whole job / N",
        ],
    )
