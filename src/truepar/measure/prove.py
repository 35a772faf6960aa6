"""``prove()``: is parallelism real on this interpreter and machine?

A fixed-work pure-Python kernel (:func:`truepar.measure.kernels.fixed_work`) runs as K tasks on
every backend, benched against the sequential baseline; three controls, whose verdicts are known
in advance, check that the verdicts themselves can be trusted here:

========================  ===========================================  ===================
experiment                what it is                                   expected verdict
========================  ===========================================  ===================
kernel/threads            pure Python in threads                       ``serialized`` with
                                                                       the GIL, ``parallel``
                                                                       free-threaded
kernel/processes          pure Python in worker processes              ``parallel``
kernel/async              pure Python on the event loop                ``serialized``
control: sleeps/threads   K × ``time.sleep``                           ``concurrent``
control: hashlib/threads  K × SHA-256 of 8 × 32 MiB (GIL released)     ``parallel``
control: decoy/threads    K × a loop bounded by the clock              ``suspect``
kernel (last)/ray         pure Python on Ray's warm actors, when Ray   ``parallel``
                          is installed — run after everything else
========================  ===========================================  ===================

(With a single core nothing can be ``parallel``: the expectations say ``serialized`` instead.)

Ray runs last, as an experiment of its own: its client leaves threads in this process, after
which the ``processes`` backend must start its workers from a fork server (slower), so Ray
measured beside it would make ``processes`` look worse than it is. Its first trial also starts
a local Ray instance (seconds, before the run's clock starts) unless ``$TRUEPAR_RAY_ADDRESS``
names a cluster.

Every task result is verified against a value computed once in this process before the runs:
a kernel checksum, a SHA-256 digest, the slept seconds. A wrong or missing result makes the
whole prove invalid, whatever the clock said. The decoy's turn count is not checked: its amount
of work is, by design, whatever the clock allowed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from truepar._version import __version__
from truepar.engine.environment import environment, gil_enabled
from truepar.errors import UsageError
from truepar.measure import kernels, noise
from truepar.measure.bench import bench
from truepar.measure.conclusion import conclude
from truepar.measure.experiments import (
    KERNEL_S,
    expected_verdict,
    experiment_results,
    experiments,
)
from truepar.measure.prove_results import ProveExperiment, ProveReport, ProveResult
from truepar.measure.verdict import DEFAULT_THRESHOLDS, Thresholds, digest
from truepar.plan.models import Plan

__all__ = (
    "ProveExperiment",
    "ProveReport",
    "ProveResult",
    "conclude",
    "expected_verdict",
    "experiment_results",
    "prove",
)


def prove(
    tasks: int = 4,
    repeat: int = 3,
    warmup: int = 1,
    *,
    kernel_s: float = KERNEL_S,
    kernel_n: int | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    on_progress: Callable[[str], None] | None = None,
    last: bool = True,
) -> ProveReport:
    """Run the kernel on every backend and the three controls, each against its sequential
    baseline (``repeat`` measured trials after ``warmup`` discarded ones), and judge them.

    ``kernel_n`` fixes the kernel's work; by default it is calibrated so that one task takes
    ``kernel_s`` seconds in this process. ``last=False`` leaves out the backends that would
    leave threads behind in this process (Ray), run otherwise after everything else.
    """
    if tasks < 2:
        raise UsageError(f"tasks must be at least 2 (tasks to run at once), not {tasks}")
    if repeat < 1:
        raise UsageError(f"repeat must be at least 1, not {repeat}")
    if warmup < 0:
        raise UsageError(f"warmup must be 0 or more, not {warmup}")
    say = on_progress or (lambda _: None)
    env = environment()
    gil, cores = gil_enabled(), env.cores_available
    load = noise.load_average()
    say("calibrating the kernel and computing the reference checksums")
    n = kernel_n if kernel_n is not None else kernels.calibrate(kernel_s)
    task_s = _time_one(n)
    catalogue = experiments(tasks, n, last=last)

    results: list[ProveResult] = []
    measured: list[ProveExperiment] = []
    warnings: list[str] = []
    complete = True
    for exp in catalogue:
        say(f"{exp.prefix}: {tasks} tasks on {', '.join(exp.backends)} (and sequentially)")
        plan = Plan(name=f"prove: {exp.prefix}", ops=exp.ops)
        report = bench(
            plan,
            backends=exp.backends,
            workers=(tasks,),
            repeat=repeat,
            warmup=warmup,
            thresholds=thresholds,
        )
        want = {op_id: digest(v) for op_id, v in exp.expected_values.items()}
        measured.append(ProveExperiment(exp.prefix, plan, report, want))
        results += experiment_results(exp.prefix, report, want, gil=gil, cores=cores, tasks=tasks)
        for w in report.warnings:
            if not exp.expected_values and "different results on different sequential runs" in w:
                continue  # the decoy: its turn count is meant to vary
            if w.startswith("the machine was already"):  # one load warning is enough
                if not any(x.startswith("the machine was already") for x in warnings):
                    warnings.append(w)
                continue
            warnings.append(f"{exp.prefix}: {w}")
        if not report.complete:
            complete = False
            break
    env_json = dict(env.to_json())
    env_json["load_average_1m"] = load
    env_json["truepar_version"] = __version__
    return ProveReport(
        results=tuple(results),
        conclusion=tuple(conclude(results, gil=gil, cores=cores, complete=complete)),
        environment=env_json,
        tasks=tasks,
        repeat=repeat,
        warmup=warmup,
        kernel_n=n,
        kernel_task_s=task_s,
        warnings=tuple(dict.fromkeys(warnings)),
        complete=complete,
        experiments=tuple(measured),
    )


def _time_one(n: int) -> float:
    t0 = time.perf_counter()
    kernels.fixed_work(n, 0)
    return time.perf_counter() - t0
