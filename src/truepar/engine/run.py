"""``run(plan)``: one execution of a plan on one backend → a :class:`RunTrace`.

This is where the run's totals are measured around the scheduler: wall time on the monotonic
clock with one wall-clock anchor, and CPU of this process, its reaped subprocesses and its
worker processes (whose CPU ``getrusage`` cannot see) as before/after differences.
Ctrl-C during a run cancels every op, kills their subprocesses and workers, and still returns
the trace, marked ``interrupted``; a second Ctrl-C raises ``KeyboardInterrupt`` at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import operator
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from truepar.backends import Backend, backend_class, create_backend
from truepar.backends.inline import loop_guard
from truepar.engine.context_budget import ContextBudget
from truepar.engine.environment import environment, own_cpu_s
from truepar.engine.observer import Observer
from truepar.engine.ratelimit import build_gates
from truepar.engine.scheduler import Scheduler
from truepar.engine.signals import Interrupt, interrupts
from truepar.errors import BackendUnavailable, TrueparWarning, UsageError
from truepar.plan.digest import plan_digest
from truepar.plan.graph import build_graph
from truepar.plan.load import load_plan, plan_from_dict
from truepar.plan.models import Plan
from truepar.preflight import BudgetDecision, check_plan
from truepar.records import RunStatus, RunTotals, RunTrace, Status
from truepar.tools.bounds import MAX_WORKERS


def as_plan(plan: Plan | str | Path | Mapping[str, Any]) -> Plan:
    """A checked plan from a Plan, a plan file path, or a dict shaped like a plan file."""
    if isinstance(plan, Plan):
        plan.check()
        return plan
    if isinstance(plan, str | Path):
        return load_plan(plan)
    return plan_from_dict(plan, source="<dict>", base_dir=Path.cwd())


def run(
    plan: Plan | str | Path | Mapping[str, Any],
    *,
    backend: str | None = None,
    workers: int | None = None,
    observer: Observer | None = None,
    backend_instance: Backend | None = None,
    checks: bool = True,
    budget: BudgetDecision | None = None,
) -> RunTrace:
    """Run a plan once and return its trace. Blocks; use :func:`arun` inside an event loop.

    ``backend``/``workers`` override the plan's defaults. Pass ``backend_instance`` to reuse
    warm workers across runs (the caller then owns and closes it).

    ``checks`` (on by default, as in ``truepar run``): first refuse a plan that cannot be made
    safe and check its live rate budgets (:func:`truepar.preflight.check_plan`; it raises
    :class:`~truepar.errors.PlanError` or :class:`~truepar.errors.BudgetError`). ``checks=False``
    is the one way to skip them — for a caller that has made them itself and passes what the
    budget check decided as ``budget`` (ops it dropped are recorded ``skipped``).
    """
    given = as_plan(plan)
    checked, budget = _checked(given, checks, budget)
    name, width = _choose(checked, backend, workers, backend_instance)
    main = backend_instance or create_backend(name, width)
    loop = main.new_event_loop()
    try:
        with interrupts(loop) as interrupt:
            trace = loop.run_until_complete(
                _run(
                    checked,
                    name,
                    width,
                    main,
                    observer or Observer(),
                    interrupt,
                    own_main=backend_instance is None,
                    budget=budget,
                )
            )
        return dataclasses.replace(trace, plan_sha256=plan_digest(given))
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
        loop_guard().shutdown()


async def arun(
    plan: Plan | str | Path | Mapping[str, Any],
    *,
    backend: str | None = None,
    workers: int | None = None,
    observer: Observer | None = None,
    backend_instance: Backend | None = None,
    checks: bool = True,
    budget: BudgetDecision | None = None,
) -> RunTrace:
    """:func:`run` for callers already inside an asyncio event loop (not the fake backend).

    The checks may wait for a budget to refill or ask GitHub: they run off the loop.
    """
    given = checked = as_plan(plan)
    if checks:
        checked, budget = await asyncio.to_thread(_checked, checked, checks, budget)
    name, width = _choose(checked, backend, workers, backend_instance)
    if backend_class(name).virtual_clock:
        raise UsageError(
            f"the {name} backend runs on a virtual clock in its own loop: use run(), not arun()"
        )
    main = backend_instance or create_backend(name, width)
    trace = await _run(
        checked,
        name,
        width,
        main,
        observer or Observer(),
        Interrupt(),
        own_main=backend_instance is None,
        budget=budget,
    )
    return dataclasses.replace(trace, plan_sha256=plan_digest(given))


def check_workers(width: int) -> None:
    """A worker count truepar accepts: 1 to :data:`MAX_WORKERS`, else :class:`UsageError`."""
    if width < 1:
        raise UsageError(f"workers must be at least 1, not {width}")
    if width > MAX_WORKERS:
        raise UsageError(
            f"workers {width} is more than truepar runs at once (at most {MAX_WORKERS:,}); "
            "ask for fewer"
        )


def _checked(
    plan: Plan, checks: bool, budget: BudgetDecision | None
) -> tuple[Plan, BudgetDecision | None]:
    """The plan to run and the budget decision: after the pre-run checks, when they are on."""
    if not checks:
        return plan, budget
    if budget is not None:
        raise UsageError("budget= is what checks=False callers pass; with checks on, leave it out")
    pre = check_plan(plan)
    return pre.plan, pre.decision


def _choose(
    plan: Plan, backend: str | None, workers: int | None, instance: Backend | None
) -> tuple[str, int]:
    name = instance.name if instance is not None else backend or plan.defaults.backend
    width = workers if workers is not None else plan.defaults.workers
    check_workers(width)
    if instance is None:
        create_backend(name, 1)  # fail now, with the list of names, if unknown
    if backend_class(name).virtual_clock and any(op.backend not in (None, name) for op in plan.ops):
        raise UsageError(f"the {name} backend runs on a virtual clock: it cannot be mixed")
    return name, width


async def _run(
    plan: Plan,
    name: str,
    width: int,
    main: Backend,
    observer: Observer,
    interrupt: Interrupt,
    *,
    own_main: bool,
    budget: BudgetDecision | None = None,
) -> RunTrace:
    graph = build_graph(plan)
    backends: dict[str, Backend] = {name: main}
    try:
        for op in plan.ops:
            if op.backend and op.backend not in backends:
                backends[op.backend] = create_backend(op.backend, width)
    except BackendUnavailable as exc:
        raise UsageError(str(exc)) from None
    effective = min(width, main.max_workers)
    if main.ceiling_note is not None and effective < width:
        warnings.warn(main.ceiling_note, TrueparWarning, stacklevel=2)
    gates = build_gates(plan, main.clock_ns, virtual_clock=main.virtual_clock)
    scheduler = Scheduler(
        plan,
        graph,
        backends,
        name,
        effective,
        observer,
        gates=gates,
        context=ContextBudget.from_plan(plan),
        skip=budget.skip if budget is not None else None,
    )
    interrupt.scheduler = scheduler
    interrupt.backends = tuple(backends.values())
    owned = [b for n, b in backends.items() if n != name or own_main]

    observer.run_started(len(plan.ops))
    try:
        parallel = _parallel_bound(plan, backends, name, effective)
        for b in owned:
            # Before the clock starts: what outlives the run (a connection to a cluster, warm
            # workers kept for later runs) is not part of it.
            await b.prepare(parallel[b.name])
        cpu0 = own_cpu_s() + sum(b.worker_cpu_s() for b in backends.values())
        anchor = time.time()
        start_ns = main.clock_ns()
        for b in owned:
            await b.start(parallel[b.name])
        await scheduler.run()
        # The run ends when its last op does; closing idle workers afterwards is not part of it.
        end_ns = main.clock_ns()
        if main.measures_real_cpu:
            cpu = own_cpu_s() + sum(b.worker_cpu_s() for b in backends.values()) - cpu0
        else:
            cpu = sum(s.cpu_s or 0.0 for s in scheduler.spans)
    except asyncio.CancelledError:
        scheduler.stop("cancelled", interrupted=True)
        raise
    finally:
        for gate in gates.values():
            gate.close()
        for b in owned:
            await b.aclose()
    observer.run_finished()
    scheduler.settle_abandoned(end_ns)
    trace = _trace(plan, name, effective, scheduler, anchor, start_ns, end_ns, cpu, backends)
    if scheduler.interrupted and interrupt.signal_name is not None:
        trace = dataclasses.replace(trace, interrupted_by=interrupt.signal_name)
    if scheduler.adaptive is not None:
        trace = dataclasses.replace(trace, adaptive=scheduler.adaptive.to_json())
    nodes = [node for b in backends.values() for node in b.nodes()]
    if nodes:
        trace = dataclasses.replace(trace, nodes=tuple(nodes))
    return _with_budgets(trace, plan, scheduler, budget)


def _parallel_bound(
    plan: Plan, backends: Mapping[str, Backend], default: str, workers: int
) -> dict[str, int]:
    """Per backend, at most how many of the plan's ops can run on it at once: its ops, with
    those of a capped resource counted up to the cap, and never more than ``workers``."""
    free: dict[str, int] = dict.fromkeys(backends, 0)
    capped: dict[tuple[str, str], int] = {}
    for op in plan.ops:
        where = op.backend or default
        resource = plan.resources.get(op.resource) if op.resource is not None else None
        if resource is None or resource.max_concurrent is None:
            free[where] += 1
        else:
            key = (where, str(op.resource))
            capped[key] = min(resource.max_concurrent, capped.get(key, 0) + 1)
    for (where, _), n in capped.items():
        free[where] += n
    return {where: min(n, workers, backends[where].max_workers) for where, n in free.items()}


def _with_budgets(
    trace: RunTrace, plan: Plan, scheduler: Scheduler, budget: BudgetDecision | None
) -> RunTrace:
    """The budgets' part of the trace: the pre-dispatch check, the context budget, a handoff."""
    ctx = scheduler.context
    if budget is None and ctx is None:
        return trace
    handoff = None
    if ctx is not None and scheduler.not_run:
        handoff = ctx.handoff(plan.ops, trace.results, scheduler.not_run)
    return dataclasses.replace(
        trace,
        budget=dict(budget.report) if budget is not None else None,
        context=ctx.to_json() if ctx is not None else None,
        handoff=handoff,
    )


