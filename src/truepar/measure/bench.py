"""``bench(plan)``: trials × configurations → statistics → a verdict per configuration.

Every trial runs the sequential baseline and each configuration once, in an order rotated from
one trial to the next, so that drift of the machine (a frequency change, a neighbour's job) hits
all of them alike; speedups are then paired within trials. Warmup trials are run and discarded.
Without an exact ``repeat``, each configuration stops once its speedup interval is tight
(:mod:`truepar.measure.early_stop`), and the report records which stopped early and why.
Ctrl-C stops the bench between or during runs and returns what was measured, marked incomplete.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from truepar._version import __version__
from truepar.backends import backend_class, baseline_for
from truepar.engine.environment import environment
from truepar.engine.run import as_plan, run
from truepar.errors import UsageError
from truepar.measure import noise, usl
from truepar.measure.early_stop import (
    DEFAULT_STOP_RULE,
    BenchProgress,
    Config,
    Schedule,
    StopRule,
)
from truepar.measure.results import BenchReport, ConfigResult, Sample
from truepar.measure.stats import bootstrap_median_ci, cv, median, paired_speedup
from truepar.measure.verdict import DEFAULT_THRESHOLDS, Measures, Thresholds, decide, work_ratio
from truepar.plan.graph import build_graph
from truepar.plan.models import Plan
from truepar.preflight import check_plan
from truepar.records import RunStatus, RunTrace

# The records of a bench live in results.py; they are re-exported here for callers.
__all__ = (
    "BenchReport",
    "ConfigResult",
    "Sample",
    "bench",
    "configurations",
    "summarize",
    "worker_counts",
)


def worker_counts(plan: Plan, workers: Sequence[int] | None) -> tuple[int, ...]:
    """The worker counts a bench measures: those asked for, else the plan's own alone."""
    return (plan.defaults.workers,) if workers is None else tuple(workers)


def configurations(backends: Sequence[str], workers: Sequence[int]) -> list[Config]:
    """The baseline first, then every backend × worker count (the baseline not twice)."""
    if not backends:
        raise UsageError("a bench needs at least one backend")
    if not workers or any(w < 1 for w in workers):
        raise UsageError(f"worker counts must be at least 1, not {list(workers)}")
    out: list[Config] = [baseline_for(backends)]
    for b in dict.fromkeys(backends):
        for w in dict.fromkeys(workers):
            if (b, w) not in out:
                out.append((b, w))
    return out


