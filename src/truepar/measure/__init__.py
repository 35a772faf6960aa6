"""Measurement: interleaved trials, statistics, verdicts that wall time alone cannot fool.

The public API of this floor (``truepar`` itself does not import it, so that ``import truepar``
and worker processes stay free of numpy and scipy)::

    from truepar.measure import bench, prove, fit_usl, validate, Criteria
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from truepar.measure.bench import BenchReport, ConfigResult, bench
    from truepar.measure.criteria import Criteria, Validation, validate
    from truepar.measure.prove import ProveReport, prove
    from truepar.measure.usl import UslFit, diagnose, fit_amdahl, fit_usl, karp_flatt
    from truepar.measure.verdict import VERDICTS, Measures, Thresholds, Verdict, decide

#: Each name and the module that defines it, imported on first use: a worker process that only
#: imports :mod:`truepar.measure.kernels` (``prove``'s ops) does not pay for the whole floor.
_LAZY = {
    **dict.fromkeys(("BenchReport", "ConfigResult", "bench"), "truepar.measure.bench"),
    **dict.fromkeys(("Criteria", "Validation", "validate"), "truepar.measure.criteria"),
    **dict.fromkeys(("ProveReport", "prove"), "truepar.measure.prove"),
    **dict.fromkeys(
        ("UslFit", "diagnose", "fit_amdahl", "fit_usl", "karp_flatt"), "truepar.measure.usl"
    ),
    **dict.fromkeys(
        ("VERDICTS", "Measures", "Thresholds", "Verdict", "decide"), "truepar.measure.verdict"
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'truepar.measure' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """``bench`` and ``prove`` name the functions here, as they always have: loading the
    submodules of the same names must not put the modules in their place."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


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
