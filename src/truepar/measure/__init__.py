"""Measurement: interleaved trials, statistics, verdicts that wall time alone cannot fool."""

from __future__ import annotations

from truepar.measure.bench import BenchReport, ConfigResult, bench
from truepar.measure.verdict import VERDICTS, Measures, Thresholds, Verdict, decide

__all__ = (
    "VERDICTS",
    "BenchReport",
    "ConfigResult",
    "Measures",
    "Thresholds",
    "Verdict",
    "bench",
    "decide",
)