def bench(
    plan: Plan | str | Path | Mapping[str, Any],
    *,
    backends: Sequence[str] = ("threads", "processes", "async"),
    workers: Sequence[int] | None = None,
    repeat: int | None = None,
    warmup: int = 0,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    on_config: Callable[[BenchReport], None] | None = None,
    cores: int | None = None,
    checks: bool = True,
    stop_rule: StopRule = DEFAULT_STOP_RULE,
    on_progress: Callable[[BenchProgress], None] | None = None,
) -> BenchReport:
    """Measure ``plan`` sequentially and on every backend × worker count; judge each.

    ``workers``: the worker counts to measure every backend at; by default the plan's own
    (``defaults.workers``) alone — the question a bench answers first, and a small plan benched
    in seconds. Several counts (``(2, 4, 8)``) give a scaling curve; the sequential baseline is
    every backend's 1-worker point, so ``1`` measures what a backend costs on one worker.
    ``repeat``: exactly that many measured trials per configuration. Without it (the default)
    ``stop_rule`` decides: at least its ``min_trials``, then a configuration stops once its
    speedup interval is tight, at most ``max_trials`` (:mod:`truepar.measure.early_stop`); the
    report's ``early_stop`` says which stopped early and why.
    ``on_config`` is called with the report so far after every run, so a caller can save
    partial results (the report says ``complete=False`` until the last run is in).
    ``warmup``: discarded trials of every configuration first; with 0, one unmeasured run of the
    baseline and of each other backend at its most workers takes the one-time costs instead.
    ``on_progress`` is called before every run with where the bench is and the time left.
    ``cores`` is the cores available to the physical lower bound (default: this machine's).
    ``checks``: the pre-run checks of :func:`truepar.run`, made once for the whole bench.
    """
    checked = as_plan(plan)
    if repeat is not None and repeat < 1:
        raise UsageError(f"repeat must be at least 1, not {repeat}")
    if warmup < 0:
        raise UsageError(f"warmup must be 0 or more, not {warmup}")
    if len(checked.ops) < 2:
        raise UsageError(f"a bench needs at least 2 ops; {checked.source} has {len(checked.ops)}")
    configs = configurations(backends, worker_counts(checked, workers))
    budget = None
    if checks:
        pre = check_plan(checked)
        checked, budget = pre.plan, pre.decision
    load = noise.load_average()
    samples: list[Sample] = []
    schedule = Schedule(configs, warmup, repeat, stop_rule, thresholds.min_speedup)

    def report(complete: bool) -> BenchReport:
        out = summarize(
            checked, configs, samples, thresholds, load, schedule.cap, warmup, complete, cores
        )
        return dataclasses.replace(out, early_stop=schedule.record())

    def one_run(trial: int, left: Sequence[Config]) -> RunTrace:
        if on_progress is not None:
            on_progress(schedule.progress(trial, left))
        backend, width = left[0]
        trace = run(checked, backend=backend, workers=width, checks=False, budget=budget)
        if trace.status is not RunStatus.INTERRUPTED:
            schedule.ran(left[0], trial, trace.totals.wall_s, warmup=trial < warmup)
        return trace

    try:
        if warmup == 0:
            # Without a warmup trial, the first run pays one-time costs (imports, the first
            # import of each op's module, cold caches) that would land on whichever
            # configuration comes first — the baseline, in trial 0 — and tilt every ratio.
            # One unmeasured baseline run takes them, and one run of each other backend at its
            # most workers takes that backend's (its modules, a fork server, its first pool):
            # every later run of a backend starts its own workers, so a run per configuration
            # (a warmup trial) would take no more than these and cost a whole trial.
            primers = _primers(configs)
            for i in range(len(primers)):
                primed = one_run(-1, primers[i:])
                if primed.status is RunStatus.INTERRUPTED:
                    return report(complete=False)
                # Kept as warmup samples (trial -1): never in the statistics, but the baseline's
                # results tell an op that answers differently on every run from one that
                # changed under load.
                samples.append(Sample.of(-1, True, primed))
        for trial in schedule.trials():
            order = schedule.order(trial)
            if not order:
                break  # every configuration has stopped early
            for i in range(len(order)):
                trace = one_run(trial, order[i:])
                if trace.status is RunStatus.INTERRUPTED:
                    return report(complete=False)
                samples.append(Sample.of(trial, trial < warmup, trace))
                if on_config is not None:
                    on_config(report(complete=False))
            schedule.end_trial(trial)
    except KeyboardInterrupt:
        return report(complete=False)
    return report(complete=True)


def _primers(configs: Sequence[Config]) -> list[Config]:
    """The baseline, then each other backend at its most workers: what ``warmup=0`` runs first.

    A backend that leaves threads alive in this process (Ray's client) is primed before the
    others: from then on ``processes`` starts its workers from a fork server, and that server's
    start (a second or so) belongs in its priming run, not in its first measured one.
    """
    base = configs[0]
    widest: dict[str, int] = {}
    for backend, width in configs[1:]:
        if backend != base[0]:
            widest[backend] = max(width, widest.get(backend, 0))
    order = sorted(widest.items(), key=lambda c: not backend_class(c[0]).leaves_threads)
    return [base, *order]


def _by_config(samples: Sequence[Sample]) -> dict[Config, list[Sample]]:
    out: dict[Config, list[Sample]] = {}
    for s in samples:
        if not s.warmup:
            out.setdefault((s.backend, s.workers), []).append(s)
    return out


