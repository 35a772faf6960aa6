"""The four verdicts (``parallel``, ``concurrent``, ``serialized``, ``suspect``) and their reasons.

A verdict never rests on wall time alone. A configuration is ``parallel`` only when it was clearly
faster *and* more than one core was busy *and* it did the same work as the sequential baseline.
The rules, in the order they are checked (docs/verdicts.md has them with examples):

1. ``suspect``: op results differ from the baseline's, ops failed only here, or the baseline was
   CPU-heavy and this configuration spent much less CPU (the work shrank: a time-bounded loop).
2. ``serialized``: one worker, or the speedup's lower confidence bound is not above
   ``min_speedup`` — no clear gain.
3. ``parallel``: cores used above ``parallel_cores``.
4. ``concurrent``: a clear gain with about one core busy — waits overlapped, CPU did not.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Literal

from truepar.backends import known_backend_class
from truepar.records import jsonable

Verdict = Literal["parallel", "concurrent", "serialized", "suspect"]
VERDICTS: tuple[Verdict, ...] = ("parallel", "concurrent", "serialized", "suspect")


@dataclasses.dataclass(frozen=True, slots=True)
class Thresholds:
    """The numbers behind the verdicts and the noise warnings. Defaults are in docs/verdicts.md."""

    #: A clear gain: the speedup's 95% CI lower bound must exceed this.
    min_speedup: float = 1.1
    #: CPU ran at the same time: cores used (CPU / wall) must exceed this.
    parallel_cores: float = 1.2
    #: The baseline counts as CPU-bound when its cores used (C1 / T1) exceeds this ...
    cpu_heavy: float = 0.5
    #: ... and then a configuration spending less than this fraction of its CPU is suspect.
    min_work_ratio: float = 0.7
    #: Noise: warn when a configuration's wall times vary more than this (coefficient of variation).
    max_cv: float = 0.10
    #: Noise: warn when the median op is shorter than this (seconds).
    min_op_s: float = 0.001
    #: Noise: warn when the first run of a configuration is this many times its median or slower.
    cold_factor: float = 1.5
    #: Noise: warn when the 1-minute load average at the start exceeds this many per core.
    busy_load_per_core: float = 0.5

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not value > 0:
                raise ValueError(f"threshold {field.name} must be positive, not {value}")
        if self.min_speedup < 1:
            raise ValueError(f"min_speedup must be at least 1, not {self.min_speedup}")
        for name in ("cpu_heavy", "min_work_ratio"):
            if getattr(self, name) > 1:
                raise ValueError(f"{name} is a fraction: at most 1, not {getattr(self, name)}")

    def to_json(self) -> dict[str, float]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, slots=True)
class Measures:
    """What :func:`decide` needs of one configuration (or of the baseline): medians over trials."""

    backend: str
    workers: int
    wall_s: float
    cpu_s: float
    speedup: float = 1.0
    speedup_ci: tuple[float, float] = (1.0, 1.0)
    #: Per op id: the digests of its result value seen over the trials (see :func:`digest`).
    digests: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    #: Ops that did not end ``ok`` in at least one trial.
    failed_ops: frozenset[str] = frozenset()

    @property
    def cores_used(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


DEFAULT_THRESHOLDS = Thresholds()


def digest(value: Any) -> str:
    """A stable digest of an op's result value: sorted JSON of its JSON-safe view."""
    text = json.dumps(jsonable(value), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


def work_ratio(config: Measures, baseline: Measures) -> float | None:
    """R = CW / C1; ``None`` when the baseline mostly waited (under 5% of a core, or 1 ms of CPU):
    a ratio of two near-zero numbers is noise, not a measure of work."""
    if baseline.cpu_s <= 1e-3 or baseline.cores_used < 0.05:
        return None
    return config.cpu_s / baseline.cpu_s


def differing_results(config: Measures, baseline: Measures) -> list[str]:
    """Ops whose result in this configuration was never seen in the baseline.

    Only ops with one stable result over the baseline's trials are compared: an op that returns
    something different on every sequential run (a clock, a counter) cannot be checked this way.
    """
    out = []
    for op_id, seen in sorted(config.digests.items()):
        base = baseline.digests.get(op_id)
        if base is not None and len(base) == 1 and not seen <= base:
            out.append(op_id)
    return out


def _names(ids: list[str], limit: int = 5) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


#: Up to this ratio of CPU spent to the sequential run's, the work counts as "the same"; above
#: it, the words say how much more CPU running in parallel cost.
SAME_WORK_MAX_RATIO = 1.25


def _work_words(ratio: float | None) -> str:
    """What the CPU spent says about the work, in words that follow the number."""
    if ratio is None:
        return "the sequential run spent almost no CPU: the ops mostly wait"
    if ratio <= SAME_WORK_MAX_RATIO:
        return f"CPU spent {ratio:.2f}× the sequential run's: the same work was done"
    return (
        f"CPU spent {ratio:.2f}× the sequential run's: the work was done, and running it "
        f"in parallel cost {ratio - 1:.0%} more CPU (overhead or contention)"
    )


def decide(
    config: Measures, baseline: Measures, thresholds: Thresholds = DEFAULT_THRESHOLDS
) -> tuple[Verdict, list[str]]:
    """The verdict for ``config`` against the sequential ``baseline``, with reasons in words."""
    t = thresholds
    s, (lo, hi) = config.speedup, config.speedup_ci
    cores = config.cores_used
    speed = f"speedup {s:.2f}× [95% CI {lo:.2f}–{hi:.2f}]"
    ratio = work_ratio(config, baseline)

    suspicions = []
    differ = differing_results(config, baseline)
    if differ:
        suspicions.append(
            f"results differ from the sequential run's for {len(differ)} op(s): {_names(differ)}"
        )
    failed_here = sorted(config.failed_ops - baseline.failed_ops)
    if failed_here:
        suspicions.append(
            f"{len(failed_here)} op(s) failed here but not in the sequential run: "
            f"{_names(failed_here)} — work was skipped"
        )
    if ratio is not None and baseline.cores_used > t.cpu_heavy and ratio < t.min_work_ratio:
        suspicions.append(
            f"CPU spent {ratio:.2f}× the sequential run's (< {t.min_work_ratio:g}) although the "
            f"sequential run was CPU-bound ({baseline.cores_used:.2f} cores used > {t.cpu_heavy:g})"
            ": the work shrank — a time-bounded loop or skipped work?"
        )
    if suspicions:
        return "suspect", [*suspicions, f"{speed}; cores used {cores:.2f}"]

    same_work = _work_words(ratio)
    if config.workers <= 1:
        return "serialized", [
            f"{config.workers} worker: nothing could run at the same time ({speed})",
            same_work,
        ]
    if lo <= t.min_speedup:
        reasons = [f"{speed}: the lower bound is not above {t.min_speedup:g}, no clear gain"]
        reasons.append(f"cores used {cores:.2f} with {config.workers} workers")
        if baseline.cores_used > t.cpu_heavy and cores <= t.parallel_cores:
            cls = known_backend_class(config.backend)
            cause = "the CPU work was held to one core"
            if cls is not None and cls.cpu_parallel == "without_gil":
                cause = "CPU-bound Python held to one core by the GIL?"
            elif cls is not None and cls.event_loop:
                cause = "synchronous code blocking the event loop?"
            reasons.append(f"the sequential run was CPU-bound and stayed so: {cause}")
        elif baseline.cores_used <= t.cpu_heavy and _on_event_loop(config.backend):
            reasons.append("waits did not overlap: blocking calls on the event loop?")
        return "serialized", [*reasons, same_work]
    if cores > t.parallel_cores and ratio is not None:
        reasons = [
            f"{speed} > {t.min_speedup:g}: a clear gain",
            f"cores used {cores:.2f} > {t.parallel_cores:g}: CPU work ran at the same time",
        ]
        if ratio > 1 / t.min_work_ratio:
            reasons.append(
                f"CPU spent {ratio:.2f}× the sequential run's: the work ran in parallel, but "
                "much of the CPU went to overhead (worker start-up, serialization, spinning)"
            )
        else:
            reasons.append(same_work)
        return "parallel", reasons
    if cores > t.parallel_cores:  # CPU rose, yet the sequential run needed almost none
        return "concurrent", [
            f"{speed} > {t.min_speedup:g}: a clear gain",
            f"cores used {cores:.2f}, but the sequential run spent almost no CPU: the extra CPU "
            "is overhead, not work running at the same time; the gain is overlapped waiting",
        ]
    return "concurrent", [
        f"{speed} > {t.min_speedup:g}: a clear gain",
        f"cores used {cores:.2f} ≤ {t.parallel_cores:g}: waits overlapped, CPU did not run at "
        "the same time",
        same_work,
    ]


def _on_event_loop(backend: str) -> bool:
    cls = known_backend_class(backend)
    return cls is not None and cls.event_loop