#: Spans in the trace: by start, then op, then attempt.
_SPAN_ORDER = operator.attrgetter("start_ns", "op_id", "attempt")


def _trace(
    plan: Plan,
    name: str,
    workers: int,
    scheduler: Scheduler,
    anchor: float,
    start_ns: int,
    end_ns: int,
    cpu_s: float,
    backends: Mapping[str, Backend],
) -> RunTrace:
    done = scheduler.results
    results = {op_id: done[op_id] for op_id in scheduler.graph.ids if op_id in done}
    counts = dict.fromkeys(Status, 0)
    for r in results.values():
        counts[r.status] += 1
    ok = counts[Status.OK]
    if scheduler.interrupted:
        status = RunStatus.INTERRUPTED
    elif ok == len(plan.ops):
        status = RunStatus.OK
    else:
        status = RunStatus.FAILED
    spans = tuple(sorted(scheduler.spans, key=_SPAN_ORDER))
    totals = RunTotals(
        wall_s=(end_ns - start_ns) / 1e9,
        cpu_s=cpu_s,
        sum_op_s=sum(s.duration_s for s in spans),
        ops=len(plan.ops),
        ok=ok,
        failed=counts[Status.FAILED] + counts[Status.TIMEOUT] + counts[Status.CRASHED],
        skipped=counts[Status.SKIPPED],
        cancelled=counts[Status.CANCELLED],
    )
    return RunTrace(
        plan_name=plan.name,
        backend=name,
        workers=workers,
        status=status,
        wall_anchor_unix_s=anchor,
        start_ns=start_ns,
        end_ns=end_ns,
        spans=spans,
        results=results,
        totals=totals,
        environment=environment(),
        waits=scheduler.graph.waits(),
        abandoned_threads=sum(b.abandoned_threads for b in backends.values()),
    )
