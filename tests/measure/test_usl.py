"""Scaling laws: the USL fit agrees with the R package usl, recovers known laws, and the
Karp–Flatt diagnosis tells serial code from growing overhead."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import truepar
from truepar.measure.sweep_csv import load_measurements
from truepar.measure.usl import (
    diagnose,
    fit_amdahl,
    fit_usl,
    karp_flatt,
    karp_flatt_trend,
    recommended_workers,
)

DATA = Path(__file__).parent / "data"


def usl(n: np.ndarray, sigma: float, kappa: float, gamma: float) -> np.ndarray:
    return gamma * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


# --- R usl reproduction (expected values as R prints them; see data/README.md) ---------------


def test_specsdm91_matches_r_usl() -> None:
    workers, throughput = load_measurements(DATA / "specsdm91.csv")
    fit = fit_usl(workers, throughput)
    # R usl 2.0 (tests/usl-nlxb.Rout.save): alpha 0.0277285, beta 0.0001044, gamma 89.9952330;
    # residual standard error 82.85 on 4 df, R² 0.9896 (tests/summary.Rout.save).
    assert fit.sigma == pytest.approx(0.0277285, rel=1e-5)
    assert fit.kappa == pytest.approx(0.0001044, rel=5e-4)  # R prints 4 significant digits
    assert fit.gamma == pytest.approx(89.9952330, rel=1e-7)
    assert fit.residual_std == pytest.approx(82.85, abs=0.005)
    assert fit.r_squared == pytest.approx(0.9896, abs=5e-5)
    assert round(fit.peak_workers) == 97  # signif(peak.scalability(u), 2) == 97
    # fitted(u): 90 1078 1541 1850 1879 1822 1646 (3 significant digits)
    fitted = [fit.predict(n) for n in workers]
    assert [float(f"{f:.3g}") for f in fitted] == [90, 1080, 1540, 1850, 1880, 1820, 1650]


def test_raytracer_matches_r_usl_with_kappa_on_its_bound() -> None:
    workers, throughput = load_measurements(DATA / "raytracer.csv")
    fit = fit_usl(workers, throughput)
    # R usl (tests/confint.Rout.save): alpha 0.0578, beta 0.0000, gamma 21.8488.
    assert fit.sigma == pytest.approx(0.0578, abs=5e-5)
    assert fit.kappa == 0.0
    assert fit.gamma == pytest.approx(21.8488, abs=5e-5)
    assert fit.peak_workers == math.inf


def test_r_usl_coef_example() -> None:
    # tests/coef.Rout.save: signif(alpha, 3) == 0.02, signif(beta, 3) == 0.02, gamma 1.00
    fit = fit_usl([1, 2, 4, 6, 8, 10], [1, 1.8868, 3.0769, 3.5294, 3.5398, 3.3557])
    assert float(f"{fit.sigma:.3g}") == 0.02
    assert float(f"{fit.kappa:.3g}") == 0.02
    assert fit.gamma == pytest.approx(1.00, abs=0.005)


# --- recovery, bounds, peak -------------------------------------------------------------------


def test_recovers_noise_free_law_exactly() -> None:
    n = np.array([1, 2, 4, 8, 16, 32, 64], dtype=float)
    fit = fit_usl(n, usl(n, 0.05, 0.0002, 12.5))
    assert fit.sigma == pytest.approx(0.05, rel=1e-9)
    assert fit.kappa == pytest.approx(0.0002, rel=1e-9)
    assert fit.gamma == pytest.approx(12.5, rel=1e-9)
    assert fit.r_squared == pytest.approx(1.0, abs=1e-12)
    assert fit.predict(20) == pytest.approx(usl(np.array([20.0]), 0.05, 0.0002, 12.5)[0])


def test_given_gamma_is_held_fixed() -> None:
    n = np.arange(1, 17, dtype=float)
    y = usl(n, 0.1, 0.001, 3.0)
    fit = fit_usl(n, y, gamma=3.3)
    assert fit.gamma == 3.3
    assert fit_usl(n, y, gamma=3.0).sigma == pytest.approx(0.1, rel=1e-9)


def test_bounds_hold_sigma_at_zero_for_superlinear_data() -> None:
    # Better than linear: an unconstrained fit wants σ < 0; the bounded fit stops at 0.
    n = np.array([1, 2, 4, 8, 16], dtype=float)
    y = 10 * n / (1 - 0.02 * (n - 1))
    fit = fit_usl(n, y)
    assert fit.sigma == 0.0
    assert fit.kappa == 0.0
    assert fit.gamma > 0


def test_peak_workers_formula() -> None:
    n = np.arange(1, 41, dtype=float)
    fit = fit_usl(n, usl(n, 0.04, 0.0025, 7.0))
    assert fit.peak_workers == pytest.approx(math.sqrt((1 - 0.04) / 0.0025), rel=1e-7)
    grid = np.linspace(1, 60, 5901)
    assert grid[np.argmax([fit.predict(x) for x in grid])] == pytest.approx(
        fit.peak_workers, abs=0.01
    )
    assert recommended_workers(n, fit)[0] == 20  # N* = 19.6; 20 predicts more than 19


def test_amdahl_serial_fraction() -> None:
    n = np.array([1, 2, 4, 8, 16, 32], dtype=float)
    amdahl = fit_amdahl(n, usl(n, 0.1, 0.0, 5.0))
    assert amdahl.serial_fraction == pytest.approx(0.1, rel=1e-9)
    assert amdahl.gamma == pytest.approx(5.0, rel=1e-9)
    assert amdahl.amdahl_max_speedup == pytest.approx(10.0, rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    sigma=st.one_of(st.just(0.0), st.floats(0.0, 0.3)),
    kappa=st.one_of(st.just(0.0), st.floats(0.0, 0.01)),
    gamma=st.floats(0.5, 100.0),
)
def test_fit_recovers_random_laws(sigma: float, kappa: float, gamma: float) -> None:
    n = np.arange(1, 33, dtype=float)
    fit = fit_usl(n, usl(n, sigma, kappa, gamma))
    assert math.isclose(fit.sigma, sigma, rel_tol=1e-4, abs_tol=1e-7)
    assert math.isclose(fit.kappa, kappa, rel_tol=1e-4, abs_tol=1e-9)
    assert math.isclose(fit.gamma, gamma, rel_tol=1e-4)


def test_too_few_points_is_bad_input() -> None:
    with pytest.raises(truepar.UsageError, match="at least 3 points"):
        fit_usl([1, 2, 2], [1.0, 1.9, 1.8])
    with pytest.raises(truepar.BadInput, match="positive"):
        fit_usl([1, 2, 4], [1.0, 0.0, 3.0])


# --- Karp–Flatt and the diagnosis -------------------------------------------------------------


def test_karp_flatt_definition() -> None:
    assert karp_flatt([1, 2, 4], [1.0, 2.0, 2.0]) == [None, 0.0, pytest.approx(1 / 3)]


def test_karp_flatt_constant_for_amdahl_and_diagnosis_says_serial() -> None:
    n = np.array([1, 2, 4, 8, 16, 32], dtype=float)
    y = usl(n, 0.08, 0.0, 4.0)
    e = karp_flatt(n, y / y[0])
    assert e[0] is None
    assert all(v == pytest.approx(0.08, rel=1e-12) for v in e[1:])
    assert karp_flatt_trend(n, e) == "constant"
    text = diagnose(n, e, fit_usl(n, y))
    assert "serial fraction ≈ 8%" in text and "(Amdahl" in text
    assert "Recommended workers: 13" in text  # no peak: efficiency 50% at 1 + 1/σ = 13.5


def test_karp_flatt_rises_with_kappa_and_diagnosis_says_overhead() -> None:
    n = np.array([1, 2, 4, 8, 16, 32], dtype=float)
    y = usl(n, 0.02, 0.002, 4.0)
    e = karp_flatt(n, y / y[0])
    # For USL data e = σ + κ·p exactly.
    assert [v for v in e if v is not None] == pytest.approx([0.02 + 0.002 * p for p in n[1:]])
    assert karp_flatt_trend(n, e) == "rising"
    text = diagnose(n, e, fit_usl(n, y))
    assert "overhead grows with workers (coherency/contention, κ > 0" in text
    assert "Recommended workers: 22" in text  # N* = sqrt(0.98 / 0.002) = 22.1


def test_recommendation_is_capped_beyond_the_measured_range() -> None:
    n = np.array([1, 2, 3, 4], dtype=float)
    fit = fit_usl(n, usl(n, 0.01, 0.0001, 1.0))  # N* ≈ 99.5, far beyond 4
    count, why = recommended_workers(n, fit)
    assert count == 8 and "capped" in why


# --- loading ----------------------------------------------------------------------------------


def test_load_seconds_and_duplicates(tmp_path: Path) -> None:
    csv = tmp_path / "sweep.csv"
    csv.write_text("Workers,Seconds,note\n4,0.5,a\n1,2.0,b\n2,1.0,c\n2,1.5,d\n")
    workers, throughput = load_measurements(csv)
    assert workers == [1, 2, 4]
    assert throughput == pytest.approx([0.5, 1 / 1.25, 2.0])  # 1 / mean seconds per count


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("workers,speed\n1,2\n2,3\n4,5\n", "missing column throughput (or seconds)"),
        ("n,throughput\n1,2\n2,3\n4,5\n", "missing column workers"),
        ("workers,throughput\n1,2\n2,fast\n4,5\n", "line 3: throughput must be a number"),
        ("workers,throughput\n1,2\n2,\n4,5\n", "line 3: throughput must be a number, not nothing"),
        ("workers,throughput\n1,2\n0,3\n4,5\n", "line 3: workers must be a positive number"),
        ("workers,throughput\n1,2\n2,-3\n4,5\n", "line 3: throughput must be a positive"),
        ("workers,throughput\n1,2\n2,3\n2,4\n", "at least 3 points"),
        ("", "is empty"),
    ],
)
def test_load_rejects_bad_files(tmp_path: Path, content: str, fragment: str) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text(content)
    with pytest.raises(truepar.UsageError) as info:
        load_measurements(csv)
    message = str(info.value)
    assert fragment in message and str(csv) in message and "\n" not in message


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(truepar.UsageError, match="no such file"):
        load_measurements(tmp_path / "nope.csv")


def test_the_scaling_words_follow_the_numbers() -> None:
    slower = fit_usl([1, 2, 4], [100.0, 40.0, 10.0])
    n, why = recommended_workers([1, 2, 4], slower)
    assert n == 1 and "N*" not in why  # never "a peak at N* ≈ 3e-08"
    exact = diagnose([1, 2, 4], [None, 0.1, 0.1], fit_usl([1, 2, 4], [100, 190, 340]))
    assert "no degree of freedom is left" in exact
    kf_over_one = diagnose([1, 2, 4, 8], [None, 1.5, 1.5, 1.5], slower)
    assert "serial fraction ≈ 150%" not in kf_over_one and "≥ 1" in kf_over_one
    bound = diagnose(
        [1, 2, 4, 8], [None, 0.3, 0.5, 0.7], slower, bound_efficiency=[1.0, 0.99, 0.97, 0.95]
    )
    assert "physical lower bound" in bound and "contention (" not in bound
