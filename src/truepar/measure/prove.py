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
========================  ===========================================  ===================

(With a single core nothing can be ``parallel``: the expectations say ``serialized`` instead.)

Every task result is verified against a value computed once in this process before the runs:
a kernel checksum, a SHA-256 digest, the slept seconds. A wrong or missing result makes the
whole prove invalid, whatever the clock said. The decoy's turn count is not checked: its amount
of work is, by design, whatever the clock allowed.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import truepar
from truepar.engine.environment import environment, free_threaded_build, gil_enabled
from truepar.measure import kernels, noise
from truepar.measure.bench import BenchReport, bench
from truepar.measure.results import ConfigResult, Sample
from truepar.measure.verdict import DEFAULT_THRESHOLDS, Thresholds, Verdict, digest
from truepar.records import finite
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


@dataclasses.dataclass(frozen=True, slots=True)
class ProveResult:
    """One backend (or control) against its sequential baseline, and whether it came out as
    this interpreter and machine should make it come out."""

    name: str
    backend: str
    workers: int
    speedup: float
    speedup_ci: tuple[float, float]
    cores_used: float
    work_ratio: float | None
    wall_s: float
    baseline_wall_s: float
    verdict: Verdict | None
    reasons: tuple[str, ...]
    expected: Verdict
    #: Every task result of this configuration and of its baseline matched the value computed
    #: in-process (``True`` where nothing is checked: the decoy).
    checksums_ok: bool
    #: Task results checked, and how many of them were wrong or missing.
    checked: int
    wrong: int

    @property
    def as_expected(self) -> bool:
        return self.verdict == self.expected

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "backend": self.backend,
            "workers": self.workers,
            "speedup": self.speedup,
            "speedup_ci": list(self.speedup_ci),
            "cores_used": self.cores_used,
            "work_ratio": self.work_ratio,
            "wall_s": self.wall_s,
            "baseline_wall_s": self.baseline_wall_s,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "expected": self.expected,
            "as_expected": self.as_expected,
            "checksums_ok": self.checksums_ok,
            "checked": self.checked,
            "wrong": self.wrong,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class ProveExperiment:
    """One experiment as measured: its plan, its bench, and the digests every task result had
    to match (what evidence needs to recompute the verdicts and the checksum counts)."""

    prefix: str
    plan: truepar.Plan
    bench: BenchReport
    expected_digests: Mapping[str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class ProveReport:
    results: tuple[ProveResult, ...]
    conclusion: tuple[str, ...]
    environment: Mapping[str, Any]
    tasks: int
    repeat: int
    warmup: int
    #: The kernel's ``n`` and the seconds one task took in-process when it was calibrated.
    kernel_n: int
    kernel_task_s: float
    warnings: tuple[str, ...]
    #: False when interrupted (Ctrl-C): ``results`` holds the experiments that finished.
    complete: bool
    #: Every experiment's plan and bench, raw samples included (for evidence).
    experiments: tuple[ProveExperiment, ...] = ()

    @property
    def checksums_ok(self) -> bool:
        return all(r.checksums_ok for r in self.results)

    @property
    def ok(self) -> bool:
        """Every verdict as expected, every checksum verified, nothing interrupted."""
        return self.complete and all(r.as_expected and r.checksums_ok for r in self.results)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = finite(
            {
                "format": "truepar.prove",
                "format_version": 1,
                "ok": self.ok,
                "complete": self.complete,
                "tasks": self.tasks,
                "repeat": self.repeat,
                "warmup": self.warmup,
                "kernel": {
                    "function": "truepar.measure.kernels:fixed_work",
                    "n": self.kernel_n,
                    "task_s": self.kernel_task_s,
                },
                "checksums_ok": self.checksums_ok,
                "results": [r.to_json() for r in self.results],
                "conclusion": list(self.conclusion),
                "warnings": list(self.warnings),
                "environment": dict(self.environment),
            }
        )
        return data


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
    # the kernel
    if backend == "async":
        return "serialized"
    if backend == "threads" and gil:
        return "serialized"
    return "parallel" if multi else "serialized"


def _experiments(tasks: int, n: int, threads: tuple[str, ...]) -> list[_Experiment]:
    def ops(
        kind: str, fn: Callable[..., Any], args: Callable[[int], tuple[Any, ...]]
    ) -> tuple[PythonOp, ...]:
        return tuple(PythonOp(id=f"{kind}{i}", call=fn, args=args(i)) for i in range(tasks))

    kernel = ops("kernel", kernels.fixed_work, lambda i: (n, i))
    sleeps = ops("sleep", kernels.sleep_task, lambda i: (SLEEP_S,))
    hashes = ops("hash", kernels.hash_task, lambda i: (HASH_MIB, HASH_ROUNDS))
    decoys = ops("decoy", kernels.decoy_task, lambda i: (DECOY_S,))
    sha = kernels.hash_task(HASH_MIB, HASH_ROUNDS)  # also builds the buffer before any run
    return [
        _Experiment(
            "kernel",
            kernel,
            threads,
            {op.id: kernels.fixed_work(n, i) for i, op in enumerate(kernel)},
        ),
        _Experiment("control: sleeps", sleeps, ("threads",), {op.id: SLEEP_S for op in sleeps}),
        _Experiment("control: hashlib", hashes, ("threads",), {op.id: sha for op in hashes}),
        _Experiment("control: decoy", decoys, ("threads",), {}),
    ]


def _kernel_backends() -> tuple[str, ...]:
    out: tuple[str, ...] = ("threads", "processes", "async")
    if "ray" in truepar.BACKENDS and importlib.util.find_spec("ray") is not None:
        out += ("ray",)
    return out


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
    label = backend + (" (free-threaded)" if backend == "threads" and free_threaded else "")
    return f"{prefix}/{label}"


def prove(
    tasks: int = 4,
    repeat: int = 3,
    warmup: int = 1,
    *,
    kernel_s: float = KERNEL_S,
    kernel_n: int | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    on_progress: Callable[[str], None] | None = None,
) -> ProveReport:
    """Run the kernel on every backend and the three controls, each against its sequential
    baseline (``repeat`` measured trials after ``warmup`` discarded ones), and judge them.

    ``kernel_n`` fixes the kernel's work; by default it is calibrated so that one task takes
    ``kernel_s`` seconds in this process.
    """
    if tasks < 2:
        raise truepar.UsageError(f"--tasks must be at least 2 (tasks to run at once), not {tasks}")
    if repeat < 1:
        raise truepar.UsageError(f"--repeat must be at least 1, not {repeat}")
    if warmup < 0:
        raise truepar.UsageError(f"--warmup must be 0 or more, not {warmup}")
    say = on_progress or (lambda _: None)
    env = environment()
    gil, cores = gil_enabled(), env.cores_available
    load = noise.load_average()
    say("calibrating the kernel and computing the reference checksums")
    n = kernel_n if kernel_n is not None else kernels.calibrate(kernel_s)
    task_s = _time_one(n)
    experiments = _experiments(tasks, n, _kernel_backends())

    results: list[ProveResult] = []
    measured: list[ProveExperiment] = []
    warnings: list[str] = []
    complete = True
    for exp in experiments:
        say(f"{exp.prefix}: {tasks} tasks on {', '.join(exp.backends)} (and sequentially)")
        plan = truepar.Plan(name=f"prove: {exp.prefix}", ops=exp.ops)
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
    env_json["truepar_version"] = truepar.__version__
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


def conclude(
    results: Sequence[ProveResult], *, gil: bool, cores: int, complete: bool = True
) -> list[str]:
    """The plain-language conclusion: one line per kernel backend, one for the controls, and
    an overall line."""
    lines: list[str] = []
    kernel = [r for r in results if r.name.startswith("kernel/")]
    controls = [r for r in results if r.name.startswith("control: ")]
    for r in kernel:
        lines.append(_backend_line(r, gil=gil, cores=cores))
    if controls:
        marks = ", ".join(
            f"{r.name.removeprefix('control: ').split('/')[0]} {r.verdict}"
            + ("" if r.as_expected else f" (expected {r.expected})")
            for r in controls
        )
        missed = [r for r in controls if not r.as_expected]
        if missed:
            lines.append(
                f"controls: {marks} — {len(missed)} control(s) did not come out as they must: "
                "the verdicts cannot be trusted on this machine right now (busy? try --repeat 5)"
            )
        else:
            lines.append(
                f"controls: {marks} — as expected: the verdicts tell waiting, GIL-free C code "
                "and a time-bounded fake apart here"
            )
    lines.append(_overall(results, gil=gil, cores=cores, complete=complete))
    return lines


def _backend_line(r: ProveResult, *, gil: bool, cores: int) -> str:
    backend = r.name.removeprefix("kernel/")
    numbers = f"{r.cores_used:.2f} cores used, {r.speedup:.2f}× with {r.workers} tasks"
    if not r.checksums_ok:
        return (
            f"{backend}: INVALID — {r.wrong} of {r.checked} task results were wrong or missing "
            f"(verdict {r.verdict} does not count); {numbers}"
        )
    if not r.as_expected:
        why = r.reasons[0] if r.reasons else ""
        return f"{backend}: {r.verdict}, NOT the expected {r.expected} — {why}; {numbers}"
    if r.verdict == "parallel":
        what = "free-threaded CPython with the GIL off: " if r.backend == "threads" else ""
        return (
            f"{backend}: parallel — {what}{r.cores_used:.2f} cores used, "
            f"{r.speedup:.2f}× on {cores} core(s)"
        )
    if r.backend == "threads":
        why = "this CPython has the GIL enabled" if gil else "only one core is available"
        if gil and free_threaded_build():
            why = "this is a free-threaded build, but the GIL is enabled (PYTHON_GIL=1?)"
    elif r.backend == "async":
        why = "pure-Python work blocks the event loop: one task at a time"
    else:
        why = "only one core is available" if cores < 2 else "no clear gain"
    return f"{backend}: {r.verdict} — {why}; {numbers}"


def _overall(results: Sequence[ProveResult], *, gil: bool, cores: int, complete: bool) -> str:
    if not complete:
        return "overall: INTERRUPTED — only the experiments above finished; nothing is proven"
    bad = [r for r in results if not r.checksums_ok]
    if bad:
        wrong = sum(r.wrong for r in bad)
        return (
            f"overall: INVALID — {wrong} task result(s) did not match the value computed "
            f"in-process ({', '.join(r.name for r in bad)}): these measurements prove nothing"
        )
    missed = [r for r in results if not r.as_expected]
    if missed:
        return (
            f"overall: NOT AS EXPECTED — {', '.join(r.name for r in missed)}: see the reasons; "
            "a busy machine or short tasks blur verdicts (check the load, use --repeat 5)"
        )
    real = [r for r in results if r.name.startswith("kernel/") and r.verdict == "parallel"]
    if not real:
        return (
            f"overall: Python code does not run in parallel here ({cores} core(s)); "
            "every verdict as expected"
        )
    best = max(real, key=lambda r: r.speedup)
    with_ = " and ".join(r.backend for r in real)
    note = "" if not gil else ", not with threads (the GIL)"
    return (
        f"overall: parallelism is real here — Python code runs in parallel with {with_} "
        f"(best {best.speedup:.2f}× on {cores} cores){note}; every verdict as expected, "
        "every checksum verified"
    )