def _digests(samples: Sequence[Sample]) -> dict[str, frozenset[str]]:
    seen: dict[str, set[str]] = {}
    for s in samples:
        for op_id, d in s.op_digest.items():
            seen.setdefault(op_id, set()).add(d)
    return {k: frozenset(v) for k, v in seen.items()}


def _failed(samples: Sequence[Sample]) -> frozenset[str]:
    return frozenset(k for s in samples for k, v in s.op_status.items() if v != "ok")


def _op_medians(samples: Sequence[Sample], field: str) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for s in samples:
        for op_id, v in getattr(s, field).items():
            values.setdefault(op_id, []).append(float(v))
    return {k: median(v) for k, v in values.items()}


def summarize(
    plan: Plan,
    configs: Sequence[Config],
    samples: Sequence[Sample],
    thresholds: Thresholds,
    load: float | None,
    repeat: int,
    warmup: int,
    complete: bool,
    cores: int | None = None,
) -> BenchReport:
    """The report from the samples so far (any subset: an interrupted bench has fewer)."""
    if any(s.wall_s <= 0 for s in samples):
        raise UsageError(
            f"{plan.source}: a run took no measurable time (its ops declare no duration?): "
            "a bench needs ops that take time"
        )
    env = environment()
    cores = cores or env.cores_available
    by_config = _by_config(samples)
    base_key = configs[0]
    base_samples = by_config.get(base_key, [])
    warnings = noise.busy_machine(load, cores, thresholds) + noise.too_few_trials(repeat)
    baseline: ConfigResult | None = None
    results: list[ConfigResult] = []
    if base_samples:
        base_by_trial = {s.trial: s for s in base_samples}
        op_s = _op_medians(base_samples, "op_s")
        crit, _ = build_graph(plan).critical_path(op_s)
        base_measures = Measures(
            backend=base_key[0],
            workers=1,
            wall_s=median([s.wall_s for s in base_samples]),
            cpu_s=median([s.cpu_s for s in base_samples]),
            # Every sequential run counts here, warmups included: the more runs, the surer we
            # are that an op's result is stable before calling a different one suspect.
            digests=_digests([s for s in samples if (s.backend, s.workers) == base_key]),
            failed_ops=_failed(base_samples),
        )
        warnings += noise.short_ops(op_s, thresholds)
        unstable = sorted(k for k, v in base_measures.digests.items() if len(v) > 1)
        warnings += noise.unstable_results(unstable)

        def lower_bound(w: int) -> float:
            return max(crit, sum(op_s.values()) / w, base_measures.cpu_s / cores)

        for key in configs:
            mine = [s for s in by_config.get(key, []) if s.trial in base_by_trial]
            if not mine:
                continue
            result = _config_result(
                key, mine, base_by_trial, base_measures, lower_bound(key[1]), thresholds
            )
            label = f"{key[0]} ×{key[1]}"
            walls = [s.wall_s for s in mine]
            warnings += noise.unstable(label, walls, thresholds)
            warnings += noise.cold_start(label, walls, warmup, thresholds)
            if key == base_key:
                baseline = dataclasses.replace(
                    result, verdict=None, reasons=("the sequential baseline",)
                )
            else:
                results.append(result)
    if not complete:
        counts = [len(by_config.get(key, [])) for key in configs]
        warnings += noise.cut_short(min(counts, default=0), repeat)
    scaling = _scaling(results, baseline, len(plan.ops), warnings)
    env_json = dict(env.to_json())
    env_json["load_average_1m"] = load
    env_json["truepar_version"] = __version__
    return BenchReport(
        plan=plan.name,
        results=tuple(results),
        baseline=baseline,
        warnings=tuple(warnings),
        environment=env_json,
        thresholds=thresholds,
        samples=tuple(samples),
        scaling=scaling,
        complete=complete,
        repeat=repeat,
        warmup=warmup,
    )


