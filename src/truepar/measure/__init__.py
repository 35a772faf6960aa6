"""Measurement: interleaved trials, statistics, verdicts that wall time alone cannot fool.

The public API of this floor (``truepar`` itself does not import it, so that ``import truepar``
and worker processes stay free of numpy and scipy)::

    from truepar.measure import bench, prove, fit_usl, validate, Criteria
"""

from __future__ import annotations

from truepar.measure.bench import BenchReport, ConfigResult, bench
from truepar.measure.criteria import Criteria, Validation, validate
from truepar.measure.prove import ProveReport, prove
from truepar.measure.usl import UslFit, diagnose, fit_amdahl, fit_usl, karp_flatt
from truepar.measure.verdict import VERDICTS, Measures, Thresholds, Verdict, decide

__all__ = (
    "VERDICTS",
    "BenchReport",
    "ConfigResult",
    "Criteria",
    "Measures",
    "ProveReport",
    "Thresholds",
    "UslFit",
    "Validation",
    "Verdict",
    "bench",
    "decide",
    "diagnose",
    "fit_amdahl",
    "fit_usl",
    "karp_flatt",
    "prove",
    "validate",
)
