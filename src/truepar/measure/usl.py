"""Scaling laws over a worker sweep: the Universal Scalability Law, Amdahl, Karp–Flatt.

The USL fit follows the R package ``usl`` (S. Möding), the reference named in ANCHORS.md: ordinary
nonlinear least squares on the throughput itself,

    X(N) = γ N / (1 + σ (N − 1) + κ N (N − 1)),

bounded to 0 ≤ σ ≤ 1, 0 ≤ κ ≤ 1, γ ≥ 0, started from γ₀ = max(X/N), σ₀ = 0.01, κ₀ = 0.0001
exactly as its ``usl.solve.nlxb`` / ``usl.solve.nls`` do. Here ``scipy.optimize.least_squares``
(trust-region reflective, which honours bounds) replaces ``nlxb``; on the package's data sets it
gives the same coefficients to the digits R prints (see tests/measure/test_usl.py).

Karp–Flatt is ``e = (1/S − 1/p) / (1 − 1/p)`` (Quinn, ch. 7). For USL-shaped data ``e = σ + κ p``
exactly, so a flat e means serial code (Amdahl) and a rising e means overhead that grows with p.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from truepar.errors import UsageError

__all__ = (
    "AmdahlFit",
    "UslFit",
    "diagnose",
    "fit_amdahl",
    "fit_usl",
    "karp_flatt",
    "recommended_workers",
)

Numbers = Sequence[float] | npt.NDArray[np.floating[Any]] | npt.NDArray[np.integer[Any]]
_Array = npt.NDArray[np.float64]

#: Relative change of Karp–Flatt e across the measured range above which e counts as rising
#: (or, negated, falling); below it e counts as constant. See :func:`karp_flatt_trend`.
TREND_THRESHOLD = 0.25
#: The fit is trusted for extrapolation up to this multiple of the largest measured worker count.
EXTRAPOLATION_LIMIT = 2.0


@dataclass(frozen=True)
class UslFit:
    """A fitted Universal Scalability Law.

    ``sigma`` (contention), ``kappa`` (coherency), ``gamma`` (throughput of one worker);
    ``peak_workers`` N* = sqrt((1 − σ)/κ), ``inf`` when κ == 0 (no retrograde region);
    ``r_squared`` = 1 − SSR/SST; ``residual_std`` = sqrt(SSR / (n − parameters)), as R prints it
    ("residual standard error"), NaN when no degree of freedom is left.
    """

    sigma: float
    kappa: float
    gamma: float
    peak_workers: float
    r_squared: float
    residual_std: float

    def predict(self, n: float) -> float:
        """Throughput the law predicts for ``n`` workers."""
        return self.gamma * n / (1.0 + self.sigma * (n - 1.0) + self.kappa * n * (n - 1.0))

    def speedup(self, n: float) -> float:
        """Relative capacity X(n) / X(1)."""
        return self.predict(n) / self.gamma if self.gamma > 0 else math.nan


@dataclass(frozen=True)
class AmdahlFit:
    """Amdahl's law (the USL with κ = 0): ``serial_fraction`` σ, ``gamma`` X(1), and the speedup
    limit ``max_speedup`` = 1/σ (``inf`` when σ == 0)."""

    serial_fraction: float
    gamma: float
    max_speedup: float
    r_squared: float

    @property
    def amdahl_max_speedup(self) -> float:
        return self.max_speedup


def _checked(workers: Numbers, throughput: Numbers) -> tuple[_Array, _Array]:
    x = np.asarray(workers, dtype=np.float64)
    y = np.asarray(throughput, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise UsageError("workers and throughput must be two lists of the same length")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise UsageError("workers and throughput must be finite numbers")
    if np.any(x <= 0) or np.any(y <= 0):
        raise UsageError("workers and throughput must all be positive")
    if len(np.unique(x)) < 3:
        raise UsageError("a fit needs at least 3 points (distinct worker counts)")
    return x, y


def _solve(x: _Array, y: _Array, gamma: float | None, *, with_kappa: bool) -> _Array:
    """Least-squares (γ, σ, κ) with R usl's start values and bounds; γ or κ held when given."""
    scale = float(np.max(y))  # fit throughput in units of its maximum: well-conditioned residuals
    yn = y / scale
    free = [gamma is None, True, with_kappa]
    start = np.array([float(np.max(yn / x)) if gamma is None else gamma / scale, 0.01, 0.0001])
    if not with_kappa:
        start[2] = 0.0
    lower = np.array([0.0, 0.0, 0.0])
    upper = np.array([np.inf, 1.0, 1.0])
    idx = [i for i in range(3) if free[i]]

    def full(p: _Array) -> _Array:
        q = start.copy()
        q[idx] = p
        return q

    def residuals(p: _Array) -> _Array:
        g, s, k = full(p)
        return np.asarray(g * x / (1.0 + s * (x - 1.0) + k * x * (x - 1.0)) - yn, dtype=np.float64)

    def jacobian(p: _Array) -> _Array:
        g, s, k = full(p)
        d = 1.0 + s * (x - 1.0) + k * x * (x - 1.0)
        cols = np.column_stack([x / d, -g * x * (x - 1.0) / d**2, -g * x * x * (x - 1.0) / d**2])
        return np.asarray(cols[:, idx], dtype=np.float64)

    # Imported here: scipy.optimize takes a quarter of a second to import, and every ``truepar``
    # command would pay it at start-up for a fit that only ``fit`` and a worker sweep need.
    from scipy.optimize import least_squares  # type: ignore[import-untyped]  # noqa: PLC0415

    result = least_squares(
        residuals,
        start[idx],
        jac=jacobian,
        bounds=(lower[idx], upper[idx]),
        method="trf",
        x_scale="jac",
        xtol=1e-15,
        ftol=1e-15,
        gtol=1e-15,
        max_nfev=20_000,
    )
    if result.status <= 0 or not np.all(np.isfinite(result.x)):
        raise UsageError(f"the scaling fit did not converge on these points ({result.message})")
    params = full(np.asarray(result.x, dtype=np.float64))
    params[0] *= scale
    # A coefficient whose whole effect on the predictions is below double precision is zero: the
    # solver only creeps towards an active bound (1e-34 instead of 0), which would print as noise
    # and turn N* into a meaningless huge number.
    n_max = float(np.max(x))
    if params[1] * (n_max - 1.0) < 1e-12:
        params[1] = 0.0
    if params[2] * n_max * (n_max - 1.0) < 1e-12:
        params[2] = 0.0
    return params


