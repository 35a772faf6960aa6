"""How many trials a bench runs: the early-stop rule, and the runs still planned (for progress).

Without an exact ``repeat`` a bench measures every configuration ``min_trials`` times, then stops
each one as soon as its speedup's 95% interval is *tight*: its half-width is at most
``max_rel_half_width`` of the speedup, and it lies wholly on one side of ``min_speedup`` — so more
trials could neither move the speedup by more than that nor turn "no clear gain" into a clear one
(or back). A configuration that never gets there stops at ``max_trials``. The sequential baseline
runs as long as any configuration does, because speedups are paired within trials. With an exact
``repeat`` nothing stops early: every configuration gets exactly that many trials.

Sleeps and other quiet plans are tight after 3 trials, so a small plan benches in seconds rather
than minutes; a noisy one still gets the trials it needs, up to the cap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from truepar.errors import UsageError
from truepar.measure.stats import paired_speedup

Config = tuple[str, int]


@dataclasses.dataclass(frozen=True, slots=True)
class StopRule:
    """When a configuration has been measured enough (see the module's docstring)."""

    min_trials: int = 3
    max_trials: int = 5
    #: The speedup interval's half-width, as a fraction of the speedup, that counts as tight.
    max_rel_half_width: float = 0.05

    def __post_init__(self) -> None:
        if self.min_trials < 3:  # fewer give no interval worth the name (an exact repeat can)
            raise UsageError(f"min_trials must be at least 3, not {self.min_trials}")
        if self.max_trials < self.min_trials:
            raise UsageError(
                f"max_trials ({self.max_trials}) must be at least min_trials ({self.min_trials})"
            )
        if not 0 < self.max_rel_half_width < 1:
            raise UsageError(
                f"max_rel_half_width must be between 0 and 1, not {self.max_rel_half_width}"
            )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


DEFAULT_STOP_RULE = StopRule()


@dataclasses.dataclass(frozen=True, slots=True)
class Stop:
    """A configuration the rule stopped before ``max_trials``, and the interval that stopped it."""

    backend: str
    workers: int
    trials: int
    speedup: float
    speedup_ci: tuple[float, float]

    @property
    def rel_half_width(self) -> float:
        lo, hi = self.speedup_ci
        return (hi - lo) / 2 / self.speedup if self.speedup > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "workers": self.workers,
            "trials": self.trials,
            "speedup": self.speedup,
            "speedup_ci": list(self.speedup_ci),
            "rel_half_width": self.rel_half_width,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class StopRecord:
    """What the evidence says of early stopping: the rule and every configuration it stopped."""

    rule: StopRule
    min_speedup: float
    stops: tuple[Stop, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": {**self.rule.to_json(), "min_speedup": self.min_speedup},
            "stopped": [s.to_json() for s in self.stops],
            "why": (
                f"each stopped configuration's speedup 95% interval was within "
                f"±{self.rule.max_rel_half_width:.0%} of its speedup and wholly on one side of "
                f"{self.min_speedup:g} after at least {self.rule.min_trials} trials: "
                "more trials would not change the result (run with an exact repeat for all)"
            ),
        }


def tight(
    key: Config,
    base_s: Sequence[float],
    config_s: Sequence[float],
    rule: StopRule,
    min_speedup: float,
) -> Stop | None:
    """The :class:`Stop` of ``key`` if its paired walls already give a tight interval."""
    if len(config_s) < rule.min_trials or any(x <= 0 for x in (*base_s, *config_s)):
        return None
    speedup, (lo, hi) = paired_speedup(base_s, config_s)
    stop = Stop(key[0], key[1], len(config_s), speedup, (lo, hi))
    straddles = lo <= min_speedup < hi
    if stop.rel_half_width > rule.max_rel_half_width or straddles:
        return None
    return stop


@dataclasses.dataclass(frozen=True, slots=True)
class BenchProgress:
    """Where a bench is, given before each run: for a progress bar."""

    #: The trial (0-based, warmup trials first); -1 for the unmeasured first run of ``warmup=0``.
    trial: int
    #: Trials planned now, warmup included (it falls as configurations stop early).
    trials_planned: int
    warmup: bool
    config: Config
    runs_done: int
    runs_planned: int
    #: Seconds the planned runs left are expected to take (``None`` until there is a measure).
    eta_s: float | None


class Schedule:
    """Which configurations a trial runs, which have stopped, and the runs still planned."""

    def __init__(
        self,
        configs: Sequence[Config],
        warmup: int,
        repeat: int | None,
        rule: StopRule,
        min_speedup: float,
    ) -> None:
        self.configs = list(configs)
        self.warmup = warmup
        self.exact = repeat is not None
        self.rule = rule
        self.cap = repeat if repeat is not None else rule.max_trials
        self.min_speedup = min_speedup
        self.stops: dict[Config, Stop] = {}
        #: Configurations the rule looked at and found not tight yet.
        self._loose: set[Config] = set()
        self._walls: dict[Config, dict[int, float]] = {k: {} for k in self.configs}
        self._last_s: dict[Config, float] = {}
        self.runs_done = 0

    @property
    def base(self) -> Config:
        return self.configs[0]

    def active(self, key: Config) -> bool:
        if key == self.base:  # the baseline pairs every other configuration's trials
            others = [k for k in self.configs if k != key]
            return any(self.active(k) for k in others) or (
                not others and self.measured(key) < self._planned(key)
            )
        return key not in self.stops and self.measured(key) < self.cap

    def measured(self, key: Config) -> int:
        return len(self._walls[key])

    def trials(self) -> range:
        return range(self.warmup + self.cap)

    def order(self, trial: int) -> list[Config]:
        """The configurations of ``trial``, in an order rotated from one trial to the next."""
        shift = trial % len(self.configs)
        rotated = self.configs[shift:] + self.configs[:shift]
        return rotated if trial < self.warmup else [k for k in rotated if self.active(k)]

    def ran(self, key: Config, trial: int, wall_s: float, warmup: bool) -> None:
        self.runs_done += 1
        self._last_s[key] = wall_s
        if not warmup:
            self._walls[key][trial] = wall_s

    def end_trial(self, trial: int) -> None:
        """Apply the rule to every configuration still running (never with an exact repeat)."""
        if self.exact or trial < self.warmup:
            return
        base = self._walls[self.base]
        for key in self.configs[1:]:
            if key in self.stops or not self.active(key):
                continue
            mine = {t: s for t, s in self._walls[key].items() if t in base}
            trials = sorted(mine)
            stop = tight(
                key,
                [base[t] for t in trials],
                [mine[t] for t in trials],
                self.rule,
                self.min_speedup,
            )
            if stop is not None and stop.trials < self.cap:
                self.stops[key] = stop
            elif self.measured(key) >= self.rule.min_trials:
                self._loose.add(key)

    def record(self) -> StopRecord | None:
        if self.exact:
            return None
        stops = tuple(self.stops[k] for k in self.configs if k in self.stops)
        return StopRecord(self.rule, self.min_speedup, stops)

    # -- the plan of runs still to come, for progress -------------------------------------------

    def _planned(self, key: Config) -> int:
        """Measured trials ``key`` is expected to get: the minimum until the rule has looked at
        it (most configurations stop there), then the cap (it was not tight yet)."""
        if key == self.base:
            others = [self._planned(k) for k in self.configs[1:]]
            return max(others, default=self.cap if self.exact else self.rule.min_trials)
        if key in self.stops:
            return self.measured(key)
        if self.exact or key in self._loose:
            return self.cap
        return self.rule.min_trials

    def _expected_s(self, key: Config) -> float | None:
        if key in self._last_s:
            return self._last_s[key]
        if self.base in self._last_s:  # a guess until measured: the baseline's time, shared
            return self._last_s[self.base] / key[1]
        return None

    def progress(self, trial: int, left_in_trial: Sequence[Config]) -> BenchProgress:
        """Before the first of ``left_in_trial``, the runs of ``trial`` still to come."""
        planned_last = self.warmup + max(self._planned(k) for k in self.configs)
        left = list(left_in_trial)
        for t in range(max(trial + 1, 0), planned_last):
            left += [
                k for k in self.configs if t < self.warmup or t - self.warmup < self._planned(k)
            ]
        guesses = [self._expected_s(k) for k in left]
        eta = None if any(g is None for g in guesses) else sum(g or 0.0 for g in guesses)
        return BenchProgress(
            trial=trial,
            trials_planned=planned_last,
            warmup=trial < self.warmup,
            config=left_in_trial[0] if left_in_trial else self.base,
            runs_done=self.runs_done,
            runs_planned=self.runs_done + len(left),
            eta_s=eta,
        )
