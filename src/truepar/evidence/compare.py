"""Compare two benches configuration by configuration: is B slower than A beyond the noise?

Configurations are matched by ``(backend, workers)``. For each, the measured (non-warmup) trial
walls of A and B give the ratio of medians B/A and its percentile-bootstrap interval, each side
resampled on its own (the two benches ran apart, so there are no pairs to keep) with a fixed seed.
A configuration is ``slower`` when the whole interval lies above ``1 + threshold``, ``faster``
when it lies below ``1 - threshold``, else ``same``: a difference inside the noise or under the
threshold is no difference. A verdict that got worse (``parallel`` → ``serialized``) is a
regression too, whatever the wall times say.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from truepar.errors import UsageError
from truepar.measure.stats import RESAMPLES, SEED

Change = Literal["slower", "faster", "same"]

#: Verdicts from best to worst; a move down this list is a regression.
VERDICT_RANK = {"parallel": 3, "concurrent": 2, "serialized": 1, "suspect": 0}

Key = tuple[str, int]


@dataclass(frozen=True)
class ConfigDiff:
    """One configuration in both benches."""

    backend: str
    workers: int
    a_wall_s: float
    b_wall_s: float
    a_trials: int
    b_trials: int
    ratio: float
    ci: tuple[float, float]
    change: Change
    a_verdict: str | None
    b_verdict: str | None

    @property
    def label(self) -> str:
        return f"{self.backend} ×{self.workers}"

    @property
    def verdict_change(self) -> Literal["worse", "better"] | None:
        a, b = VERDICT_RANK.get(self.a_verdict or ""), VERDICT_RANK.get(self.b_verdict or "")
        if a is None or b is None or a == b:
            return None
        return "worse" if b < a else "better"

    @property
    def regression(self) -> bool:
        return self.change == "slower" or self.verdict_change == "worse"

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "workers": self.workers,
            "a_wall_s": self.a_wall_s,
            "b_wall_s": self.b_wall_s,
            "a_trials": self.a_trials,
            "b_trials": self.b_trials,
            "ratio": self.ratio,
            "ratio_ci": list(self.ci),
            "change": self.change,
            "a_verdict": self.a_verdict,
            "b_verdict": self.b_verdict,
            "verdict_change": self.verdict_change,
            "regression": self.regression,
        }


@dataclass(frozen=True)
class Comparison:
    configs: list[ConfigDiff]
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    threshold: float = 0.05
    level: float = 0.95
    #: What makes the comparison weaker than it looks (benches of different plans).
    warnings: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[ConfigDiff]:
        return [c for c in self.configs if c.regression]

    @property
    def ok(self) -> bool:
        return not self.regressions

    def to_json(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "level": self.level,
            "configs": [c.to_json() for c in self.configs],
            "only_a": list(self.only_a),
            "only_b": list(self.only_b),
            "regressions": [c.label for c in self.regressions],
            "ok": self.ok,
            "warnings": list(self.warnings),
        }


def _label(key: Key) -> str:
    return f"{key[0]} ×{key[1]}"


def _configs(doc: Any, name: str) -> dict[Key, tuple[list[float], str | None]]:
    """Each configuration's measured walls and verdict, from a bench evidence document."""
    if not isinstance(doc, Mapping) or doc.get("kind") != "bench":
        kind = doc.get("kind") if isinstance(doc, Mapping) else None
        raise UsageError(f"{name}: not bench evidence (kind {kind!r})")
    data = doc.get("data")
    if not isinstance(data, Mapping) or not isinstance(data.get("results"), list):
        raise UsageError(f"{name}: bench evidence without data.results")
    results = data["results"]
    rows = list(results)
    if isinstance(data.get("baseline"), Mapping):
        rows.insert(0, data["baseline"])
    trials = data.get("trials")
    walls: dict[Key, list[float]] = {}
    try:
        for t in trials if isinstance(trials, list) else []:
            if not t.get("warmup"):
                walls.setdefault((str(t["backend"]), int(t["workers"])), []).append(
                    float(t["wall_s"])
                )
        out: dict[Key, tuple[list[float], str | None]] = {}
        for r in rows:
            key = (str(r["backend"]), int(r["workers"]))
            samples = walls.get(key) or [float(r["wall_s"])]
            out[key] = (samples, r.get("verdict"))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"{name}: malformed bench evidence ({type(exc).__name__}: {exc})") from exc
    for key, (samples, _) in out.items():
        if not all(np.isfinite(s) and s > 0 for s in samples):
            raise UsageError(f"{name}: {_label(key)} has a wall time that is not positive")
    return out