def _goodness(y: _Array, fitted: _Array, n_params: int) -> tuple[float, float]:
    ssr = float(np.sum((y - fitted) ** 2))
    sst = float(np.sum((y - np.mean(y)) ** 2))
    r_squared = 1.0 - ssr / sst if sst > 0 else (1.0 if ssr == 0 else 0.0)
    dof = len(y) - n_params
    residual_std = math.sqrt(ssr / dof) if dof > 0 else math.nan
    return r_squared, residual_std


def peak_workers(sigma: float, kappa: float) -> float:
    """N* = sqrt((1 − σ)/κ), where USL throughput peaks; ``inf`` when κ == 0."""
    if kappa <= 0:
        return math.inf
    return math.sqrt(max(1.0 - sigma, 0.0) / kappa)


def fit_usl(workers: Numbers, throughput: Numbers, gamma: float | None = None) -> UslFit:
    """Fit the USL to measured ``throughput`` at ``workers``; ``gamma`` (X(1)) is fitted unless
    given. Repeated worker counts are fitted as separate observations, as R does."""
    x, y = _checked(workers, throughput)
    if gamma is not None and not (math.isfinite(gamma) and gamma > 0):
        raise UsageError(f"gamma (the throughput of one worker) must be positive, not {gamma}")
    g, s, k = _solve(x, y, gamma, with_kappa=True)
    fitted = g * x / (1.0 + s * (x - 1.0) + k * x * (x - 1.0))
    r_squared, residual_std = _goodness(y, fitted, 3 if gamma is None else 2)
    return UslFit(
        sigma=float(s),
        kappa=float(k),
        gamma=float(g),
        peak_workers=peak_workers(float(s), float(k)),
        r_squared=r_squared,
        residual_std=residual_std,
    )


