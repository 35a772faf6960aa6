"""``verify --reproduce``: run a bench's plan (or a prove) again, here, and compare it with its
evidence.

Bench evidence: the same plan file (found at the path the evidence records), the same backends
and worker counts, the same ``repeat``, ``warmup``, ``cores`` and thresholds. Prove evidence: the
same task count, trials and kernel size (``kernel.n``), so the work is identical.

Each configuration has one of three outcomes (docs/verdicts.md, "Reproducing a verdict"):

- **reproduced** (✓): the same verdict, and a speedup within ``tolerance`` (relative);
- **within noise** (≈): another verdict, a speedup within ``tolerance``, and a flip that the
  measurements' own noise explains: the speedup intervals overlap, and the two verdicts sit on
  either side of one threshold that the measurements straddle (:func:`judge_flip`);
- **not reproduced** (✗): anything else — a flip is never counted as reproduced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from truepar.backends import baseline_for
from truepar.errors import BackendUnavailable, UsageError
from truepar.measure.bench import bench
from truepar.measure.experiments import LAST
from truepar.measure.prove import ProveReport, ProveResult, prove
from truepar.measure.results import BenchReport, ConfigResult, Sample
from truepar.measure.verdict import DEFAULT_THRESHOLDS, Thresholds

OK, NOISE, BAD = "✓", "≈", "✗"

#: What a rerun says of the evidence, for one configuration or all of them together (the worst).
Outcome = Literal["reproduced", "within_noise", "not_reproduced"]
_RANK: dict[Outcome, int] = {"reproduced": 0, "within_noise": 1, "not_reproduced": 2}


@dataclass(frozen=True)
class Measured:
    """One configuration as measured, then or now: what the comparison needs of it."""

    label: str
    speedup: float
    speedup_ci: tuple[float, float]
    #: ``"none"`` when the configuration had none (it did not complete).
    verdict: str
    cores_used: float
    #: Cores used (CPU / wall) of each measured trial: the spread of that measure.
    trial_cores: tuple[float, ...] = ()


@dataclass(frozen=True)
class Reproduction:
    """The worst outcome over the configurations; one line per configuration (and warnings)."""

    outcome: Outcome
    lines: list[str]
    report: BenchReport | ProveReport

    @property
    def ok(self) -> bool:
        """Every configuration reproduced: the same verdicts, speedups within the tolerance."""
        return self.outcome == "reproduced"


def plan_path(doc: Mapping[str, Any]) -> Path | None:
    """The plan file a bench evidence names (``None`` for prove evidence, which needs none);
    :class:`UsageError` (one line) if it cannot rerun."""
    if doc.get("kind") == "prove":
        return None
    if doc.get("kind") != "bench":
        raise UsageError("only bench or prove evidence can be reproduced")
    plan = doc.get("plan")
    path = plan.get("path") if isinstance(plan, Mapping) else None
    if not isinstance(path, str) or not path or path == "<python>":
        raise UsageError("cannot reproduce: the evidence names no plan file to rerun")
    if not Path(path).is_file():
        raise UsageError(
            f"cannot reproduce: plan file {path} not found; the plan must be at that path"
        )
    return Path(path)


def _key(entry: Mapping[str, Any]) -> tuple[str, int]:
    return str(entry["backend"]), int(entry["workers"])


#: One measured trial as the comparison needs it: backend, workers, warmup, wall_s, cpu_s.
Trial = tuple[str, int, bool, Any, Any]


def _json_trials(trials: Iterable[Mapping[str, Any]]) -> list[Trial]:
    return [
        (str(t["backend"]), int(t["workers"]), bool(t["warmup"]), t["wall_s"], t["cpu_s"])
        for t in trials
    ]


def _sample_trials(samples: Iterable[Sample]) -> list[Trial]:
    return [(s.backend, s.workers, s.warmup, s.wall_s, s.cpu_s) for s in samples]


def _measure(label: str, key: tuple[str, int], values: Any, trials: list[Trial]) -> Measured:
    """One configuration from ``values`` (speedup, its interval, verdict, cores used); the cores
    used of each of its measured trials (CPU / wall)."""
    speedup, ci, verdict, cores = values
    lo, hi = ci if ci else (speedup, speedup)
    return Measured(
        label,
        float(speedup),
        (float(lo), float(hi)),
        "none" if verdict is None else str(verdict),
        float(cores or 0.0),
        tuple(
            float(cpu) / float(wall) if float(wall) > 0 else 0.0
            for backend, workers, warmup, wall, cpu in trials
            if (backend, workers) == key and not warmup
        ),
    )


def _recorded(label: str, entry: Mapping[str, Any], trials: list[Trial]) -> Measured:
    values = (
        entry["speedup"],
        entry.get("speedup_ci"),
        entry.get("verdict"),
        entry.get("cores_used"),
    )
    return _measure(label, _key(entry), values, trials)


def _measured(label: str, r: ConfigResult | ProveResult, trials: list[Trial]) -> Measured:
    values = (r.speedup, r.speedup_ci, r.verdict, r.cores_used)
    return _measure(label, (r.backend, r.workers), values, trials)


def reproduce(doc: Mapping[str, Any], *, tolerance: float = 0.25) -> Reproduction:
    """Rerun what ``doc`` records and compare verdicts and speedups, configuration by one."""
    if not tolerance >= 0:
        raise UsageError(f"tolerance must be 0 or more, not {tolerance}")
    path = plan_path(doc)
    if path is None:
        return _reproduce_prove(doc, tolerance)
    data = doc["data"]
    lines: list[str] = []
    recorded_sha = doc["plan"].get("sha256")
    try:
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise UsageError(f"cannot reproduce: cannot read plan file {path}: {exc}") from exc
    if recorded_sha and sha != recorded_sha:
        lines.append(f"warning: plan file {path} changed since the evidence (sha256 differs)")
    try:
        trials = _json_trials(data.get("trials") or ())
        then = {
            _key(r): _recorded(f"{r['backend']} ×{r['workers']}", r, trials)
            for r in data["results"]
        }
        repeat, warmup = int(data["repeat"]), int(data["warmup"])
        thresholds = Thresholds(**data["thresholds"]) if "thresholds" in data else None
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"cannot reproduce: the evidence's data cannot be rerun: {exc!r}") from exc
    try:
        report = _rerun_bench(path, list(then), data, repeat, warmup, thresholds)
    except BackendUnavailable as exc:  # not a verdict on the evidence: it cannot rerun here
        raise UsageError(f"cannot reproduce here: {exc}") from exc
    samples = _sample_trials(report.samples)
    now = {(r.backend, r.workers): _measured(r.label, r, samples) for r in report.results}
    outcome = _compare(then, now, tolerance, report.thresholds, lines)
    if not report.complete:
        lines.append(f"{BAD} the rerun did not complete")
        outcome = "not_reproduced"
    return Reproduction(outcome, lines, report)


def _rerun_bench(
    path: Path,
    keys: list[tuple[str, int]],
    data: Mapping[str, Any],
    repeat: int,
    warmup: int,
    thresholds: Thresholds | None,
) -> BenchReport:
    """The recorded configurations, benched again (the baseline is measured anyway)."""
    backends = list(dict.fromkeys(b for b, _ in keys))
    workers = list(dict.fromkeys(w for _, w in keys))
    baseline, _ = baseline_for(backends)
    measured = [b for b in backends if b != baseline] or backends
    kwargs: dict[str, Any] = {} if thresholds is None else {"thresholds": thresholds}
    return bench(
        str(path),
        backends=measured,
        workers=[w for w in workers if any((b, w) in keys for b in measured)] or workers,
        repeat=repeat,
        warmup=warmup,
        cores=data.get("cores"),
        **kwargs,
    )


def _reproduce_prove(doc: Mapping[str, Any], tolerance: float) -> Reproduction:
    """Prove again with the recorded tasks, trials, kernel size and thresholds; compare by
    result name."""
    data = doc["data"]
    try:
        experiments = data.get("experiments") or []
        trials = {
            str(e["prefix"]): _json_trials(e["bench"].get("trials") or ()) for e in experiments
        }
        then = {
            str(r["name"]): _recorded(str(r["name"]), r, _trials_of(str(r["name"]), trials))
            for r in data["results"]
        }
        tasks, repeat, warmup = int(data["tasks"]), int(data["repeat"]), int(data["warmup"])
        kernel_n = int(data["kernel"]["n"])
        recorded = experiments[0]["bench"].get("thresholds") if experiments else None
        thresholds = Thresholds(**recorded) if recorded else DEFAULT_THRESHOLDS
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"cannot reproduce: the evidence's data cannot be rerun: {exc!r}") from exc
    report = prove(
        tasks=tasks,
        repeat=repeat,
        warmup=warmup,
        kernel_n=kernel_n,
        thresholds=thresholds,
        last=any(str(e.get("prefix")) == LAST for e in experiments),  # Ray, if it was proven
    )
    samples = {e.prefix: _sample_trials(e.bench.samples) for e in report.experiments}
    now = {r.name: _measured(r.name, r, _trials_of(r.name, samples)) for r in report.results}
    lines: list[str] = []
    outcome = _compare(then, now, tolerance, thresholds, lines)
    if not report.complete:
        lines.append(f"{BAD} the rerun did not complete")
        outcome = "not_reproduced"
    if not report.checksums_ok:
        lines.append(f"{BAD} a task result was wrong or missing in the rerun")
        outcome = "not_reproduced"
    return Reproduction(outcome, lines, report)


def _trials_of(name: str, trials: Mapping[str, list[Trial]]) -> list[Trial]:
    """The trials of the experiment a prove result belongs to (its name is ``prefix/label``)."""
    return next((t for prefix, t in trials.items() if name.startswith(prefix + "/")), [])


def _compare(
    then: Mapping[Any, Measured],
    now: Mapping[Any, Measured],
    tolerance: float,
    thresholds: Thresholds,
    lines: list[str],
) -> Outcome:
    """One line per recorded configuration; the worst outcome."""
    worst: Outcome = "reproduced"
    for key, old in then.items():
        outcome, line = judge(old, now.get(key), tolerance, thresholds)
        lines.append(line)
        worst = max(worst, outcome, key=_RANK.__getitem__)
    return worst


def judge(
    then: Measured, now: Measured | None, tolerance: float, thresholds: Thresholds
) -> tuple[Outcome, str]:
    """One configuration's outcome and its line (see the module's docstring)."""
    if now is None:
        return "not_reproduced", f"{BAD} {then.label}: not measured now"
    change = (now.speedup - then.speedup) / then.speedup if then.speedup else float("inf")
    pct = f"{change * 100:+.0f}%".replace("-", "−")
    text = f"{then.label}: speedup {then.speedup:.2f} then, {now.speedup:.2f} now ({pct})"
    beyond = [f"beyond ±{tolerance * 100:.0f}%"] if abs(change) > tolerance else []
    if then.verdict == now.verdict:
        text += f", verdict {then.verdict} both"
        if not beyond:
            return "reproduced", f"{OK} {text}"
        return "not_reproduced", f"{BAD} {text} — {beyond[0]}"
    flip = f"verdict {then.verdict} then, {now.verdict} now"
    noise, why = judge_flip(then, now, thresholds)
    if noise and not beyond:
        return "within_noise", f"{NOISE} {text} — {flip}: not reproduced, within noise ({why})"
    return "not_reproduced", f"{BAD} {text} — " + "; ".join([*beyond, f"{flip} ({why})"])


def _span(values: tuple[float, ...], fallback: float) -> tuple[float, float]:
    return (min(values), max(values)) if values else (fallback, fallback)


def judge_flip(then: Measured, now: Measured, t: Thresholds) -> tuple[bool, str]:
    """Whether a verdict that changed did so within the measurements' noise, and why in words.

    Within noise when the speedup intervals overlap (or the new speedup lies inside the old
    interval) *and* the two verdicts sit either side of one threshold that the measurements
    straddle: ``serialized`` against a clear gain — the lower ends of the intervals either side
    of ``min_speedup``; ``concurrent`` against ``parallel`` — the cores used either side of
    ``parallel_cores``, with the per-trial cores used of the two runs overlapping. A flip into or
    out of ``suspect`` (results that differ, failed ops, shrunk work) is a different finding.
    """
    pair = {then.verdict, now.verdict}
    if not pair <= {"serialized", "concurrent", "parallel"}:
        return False, "suspect, or no verdict, is a finding, not noise"
    (lo1, hi1), (lo2, hi2) = then.speedup_ci, now.speedup_ci
    intervals = f"speedup 95% intervals {lo1:.2f}–{hi1:.2f} then, {lo2:.2f}–{hi2:.2f} now"
    if not (lo1 <= hi2 and lo2 <= hi1) and not lo1 <= now.speedup <= hi1:
        return False, f"{intervals}: disjoint"
    if "serialized" in pair:
        slow, fast = (then, now) if then.verdict == "serialized" else (now, then)
        if slow.speedup_ci[0] <= t.min_speedup < fast.speedup_ci[0]:
            return True, f"{intervals} overlap, their lower ends either side of {t.min_speedup:g}"
        return False, f"{intervals}: not a flip across min_speedup {t.min_speedup:g}"
    waits, cpu = (then, now) if then.verdict == "concurrent" else (now, then)
    cores = f"cores used {then.cores_used:.2f} then, {now.cores_used:.2f} now"
    if not waits.cores_used <= t.parallel_cores < cpu.cores_used:
        return False, f"{cores}: not a flip across parallel_cores {t.parallel_cores:g}"
    (a1, b1), (a2, b2) = (
        _span(then.trial_cores, then.cores_used),
        _span(now.trial_cores, now.cores_used),
    )
    trials = f"cores used per trial {a1:.2f}–{b1:.2f} then, {a2:.2f}–{b2:.2f} now"
    if a1 <= b2 and a2 <= b1:
        return True, f"{intervals} overlap; {trials} overlap across {t.parallel_cores:g}"
    return False, f"{trials}: disjoint"
