"""What ``prove`` produces: one result per backend or control, the measured experiments, and
the report. Plain records; the catalogue of experiments is :mod:`truepar.measure.experiments`,
the runner :mod:`truepar.measure.prove`, the prose :mod:`truepar.measure.conclusion`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from truepar.measure.results import BenchReport
from truepar.measure.verdict import Verdict
from truepar.plan.models import Plan
from truepar.records import finite


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
    plan: Plan
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