def fit_amdahl(workers: Numbers, throughput: Numbers) -> AmdahlFit:
    """Fit Amdahl's law (USL with κ = 0; σ and γ by least squares) → the serial fraction."""
    x, y = _checked(workers, throughput)
    g, s, _ = _solve(x, y, None, with_kappa=False)
    fitted = g * x / (1.0 + s * (x - 1.0))
    r_squared, _ = _goodness(y, fitted, 2)
    return AmdahlFit(
        serial_fraction=float(s),
        gamma=float(g),
        max_speedup=1.0 / float(s) if s > 0 else math.inf,
        r_squared=r_squared,
    )


def karp_flatt(workers: Numbers, speedups: Numbers) -> list[float | None]:
    """Experimentally determined serial fraction per point (Quinn, ch. 7):
    ``e = (1/S − 1/p) / (1 − 1/p)``; ``None`` where p == 1 (undefined there)."""
    p_all = [float(p) for p in np.asarray(workers, dtype=np.float64)]
    s_all = [float(s) for s in np.asarray(speedups, dtype=np.float64)]
    if len(p_all) != len(s_all):
        raise UsageError("workers and speedups must be two lists of the same length")
    out: list[float | None] = []
    for p, s in zip(p_all, s_all, strict=True):
        if not (p > 0 and s > 0 and math.isfinite(p) and math.isfinite(s)):
            raise UsageError(f"Karp–Flatt needs positive workers and speedups, not p={p}, S={s}")
        out.append(None if p == 1 else (1.0 / s - 1.0 / p) / (1.0 - 1.0 / p))
    return out


def karp_flatt_trend(workers: Numbers, karp_flatt_values: Sequence[float | None]) -> str:
    """``"rising"``, ``"falling"``, ``"constant"`` or ``"unknown"`` (fewer than 2 values).

    Rule: fit e = a + b·p by least squares over the defined points; the change it predicts across
    the measured range, b·(p_max − p_min), is compared with the typical size of e,
    max(|mean e|, 0.01). More than +TREND_THRESHOLD (25%) of it → rising; less than −25% →
    falling; otherwise constant. (For exact USL data b = κ, so this asks whether κ·range is
    small next to σ.)
    """
    p_all = np.asarray(workers, dtype=np.float64)
    if len(p_all) != len(karp_flatt_values):
        raise UsageError("workers and Karp–Flatt values must be two lists of the same length")
    pairs = [(float(p), e) for p, e in zip(p_all, karp_flatt_values, strict=True)]
    pts = [(p, e) for p, e in pairs if e is not None]
    if len(pts) < 2:
        return "unknown"
    p_arr = np.array([p for p, _ in pts])
    e_arr = np.array([e for _, e in pts])
    span = float(np.max(p_arr) - np.min(p_arr))
    if span == 0:
        return "unknown"
    slope = float(np.polyfit(p_arr, e_arr, 1)[0])
    typical = max(abs(float(np.mean(e_arr))), 0.01)
    change = slope * span / typical
    if change > TREND_THRESHOLD:
        return "rising"
    if change < -TREND_THRESHOLD:
        return "falling"
    return "constant"


def recommended_workers(workers: Numbers, fit: UslFit) -> tuple[int, str]:
    """The worker count to use, and why in a few words.

    κ > 0: the fitted peak N* (whichever neighbouring integer the fit predicts higher).
    κ == 0, σ > 0: no peak, so the largest count whose efficiency S/N is still 50% or more
    (N ≤ 1 + 1/σ; floored, not rounded: a fit a hair either side of a half must not flip it).
    σ == κ == 0: linear scaling, so the largest count measured.
    Anything beyond EXTRAPOLATION_LIMIT × the largest measured count is capped there.
    """
    n_max = float(np.max(np.asarray(workers, dtype=np.float64)))
    cap = max(1, math.floor(EXTRAPOLATION_LIMIT * n_max))
    if math.isfinite(fit.peak_workers) and fit.peak_workers < 1:
        return 1, "the fit's throughput falls from the first worker on: one is best"
    if math.isfinite(fit.peak_workers):
        lo = max(1, math.floor(fit.peak_workers))
        best = max((lo, lo + 1), key=fit.predict)
        reason = f"the fitted throughput peak, N* ≈ {fit.peak_workers:.3g}"
    elif fit.sigma > 0:
        best = max(1, math.floor(1.0 + 1.0 / fit.sigma + 1e-9))
        reason = "no throughput peak; efficiency falls to 50% there"
    else:
        return max(1, round(n_max)), "scaling looked linear up to the largest count measured"
    if best > cap:
        return cap, f"{reason}, capped at {EXTRAPOLATION_LIMIT:g}× the largest count measured"
    return best, reason


