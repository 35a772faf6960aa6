"""Small, exact statistics for benchmarks: medians, spread, and bootstrap confidence intervals.

Benchmark samples are few (3–20 trials) and skewed (a run is only ever slowed down by noise), so
the median is the centre and intervals come from the percentile bootstrap rather than from a
normal approximation. The resampling uses a fixed seed: the same samples always give the same
interval, so a report can be reproduced and a test can pin it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Resamples per bootstrap: enough that the 2.5% / 97.5% percentiles move by well under 1%.
RESAMPLES = 10_000
#: The bootstrap's seed, fixed so that intervals are reproducible.
SEED = 20240601
LEVEL = 0.95


def median(xs: Sequence[float]) -> float:
    """The median of ``xs`` (which must not be empty)."""
    if not xs:
        raise ValueError("median of no samples")
    return float(np.median(np.asarray(xs, dtype=float)))


def cv(xs: Sequence[float]) -> float:
    """Coefficient of variation: sample standard deviation / mean (0 for < 2 samples or mean 0)."""
    if len(xs) < 2:
        return 0.0
    a = np.asarray(xs, dtype=float)
    mean = float(a.mean())
    return float(a.std(ddof=1)) / mean if mean > 0 else 0.0


def _percentiles(stats: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(stats, [tail, 100 - tail])
    return float(lo), float(hi)


def bootstrap_median_ci(
    xs: Sequence[float], *, level: float = LEVEL, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median of ``xs``.

    With one sample (or all samples equal) the interval is that one value: nothing is known of
    the spread, and an invented width would be worse than none.
    """
    a = np.asarray(xs, dtype=float)
    if a.size == 0:
        raise ValueError("bootstrap of no samples")
    if a.size == 1 or np.all(a == a[0]):
        return float(a[0]), float(a[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(resamples, a.size))
    return _percentiles(np.median(a[idx], axis=1), level)


def paired_speedup(
    baseline_s: Sequence[float],
    config_s: Sequence[float],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> tuple[float, tuple[float, float]]:
    """Speedup ``median(baseline) / median(config)`` and its bootstrap interval over trial pairs.

    ``baseline_s[i]`` and ``config_s[i]`` were measured in the same trial; resampling whole pairs
    keeps what drift did to both, so a slow trial widens the interval less than it would if the
    two sides were resampled apart.
    """
    if len(baseline_s) != len(config_s):
        raise ValueError("paired samples must have the same length")
    b = np.asarray(baseline_s, dtype=float)
    c = np.asarray(config_s, dtype=float)
    if b.size == 0:
        raise ValueError("speedup of no samples")
    if np.any(c <= 0):
        raise ValueError("a configuration's wall time must be positive")
    point = float(np.median(b) / np.median(c))
    if b.size == 1:
        return point, (point, point)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, b.size, size=(resamples, b.size))
    ratios = np.median(b[idx], axis=1) / np.median(c[idx], axis=1)
    lo, hi = _percentiles(ratios, level)
    # Percentiles of a ratio of medians can sit a hair beside the point through interpolation.
    return point, (min(lo, point), max(hi, point))
