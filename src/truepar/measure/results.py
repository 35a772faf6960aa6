"""What a bench records: one :class:`Sample` per run, one :class:`ConfigResult` per configuration,
and the :class:`BenchReport` that holds them and turns into the ``--json`` format."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from truepar.measure.early_stop import StopRecord
from truepar.measure.verdict import Thresholds, Verdict, digest
from truepar.records import RunTrace, Status, estimate_tokens, finite, jsonable

Config = tuple[str, int]


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    """One run of one configuration in one trial, reduced to what the statistics need."""

    trial: int
    backend: str
    workers: int
    warmup: bool
    wall_s: float
    cpu_s: float
    sum_op_s: float
    op_s: Mapping[str, float]
    op_bytes: Mapping[str, int]
    op_status: Mapping[str, str]
    op_digest: Mapping[str, str]
    #: The run's start on the monotonic clock, and every span of the run (``Span.to_json()``):
    #: the timeline of the run, for reports, and raw data ``op_s`` is checked against.
    start_ns: int = 0
    spans: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def of(cls, trial: int, warmup: bool, trace: RunTrace) -> Sample:
        op_s: dict[str, float] = {}
        op_bytes: dict[str, int] = {}
        for span in trace.spans:
            op_s[span.op_id] = op_s.get(span.op_id, 0.0) + span.duration_s
            if span.status is Status.OK:
                op_bytes[span.op_id] = span.bytes_out
        return cls(
            trial=trial,
            backend=trace.backend,
            workers=trace.workers,
            warmup=warmup,
            wall_s=trace.totals.wall_s,
            cpu_s=trace.totals.cpu_s,
            sum_op_s=trace.totals.sum_op_s,
            op_s=op_s,
            op_bytes=op_bytes,
            op_status={k: r.status.value for k, r in trace.results.items()},
            op_digest={
                k: digest(r.value) for k, r in trace.results.items() if r.status is Status.OK
            },
            start_ns=trace.start_ns,
            spans=tuple(span.to_json() for span in trace.spans),
        )

    def to_json(self) -> dict[str, Any]:
        """Every raw number of the run, so that the statistics can be recomputed from evidence."""
        return {
            "trial": self.trial,
            "backend": self.backend,
            "workers": self.workers,
            "warmup": self.warmup,
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "sum_op_s": self.sum_op_s,
            "failed_ops": sorted(k for k, v in self.op_status.items() if v != "ok"),
            "op_s": dict(self.op_s),
            "op_bytes": dict(self.op_bytes),
            "op_status": dict(self.op_status),
            "op_digest": dict(self.op_digest),
            "start_ns": self.start_ns,
            "spans": [dict(span) for span in self.spans],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Sample:
        """The inverse of :meth:`to_json` (``failed_ops`` is derived, so it is not read)."""
        return cls(
            trial=int(data["trial"]),
            backend=str(data["backend"]),
            workers=int(data["workers"]),
            warmup=bool(data["warmup"]),
            wall_s=float(data["wall_s"]),
            cpu_s=float(data["cpu_s"]),
            sum_op_s=float(data["sum_op_s"]),
            op_s={str(k): float(v) for k, v in data["op_s"].items()},
            op_bytes={str(k): int(v) for k, v in data["op_bytes"].items()},
            op_status={str(k): str(v) for k, v in data["op_status"].items()},
            op_digest={str(k): str(v) for k, v in data["op_digest"].items()},
            start_ns=int(data.get("start_ns", 0)),
            spans=tuple(dict(span) for span in data.get("spans", ())),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class ConfigResult:
    """Everything measured of one configuration (medians over its measured trials)."""

    backend: str
    workers: int
    trials: int
    wall_s: float
    wall_ci_s: tuple[float, float]
    wall_cv: float
    cpu_s: float
    speedup: float
    speedup_ci: tuple[float, float]
    efficiency: float
    avg_concurrency: float
    cores_used: float
    work_ratio: float | None
    lower_bound_s: float
    bound_efficiency: float
    overhead_s: float
    karp_flatt: float | None
    errors: int
    op_runs: int
    failed_only_here: tuple[str, ...]
    context_bytes: int
    context_per_op: Mapping[str, int]
    verdict: Verdict | None
    reasons: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.backend} ×{self.workers}"

    @property
    def error_rate(self) -> float:
        return self.errors / self.op_runs if self.op_runs else 0.0

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["wall_ci_s"] = list(self.wall_ci_s)
        d["speedup_ci"] = list(self.speedup_ci)
        d["failed_only_here"] = list(self.failed_only_here)
        d["reasons"] = list(self.reasons)
        d["error_rate"] = self.error_rate
        d["context"] = {
            "bytes": self.context_bytes,
            "tokens_estimated": estimate_tokens(self.context_bytes),
            "per_op": {
                k: {"bytes": v, "tokens_estimated": estimate_tokens(v)}
                for k, v in self.context_per_op.items()
            },
        }
        del d["context_per_op"]
        return d


@dataclasses.dataclass(frozen=True, slots=True)
class BenchReport:
    plan: str
    results: tuple[ConfigResult, ...]
    baseline: ConfigResult | None
    warnings: tuple[str, ...]
    environment: Mapping[str, Any]
    thresholds: Thresholds
    samples: tuple[Sample, ...]
    scaling: Mapping[str, Mapping[str, Any]]
    complete: bool
    #: Measured trials asked for: exactly, or at most when ``early_stop`` is set.
    repeat: int
    warmup: int
    #: The early-stop rule and the configurations it stopped; ``None`` for an exact repeat.
    early_stop: StopRecord | None = None

    def trial_counts(self) -> tuple[int, int]:
        """The fewest and the most measured trials of any configuration (the baseline's too)."""
        counts = [r.trials for r in (*self.results, *([self.baseline] if self.baseline else []))]
        return (min(counts), max(counts)) if counts else (0, 0)

    def best(self) -> ConfigResult | None:
        """The configuration with the highest median speedup."""
        return max(self.results, key=lambda r: r.speedup, default=None)

    def to_json(self) -> dict[str, Any]:
        best = self.best()
        return {
            "format": "truepar.bench",
            "format_version": 1,
            "plan": self.plan,
            "complete": self.complete,
            "repeat": self.repeat,
            "warmup": self.warmup,
            "results": [r.to_json() for r in self.results],
            "baseline": self.baseline.to_json() if self.baseline else None,
            "best": best.label if best else None,
            "scaling": finite(jsonable(dict(self.scaling))),
            "warnings": list(self.warnings),
            "environment": dict(self.environment),
            "thresholds": self.thresholds.to_json(),
            "trials": [s.to_json() for s in self.samples],
            "early_stop": self.early_stop.to_json() if self.early_stop else None,
        }