#: Every configuration at least this close to its physical lower bound: the bound shapes the
#: curve, and contention or coherency are not what limits it.
AT_THE_BOUND = 0.9


def diagnose(
    workers: Numbers,
    karp_flatt_values: Sequence[float | None],
    fit: UslFit,
    bound_efficiency: Sequence[float | None] | None = None,
) -> str:
    """What limits scaling, in plain words, plus a recommended worker count.

    Karp–Flatt e decides the kind (see :func:`karp_flatt_trend` for the rule): constant e →
    serial code (Amdahl); rising e → overhead growing with workers; falling e → the work per
    worker changed (superlinear cache effects, or the workload shrank). The fit supplies σ, κ
    and the recommendation (see :func:`recommended_workers`).
    """
    trend = karp_flatt_trend(workers, karp_flatt_values)
    defined = [e for e in karp_flatt_values if e is not None]
    parts: list[str] = []
    bounds = [b for w, b in zip(workers, bound_efficiency or (), strict=False) if w > 1]
    at_bound = bool(bounds) and all(b is not None and b >= AT_THE_BOUND for b in bounds)
    if at_bound:
        # The plan's own shape (critical path, op time over workers, CPU over cores) caps the
        # speedup: the runs reached it, so nothing else — no contention — is to blame.
        parts.append(
            f"Every configuration ran within {1 - AT_THE_BOUND:.0%} of its physical lower bound"
            " (critical path, op time over workers, CPU over cores): the plan's shape, not"
            " contention, limits the speedup; σ and κ describe that bound."
        )
    elif trend == "rising" and fit.kappa > 0:
        parts.append(
            f"Karp–Flatt e rises from {defined[0]:.3g} to {defined[-1]:.3g}: overhead grows with"
            f" workers (coherency/contention, κ > 0; fitted κ ≈ {fit.kappa:.3g})."
        )
    elif trend == "rising":
        # e rises while the fit finds no coherency term: usually a low one-worker measurement
        # (e is computed against it, the fit is not), so both readings are given.
        parts.append(
            f"Karp–Flatt e rises from {defined[0]:.3g} to {defined[-1]:.3g}, which suggests"
            " overhead that grows with workers, but the USL fit finds κ = 0: contention"
            " (σ) alone explains the sweep; check the smallest-worker measurement."
        )
    elif trend == "falling":
        parts.append(
            f"Karp–Flatt e falls from {defined[0]:.3g} to {defined[-1]:.3g}: more workers did"
            " relatively better (cache effects) or the work changed; check the work is fixed."
        )
    elif trend == "constant":
        e_mean = float(np.mean(defined))
        if abs(e_mean) < 0.005:
            parts.append("Karp–Flatt e ≈ 0: scaling is close to linear.")
        elif e_mean >= 1:
            parts.append(
                f"Karp–Flatt e ≈ {e_mean:.3g} ≥ 1: more workers were slower than one — no"
                " serial fraction explains that; overhead dominates."
            )
        else:
            limit = f", at most {1.0 / e_mean:.3g}× speedup" if e_mean > 0 else ""
            parts.append(
                f"Karp–Flatt e is roughly constant: serial fraction ≈ {100 * e_mean:.3g}%"
                f" limits scaling (Amdahl{limit})."
            )
    else:
        parts.append("Too few points beside one worker to judge the Karp–Flatt trend.")
    parts.append(f"USL fit: σ ≈ {fit.sigma:.3g}, κ ≈ {fit.kappa:.3g}, R² = {fit.r_squared:.3g}.")
    if math.isnan(fit.residual_std):
        parts.append(
            f"With {len(workers)} points and as many parameters no degree of freedom is left:"
            " R² says nothing about whether the law holds; measure more worker counts."
        )
    n, why = recommended_workers(workers, fit)
    parts.append(f"Recommended workers: {n} ({why}).")
    return " ".join(parts)
