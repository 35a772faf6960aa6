"""The experiments ``prove`` runs, and what each must give on this interpreter and machine.

A fixed-work pure-Python kernel runs as K tasks on every backend that runs real ops; three
controls, whose verdicts are known in advance, check that the verdicts can be trusted here (see
:mod:`truepar.measure.prove` for the table). What a backend should give is read from its
capabilities (``cpu_parallel``, ``event_loop``), never from its name.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from truepar.backends import backend_class, backend_names, known_backend_class
from truepar.errors import BackendUnavailable
from truepar.measure import kernels
from truepar.measure.prove_results import ProveResult
from truepar.measure.results import BenchReport, ConfigResult, Sample
from truepar.measure.verdict import Verdict
from truepar.tools import PythonOp

#: Seconds one kernel task takes in-process (``n`` is calibrated to it).
KERNEL_S = 0.25
#: Each sleep control task sleeps this long.
SLEEP_S = 0.2
#: The hashlib control: each task hashes a buffer of this many MiB this many times: ~0.23 s on a
#: 2-core CI machine. At 4 rounds (~0.11 s) a neighbour's burst of work could blur the verdict.
HASH_MIB, HASH_ROUNDS = 32, 8
#: Each decoy task loops this long by the clock.
DECOY_S = 0.25
#: The prefix of the kernel's run on backends that leave threads in this process (Ray): it
#: comes after every other experiment, so it cannot change how they run.
LAST = "kernel (last)"


@dataclasses.dataclass(frozen=True, slots=True)
class _Experiment:
    prefix: str
    ops: tuple[PythonOp, ...]
    backends: tuple[str, ...]
    #: Per op id, the value every run must return (ops not listed are not checked).
    expected_values: Mapping[str, Any]


def expected_verdict(
    experiment: str, backend: str, *, gil: bool, cores: int, tasks: int
) -> Verdict:
    """The verdict this interpreter and machine should give ``experiment`` on ``backend``."""
    multi = cores >= 2
    if experiment == "sleeps":
        return "concurrent"
    if experiment == "hashlib":
        return "parallel" if multi else "serialized"
    if experiment == "decoy":
        # Without a GIL and with a core per task, a time-bounded loop loses no work.
        return "suspect" if gil or tasks > cores else "parallel"
    # the kernel: what the backend can do with pure-Python CPU work (an unknown one: assume all)
    cls = known_backend_class(backend)
    parallel = cls.cpu_parallel if cls is not None else "yes"
    if parallel == "no" or (parallel == "without_gil" and gil):
        return "serialized"
    return "parallel" if multi else "serialized"


def experiments(tasks: int, n: int, *, last: bool = True) -> list[_Experiment]:
    """The kernel on every backend of :func:`kernel_backends`, then the three controls (on
    ``threads``: they are about code sharing one interpreter), then — with ``last`` — the
    kernel again on the backends of :func:`last_backends` (Ray), whose client threads would
    otherwise turn the ``processes`` backend from fork to a fork server for every run after."""

    def ops(
        kind: str, fn: Callable[..., Any], args: Callable[[int], tuple[Any, ...]]
    ) -> tuple[PythonOp, ...]:
        return tuple(PythonOp(id=f"{kind}{i}", call=fn, args=args(i)) for i in range(tasks))

    kernel = ops("kernel", kernels.fixed_work, lambda i: (n, i))
    sleeps = ops("sleep", kernels.sleep_task, lambda i: (SLEEP_S,))
    hashes = ops("hash", kernels.hash_task, lambda i: (HASH_MIB, HASH_ROUNDS))
    decoys = ops("decoy", kernels.decoy_task, lambda i: (DECOY_S,))
    sha = kernels.hash_task(HASH_MIB, HASH_ROUNDS)  # also builds the buffer before any run
    checksums = {op.id: kernels.fixed_work(n, i) for i, op in enumerate(kernel)}
    out = [
        _Experiment("kernel", kernel, kernel_backends(), checksums),
        _Experiment("control: sleeps", sleeps, ("threads",), {op.id: SLEEP_S for op in sleeps}),
        _Experiment("control: hashlib", hashes, ("threads",), {op.id: sha for op in hashes}),
        _Experiment("control: decoy", decoys, ("threads",), {}),
    ]
    after = last_backends() if last else ()
    if after:
        out.append(_Experiment(LAST, kernel, after, checksums))
    return out


def kernel_backends() -> tuple[str, ...]:
    """Every backend that runs real ops here, but the baseline itself: the built-in ones and
    any plug-in that loads — except one that leaves threads behind in this process (Ray's
    client), which would slow the ``processes`` experiment that follows it."""
    out = []
    for name in backend_names():
        try:
            cls = backend_class(name)
        except BackendUnavailable:
            continue  # a plug-in whose dependency is missing here
        if cls.runs_real_ops and cls.baseline != name and not cls.leaves_threads:
            out.append(name)
    return tuple(out)


def last_backends() -> tuple[str, ...]:
    """The backends that run real ops here but leave threads behind in this process (Ray's
    client): :func:`experiments` runs them last, when nothing else is left to measure."""
    out = []
    for name in backend_names():
        try:
            cls = backend_class(name)
        except BackendUnavailable:
            continue  # a plug-in whose dependency is missing here
        if cls.runs_real_ops and cls.baseline != name and cls.leaves_threads:
            out.append(name)
    return tuple(out)


def count_wrong(
    samples: Sequence[Sample], base: str, backend: str, workers: int, want: Mapping[str, str]
) -> tuple[int, int]:
    """(checked, wrong): every result of this configuration and of the ``base`` baseline,
    warmups too, against the digests in ``want``."""
    checked = wrong = 0
    for s in samples:
        if (s.backend, s.workers) not in ((backend, workers), (base, 1)):
            continue
        for op_id, d in want.items():
            checked += 1
            if s.op_status.get(op_id) != "ok" or s.op_digest.get(op_id) != d:
                wrong += 1
    return checked, wrong


def result_name(prefix: str, backend: str, free_threaded: bool) -> str:
    cls = known_backend_class(backend)
    gil_bound = cls is not None and cls.cpu_parallel == "without_gil"
    label = backend + (" (free-threaded)" if gil_bound and free_threaded else "")
    return f"{prefix}/{label}"


def experiment_results(
    prefix: str,
    report: BenchReport,
    want: Mapping[str, str],
    *,
    gil: bool,
    cores: int,
    tasks: int,
) -> list[ProveResult]:
    """One experiment's results, judged against what this GIL state, core count and task count
    should give, every task result checked against the digests in ``want``. Evidence is
    recomputed with the same function."""
    kind = prefix.removeprefix("control: ")
    return [
        _result(
            r,
            report,
            result_name(prefix, r.backend, not gil),
            expected_verdict(kind, r.backend, gil=gil, cores=cores, tasks=tasks),
            want,
        )
        for r in report.results
    ]


def _result(
    r: ConfigResult,
    report: BenchReport,
    name: str,
    expected: Verdict,
    want: Mapping[str, str],
) -> ProveResult:
    base = report.baseline.backend if report.baseline else "sequential"
    checked, wrong = count_wrong(report.samples, base, r.backend, r.workers, want)
    failed = r.errors > 0 or bool(r.failed_only_here)
    return ProveResult(
        name=name,
        backend=r.backend,
        workers=r.workers,
        speedup=r.speedup,
        speedup_ci=r.speedup_ci,
        cores_used=r.cores_used,
        work_ratio=r.work_ratio,
        wall_s=r.wall_s,
        baseline_wall_s=report.baseline.wall_s if report.baseline else math.nan,
        verdict=r.verdict,
        reasons=r.reasons,
        expected=expected,
        checksums_ok=wrong == 0 and not failed,
        checked=checked,
        wrong=wrong,
    )