def _config_result(
    key: Config,
    mine: Sequence[Sample],
    base_by_trial: Mapping[int, Sample],
    base: Measures,
    lower_bound_s: float,
    t: Thresholds,
) -> ConfigResult:
    backend, w = key
    walls = [s.wall_s for s in mine]
    wall = median(walls)
    speedup, ci = paired_speedup([base_by_trial[s.trial].wall_s for s in mine], walls)
    measures = Measures(
        backend=backend,
        workers=w,
        wall_s=wall,
        cpu_s=median([s.cpu_s for s in mine]),
        speedup=speedup,
        speedup_ci=ci,
        digests=_digests(mine),
        failed_ops=_failed(mine),
    )
    verdict, reasons = decide(measures, base, t)
    errors = sum(1 for s in mine for v in s.op_status.values() if v != "ok")
    per_op = {k: round(v) for k, v in _op_medians(mine, "op_bytes").items()}
    return ConfigResult(
        backend=backend,
        workers=w,
        trials=len(mine),
        wall_s=wall,
        wall_ci_s=bootstrap_median_ci(walls),
        wall_cv=cv(walls),
        cpu_s=measures.cpu_s,
        speedup=speedup,
        speedup_ci=ci,
        efficiency=speedup / w,
        avg_concurrency=median([s.sum_op_s for s in mine]) / wall if wall > 0 else 0.0,
        cores_used=measures.cores_used,
        work_ratio=work_ratio(measures, base),
        lower_bound_s=lower_bound_s,
        bound_efficiency=lower_bound_s / wall if wall > 0 else 0.0,
        overhead_s=wall - lower_bound_s,
        karp_flatt=usl.karp_flatt([w], [speedup])[0] if speedup > 0 else None,
        errors=errors,
        op_runs=sum(len(s.op_status) for s in mine),
        failed_only_here=tuple(sorted(measures.failed_ops - base.failed_ops)),
        context_bytes=sum(per_op.values()),
        context_per_op=per_op,
        verdict=verdict,
        reasons=tuple(reasons),
    )


def _scaling(
    results: Sequence[ConfigResult],
    baseline: ConfigResult | None,
    n_ops: int,
    warnings: list[str],
) -> dict[str, dict[str, Any]]:
    """Per backend with 3+ worker counts: throughput per W, the USL fit and a recommendation.

    Without the fit (or if it fails) the recommendation is the smallest measured W within 5% of
    the best measured throughput: fewer workers for the same throughput are cheaper. A backend
    without a 1-worker point of its own gets the sequential baseline's.
    """
    out: dict[str, dict[str, Any]] = {}
    for backend in dict.fromkeys(r.backend for r in results):
        mine = sorted((r for r in results if r.backend == backend), key=lambda r: r.workers)
        if baseline is not None and mine[0].workers > 1:
            mine.insert(0, baseline)
        if len(mine) < 3:
            continue
        ws = [float(r.workers) for r in mine]
        xs = [n_ops / r.wall_s for r in mine]
        best = max(xs)
        entry: dict[str, Any] = {
            "workers": [r.workers for r in mine],
            "throughput_ops_per_s": xs,
            "recommended_workers": next(
                r.workers for r, x in zip(mine, xs, strict=True) if x >= 0.95 * best
            ),
            "recommended_why": "the fewest workers within 5% of the best measured throughput",
            "usl": None,
        }
        try:
            fit = usl.fit_usl(ws, xs)
            kf = usl.karp_flatt(ws, [r.speedup for r in mine])
            rec, why = usl.recommended_workers(ws, fit)
            entry["usl"] = dataclasses.asdict(fit)
            entry["karp_flatt"] = kf
            bounds = [r.bound_efficiency for r in mine]
            entry["diagnosis"] = usl.diagnose(ws, kf, fit, bounds)
            entry["recommended_workers"], entry["recommended_why"] = rec, why
        except Exception as exc:  # a fit is advice: its failure must not lose the measurements
            warnings.append(f"{backend}: the USL fit failed ({exc}); measure more worker counts")
        out[backend] = entry
    return out
