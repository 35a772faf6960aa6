"""Success criteria for a bench, and whether its measured numbers meet them.

A bench is ``VALIDATED`` only when every stated criterion holds for its best configuration *and*
nothing undermines the numbers: the bench finished, no op run failed, the verdict is not
``suspect``. With no criteria stated, a gain must still be real: the verdict must be
``parallel`` or ``concurrent``.
"""

from __future__ import annotations

import dataclasses

from truepar.measure.bench import BenchReport, ConfigResult
from truepar.measure.verdict import Verdict


@dataclasses.dataclass(frozen=True, slots=True)
class Criteria:
    """``--require-speedup`` and ``--require-verdict``: what a run must show to count."""

    min_speedup: float | None = None
    verdict: Verdict | None = None

    def describe(self) -> str:
        parts = []
        if self.min_speedup is not None:
            parts.append(f"speedup ≥ {self.min_speedup:g}")
        if self.verdict is not None:
            parts.append(f"verdict {self.verdict}")
        return ", ".join(parts) or "a real gain (parallel or concurrent)"


@dataclasses.dataclass(frozen=True, slots=True)
class Validation:
    validated: bool
    #: Why not, in words; empty when validated.
    failures: tuple[str, ...]
    best: ConfigResult | None
    criteria: Criteria

    @property
    def state(self) -> str:
        return "VALIDATED" if self.validated else "NOT VALIDATED"


def validate(report: BenchReport, criteria: Criteria) -> Validation:
    """Check the best configuration of ``report`` against ``criteria``."""
    best = report.best()
    if best is None:
        return Validation(False, ("no parallel configuration was measured",), None, criteria)
    failures = []
    if not report.complete:
        failures.append("the bench was interrupted before it finished")
    if best.errors:
        failures.append(f"{best.errors} of {best.op_runs} op runs failed")
    if criteria.min_speedup is not None and best.speedup < criteria.min_speedup:
        failures.append(f"speedup {best.speedup:.2f}× < required {criteria.min_speedup:g}×")
    if criteria.verdict is not None and best.verdict != criteria.verdict:
        failures.append(f"verdict {best.verdict} ≠ required {criteria.verdict}")
    elif criteria.verdict is None and best.verdict not in ("parallel", "concurrent"):
        failures.append(f"verdict {best.verdict}: no real gain to validate")
    if best.verdict == "suspect" and criteria.verdict != "suspect":
        failures.append("the gain is not explained by the work done (suspect)")
    return Validation(not failures, tuple(dict.fromkeys(failures)), best, criteria)
