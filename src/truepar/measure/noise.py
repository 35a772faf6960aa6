"""Noise warnings, as pyperf gives them: each says what looked unreliable and what to change."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from truepar.measure.stats import cv, median
from truepar.measure.verdict import Thresholds


def load_average() -> float | None:
    """The 1-minute load average, or ``None`` where the platform has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def busy_machine(load: float | None, cores: int, t: Thresholds) -> list[str]:
    if load is None or load <= t.busy_load_per_core * cores:
        return []
    return [
        f"the machine was already busy at the start (load average {load:.2f} on {cores} "
        "core(s)): stop other work, or expect noisy times"
    ]


def too_few_trials(repeat: int) -> list[str]:
    """A 95% interval from one or two trials is no interval: say so."""
    if repeat >= 3:
        return []
    return [
        f"only {repeat} measured trial(s): the confidence intervals need 3 or more to mean "
        "anything; use --repeat 3 or more"
    ]


def cut_short(fewest: int, repeat: int) -> list[str]:
    """An interrupted bench whose configurations got fewer than 3 of the trials asked for."""
    if fewest >= 3 or repeat < 3:
        return []  # enough, or too_few_trials already said so
    return [
        f"interrupted after {fewest} of {repeat} trial(s) in some configuration: its confidence "
        "interval needs 3 or more to mean anything; run the bench to the end"
    ]


def unstable(label: str, walls_s: Sequence[float], t: Thresholds) -> list[str]:
    spread = cv(walls_s)
    if spread <= t.max_cv:
        return []
    return [
        f"{label}: wall times vary {spread:.0%} between trials (CV > {t.max_cv:.0%}): "
        "use more --repeat or a quieter machine"
    ]


def cold_start(label: str, walls_s: Sequence[float], warmup: int, t: Thresholds) -> list[str]:
    """The first *measured* run much slower than the rest: caches or workers were cold."""
    if len(walls_s) < 2:
        return []
    first, rest = walls_s[0], median(walls_s[1:])
    if rest <= 0 or first < t.cold_factor * rest:
        return []
    fix = "use --warmup 1 or more" if warmup == 0 else f"use --warmup {warmup + 1} or more"
    return [
        f"{label}: the first measured run took {first / rest:.1f}× the median of the others "
        f"(cold caches or workers): {fix}"
    ]


def short_ops(op_durations_s: Mapping[str, float], t: Thresholds) -> list[str]:
    if not op_durations_s:
        return []
    typical = median(list(op_durations_s.values()))
    if typical >= t.min_op_s:
        return []
    short = sum(1 for d in op_durations_s.values() if d < t.min_op_s)
    return [
        f"the median op takes {typical * 1e3:.2f} ms ({short} of {len(op_durations_s)} ops under "
        f"{t.min_op_s * 1e3:g} ms): too short to time reliably; make ops longer (more work each)"
    ]


def unstable_results(ids: Sequence[str]) -> list[str]:
    if not ids:
        return []
    shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
    return [
        f"op(s) {shown} returned different results on different sequential runs, so their "
        "results could not be compared between configurations: make them deterministic"
    ]
