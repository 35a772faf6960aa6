"""Statistics of a bench: medians, spread, bootstrap intervals, paired speedups."""

from __future__ import annotations

import pytest

from truepar.measure.stats import bootstrap_median_ci, cv, median, paired_speedup


def test_median_and_cv() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([1.0, 2.0, 3.0, 10.0]) == 2.5
    assert cv([2.0, 2.0, 2.0]) == 0.0
    assert cv([5.0]) == 0.0
    assert cv([1.0, 3.0]) == pytest.approx(2**0.5 / 2)
    with pytest.raises(ValueError):
        median([])


def test_bootstrap_interval_brackets_the_median_and_is_reproducible() -> None:
    xs = [1.0, 1.1, 0.9, 1.05, 0.95, 1.2, 0.85, 1.0]
    lo, hi = bootstrap_median_ci(xs)
    assert lo <= median(xs) <= hi
    assert min(xs) <= lo < hi <= max(xs)
    assert bootstrap_median_ci(xs) == (lo, hi)  # fixed seed: same samples, same interval


def test_bootstrap_of_identical_or_single_samples_has_no_invented_width() -> None:
    assert bootstrap_median_ci([2.5]) == (2.5, 2.5)
    assert bootstrap_median_ci([2.5, 2.5, 2.5]) == (2.5, 2.5)


def test_pairing_cancels_drift_that_hits_both_sides() -> None:
    # The machine slows down trial by trial, the configuration stays 2× faster in each trial.
    baseline = [1.0, 1.5, 2.0, 3.0, 4.0]
    config = [b / 2 for b in baseline]
    s, (lo, hi) = paired_speedup(baseline, config)
    assert s == pytest.approx(2.0)
    assert (lo, hi) == pytest.approx((2.0, 2.0))
    # Resampled apart, the same numbers would give a wide interval: pairing is what narrows it.
    shuffled = [config[i] for i in (4, 3, 2, 1, 0)]
    _, (lo2, hi2) = paired_speedup(baseline, shuffled)
    assert hi2 - lo2 > 1.0


def test_paired_speedup_interval_contains_the_point() -> None:
    s, (lo, hi) = paired_speedup([1.0, 1.1, 0.95, 1.3], [0.5, 0.6, 0.52, 0.55])
    assert lo <= s <= hi
    assert s == pytest.approx(median([1.0, 1.1, 0.95, 1.3]) / median([0.5, 0.6, 0.52, 0.55]))
    with pytest.raises(ValueError):
        paired_speedup([1.0], [1.0, 2.0])