def ratio_ci(
    a_s: Sequence[float], b_s: Sequence[float], *, level: float = 0.95
) -> tuple[float, tuple[float, float]]:
    """``median(b) / median(a)`` and its bootstrap interval, the two sides resampled apart."""
    a = np.asarray(a_s, dtype=float)
    b = np.asarray(b_s, dtype=float)
    point = float(np.median(b) / np.median(a))
    if np.all(a == a[0]) and np.all(b == b[0]):
        return point, (point, point)
    rng = np.random.default_rng(SEED)
    ma = np.median(a[rng.integers(0, a.size, size=(RESAMPLES, a.size))], axis=1)
    mb = np.median(b[rng.integers(0, b.size, size=(RESAMPLES, b.size))], axis=1)
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(mb / ma, [tail, 100 - tail])
    return point, (min(float(lo), point), max(float(hi), point))


def compare(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    *,
    threshold: float = 0.05,
    level: float = 0.95,
    names: tuple[str, str] = ("A", "B"),
) -> Comparison:
    """Compare bench ``b`` against bench ``a``; see the module's docstring for the rules."""
    if not 0 <= threshold < 1:
        raise UsageError(f"threshold must be in [0, 1), not {threshold}")
    if not 0 < level < 1:
        raise UsageError(f"level must be in (0, 1), not {level}")
    ca, cb = _configs(a, names[0]), _configs(b, names[1])
    common = [k for k in ca if k in cb]
    if not common:
        raise UsageError(
            f"{names[0]} and {names[1]} have no configuration (backend, workers) in common"
        )
    diffs = []
    for key in sorted(common, key=lambda k: (k[0], k[1])):
        (wa, va), (wb, vb) = ca[key], cb[key]
        point, (lo, hi) = ratio_ci(wa, wb, level=level)
        change: Change = (
            "slower" if lo > 1 + threshold else "faster" if hi < 1 - threshold else "same"
        )
        diffs.append(
            ConfigDiff(
                backend=key[0],
                workers=key[1],
                a_wall_s=float(np.median(wa)),
                b_wall_s=float(np.median(wb)),
                a_trials=len(wa),
                b_trials=len(wb),
                ratio=point,
                ci=(lo, hi),
                change=change,
                a_verdict=va,
                b_verdict=vb,
            )
        )
    return Comparison(
        configs=diffs,
        only_a=[_label(k) for k in ca if k not in cb],
        only_b=[_label(k) for k in cb if k not in ca],
        threshold=threshold,
        level=level,
        warnings=_plan_warnings(a, b, names),
    )


def _plan_warnings(a: Mapping[str, Any], b: Mapping[str, Any], names: tuple[str, str]) -> list[str]:
    """A and B timed different plans: their walls measure different work."""
    pa, pb = a.get("plan") or {}, b.get("plan") or {}
    if not isinstance(pa, Mapping) or not isinstance(pb, Mapping):
        return []
    if pa.get("sha256") == pb.get("sha256"):
        return []
    what = (
        f"plans {pa.get('name')!r} and {pb.get('name')!r}"
        if pa.get("name") != pb.get("name")
        else f"two versions of plan {pa.get('name')!r} (their contents differ)"
    )
    return [
        f"{names[0]} and {names[1]} are benches of {what}: a change in wall time may be a "
        "change in the work, not in its speed"
    ]
