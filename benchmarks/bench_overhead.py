"""6. Overhead on 1 ms ops: what recording and scheduling an op cost, next to 1 ms of work.

The cost is measured per op around a no-op call, where nothing but overhead exists, and then
expressed as a share of a 1 ms op (the goal: ≤ 1%). Measuring it beside 1 ms of real work instead
drowns it: wall and CPU time of 1,000 × 1 ms on a shared 2-core VM vary by ±3% between
repetitions, several times the effect.

- *truepar instrumentation*: each call recorded as truepar records it — ``invoke`` (CPU and
  monotonic clocks around the call, the tool's output, the outcome record) plus the span —
  without the scheduler;
- *truepar run, sequential*: the whole engine (plan, scheduler, event loop, spans) on the
  sequential backend, per op;
- the peer: ``ThreadPoolExecutor(1)``, one ``submit(...).result()`` per call (a dispatcher that
  records nothing).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import truepar
from common import Benchmark, Column, Goal, Metrics, Variant, check, timed
from kernels import noop
from truepar.backends.base import OpCall
from truepar.backends.invoke import invoke
from truepar.records import Span, estimate_tokens
from truepar.tools.base import ToolContext

CALLS = 10_000
OP_S = 0.001  # the op length the goal is stated for
HERE = Path(__file__).resolve().parent


class _Plain:
    per_call_s = 0.0


def _metrics(seconds: float) -> Metrics:
    per_op = seconds / CALLS - _Plain.per_call_s
    return {"overhead_pct": per_op / OP_S * 100, "per_op_us": per_op * 1e6}


def _plain() -> Metrics:
    seconds, values = timed(lambda: [noop(k) for k in range(CALLS)])
    check(values[-1] == CALLS - 1, "values")
    _Plain.per_call_s = seconds / CALLS
    return {"overhead_pct": 0.0, "per_op_us": 0.0}


def _instrumented() -> Metrics:
    op = truepar.PythonOp(id="w", call=noop, args=(7,))
    pid = os.getpid()

    def job() -> list[object]:
        values = []
        for k in range(CALLS):
            call = OpCall(op, 1, HERE, HERE)
            out = invoke(call, ToolContext(HERE, HERE), 0)
            Span(
                op_id=op.id,
                attempt=k,
                tool=op.tool,
                backend="sequential",
                status=out.status,
                ready_ns=out.start_ns,
                start_ns=out.start_ns,
                end_ns=out.end_ns,
                pid=pid,
                thread_id=threading.get_native_id(),
                host="host",
                worker=0,
                cpu_s=out.cpu_s,
                child_cpu_s=out.child_cpu_s,
                bytes_out=out.bytes_out,
                tokens_out=estimate_tokens(out.bytes_out),
                summary=out.summary,
            )
            values.append(out.value)
        return values

    seconds, values = timed(job)
    check(values[-1] == 7, "values")
    return _metrics(seconds)


def _run() -> Metrics:
    plan = truepar.Plan(
        name="overhead",
        ops=[truepar.PythonOp(id=f"w{k}", call=noop, args=(k,)) for k in range(CALLS)],
        base_dir=HERE,
    )
    seconds, trace = timed(lambda: truepar.run(plan, backend="sequential"))
    check(trace.ok and trace.results[f"w{CALLS - 1}"].value == CALLS - 1, "run ok")
    return _metrics(seconds)


def _tpe() -> Metrics:
    def job() -> list[int]:
        with ThreadPoolExecutor(1) as ex:
            return [ex.submit(noop, k).result() for k in range(CALLS)]

    seconds, values = timed(job)
    check(values[-1] == CALLS - 1, "values")
    return _metrics(seconds)


def benchmark() -> Benchmark:
    instrumented = Variant("truepar instrumentation (invoke + span)", "truepar", _instrumented)
    run = Variant(
        "truepar run, sequential backend",
        "truepar",
        _run,
        note="plan check, scheduler, event loop and spans, per op",
    )
    return Benchmark(
        name="overhead",
        title=f"per-op overhead as a share of a 1 ms op ({CALLS:,} no-op calls)",
        metric="overhead_pct",
        unit="% of a 1 ms op",
        better="lower",
        goal=Goal(1.0, "<=", (instrumented.label, run.label)),
        fmt="{:.2f}",
        columns=[Column("per_op_us", "µs/op", "{:.1f}")],
        variants=[
            Variant(
                "plain loop of no-op calls (the floor)",
                "floor",
                _plain,
                note="measured first in each repetition; its per-call time is subtracted",
            ),
            instrumented,
            run,
            Variant("ThreadPoolExecutor(1).submit(...).result() per call", "peer", _tpe),
        ],
        notes=["% = (µs per op − plain µs per call) / 1,000 µs"],
    )
