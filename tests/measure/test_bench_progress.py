"""A default bench that respects the user's time: early stopping, its record, the progress it shows.

Everything timed runs on the fake backend's virtual clock, and noise is injected into the run
traces the bench sees: the rule is tested on exact numbers, never on how fast this machine is.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import truepar
from truepar import FakeSpec, SleepOp
from truepar.cli.bench_progress import ProgressView
from truepar.cli.bench_table import early_stop_lines, show
from truepar.errors import UsageError
from truepar.measure import BenchReport, bench
from truepar.measure.early_stop import BenchProgress, StopRule, tight
from truepar.records import RunTrace

RULE = StopRule()
#: The module, which ``truepar.measure.bench`` (the function) hides.
bench_module = importlib.import_module("truepar.measure.bench")


def fake_plan(tmp_path: Path, n: int = 4, duration: float = 1.0) -> truepar.Plan:
    ops = [
        SleepOp(id=f"s{i}", seconds=duration, fake=FakeSpec(duration_s=duration, value=i))
        for i in range(n)
    ]
    return truepar.Plan(
        name="fake", ops=ops, defaults=truepar.Defaults(backend="fake"), base_dir=tmp_path
    )


def trials_of(report: BenchReport) -> dict[tuple[str, int], int]:
    return {(r.backend, r.workers): r.trials for r in report.results}


def noisy_runs(
    monkeypatch: pytest.MonkeyPatch, factor: Callable[[int, int], float]
) -> list[tuple[int, int]]:
    """Make the bench's runs take ``factor(workers, n-th run of that count)`` × their fake wall."""
    real = bench_module.run
    seen: list[tuple[int, int]] = []

    def run(plan: Any, **kw: Any) -> RunTrace:
        trace: RunTrace = real(plan, **kw)
        nth = sum(1 for w, _ in seen if w == trace.workers)
        seen.append((trace.workers, nth))
        wall = trace.totals.wall_s * factor(trace.workers, nth)
        end_ns = trace.start_ns + round(wall * 1e9)
        totals = dataclasses.replace(trace.totals, wall_s=wall)
        return dataclasses.replace(trace, totals=totals, end_ns=end_ns)

    monkeypatch.setattr(bench_module, "run", run)
    return seen


# -- the rule --------------------------------------------------------------------------------------


def test_a_tight_interval_stops_and_a_wide_one_does_not() -> None:
    base = [4.0, 4.0, 4.0]
    stop = tight(("fake", 4), base, [1.0, 1.01, 0.99], RULE, min_speedup=1.1)
    assert stop is not None and stop.trials == 3 and stop.rel_half_width <= 0.05
    assert tight(("fake", 4), base, [1.0, 1.3, 0.8], RULE, min_speedup=1.1) is None


def test_no_stop_before_the_minimum_of_three_trials() -> None:
    assert tight(("fake", 4), [4.0, 4.0], [1.0, 1.0], RULE, min_speedup=1.1) is None


def test_an_interval_across_min_speedup_keeps_running_however_narrow() -> None:
    # 1.08–1.12 is within ±5%, but more trials could still make the gain clear (or not).
    base = [1.08, 1.10, 1.12]
    assert tight(("fake", 2), base, [1.0, 1.0, 1.0], RULE, min_speedup=1.1) is None
    assert tight(("fake", 2), base, [1.0, 1.0, 1.0], RULE, min_speedup=1.05) is not None


def test_the_rule_keeps_three_trials_as_its_floor() -> None:
    with pytest.raises(UsageError, match="at least 3"):
        StopRule(min_trials=2)
    with pytest.raises(UsageError, match="max_trials"):
        StopRule(min_trials=4, max_trials=3)
    with pytest.raises(UsageError, match="between 0 and 1"):
        StopRule(max_rel_half_width=0)


# -- the bench -------------------------------------------------------------------------------------


def test_a_quiet_plan_stops_after_three_trials_and_says_why(tmp_path: Path) -> None:
    report = bench(fake_plan(tmp_path), backends=("fake",), workers=(2, 4), cores=8)
    assert report.complete and report.repeat == RULE.max_trials
    assert trials_of(report) == {("fake", 2): 3, ("fake", 4): 3}
    assert report.baseline is not None and report.baseline.trials == 3
    data = report.to_json()["early_stop"]
    assert data["rule"] == {
        "min_trials": 3,
        "max_trials": 5,
        "max_rel_half_width": 0.05,
        "min_speedup": 1.1,
    }
    assert [(s["backend"], s["workers"], s["trials"]) for s in data["stopped"]] == [
        ("fake", 2, 3),
        ("fake", 4, 3),
    ]
    assert "within ±5%" in data["why"]
    assert not any("trial" in w for w in report.warnings)  # 3 trials: no warning owed
    (line,) = early_stop_lines(report)
    assert "stopped early: fake ×2, fake ×4 after 3 of at most 5" in line
    assert "--repeat N" in line


def test_a_noisy_configuration_runs_on_and_the_baseline_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ×4 is 1.0, 1.3, 0.8, … of its time: its interval stays wide, so it gets all 5 trials;
    # ×2 is steady and stops at 3. The baseline pairs ×4 to the end.
    swings = [1.0, 1.3, 0.8, 1.25, 0.85, 1.2]
    noisy_runs(monkeypatch, lambda w, nth: swings[nth] if w == 4 else 1.0)
    report = bench(fake_plan(tmp_path), backends=("fake",), workers=(2, 4), cores=8)
    assert report.complete
    assert trials_of(report) == {("fake", 2): 3, ("fake", 4): 5}
    assert report.baseline is not None and report.baseline.trials == 5
    assert report.early_stop is not None
    assert [(s.backend, s.workers) for s in report.early_stop.stops] == [("fake", 2)]
    assert "3–5 trials" in render(report, width=100)


def test_an_exact_repeat_never_stops_early(tmp_path: Path) -> None:
    report = bench(fake_plan(tmp_path), backends=("fake",), workers=(2, 4), repeat=5, cores=8)
    assert trials_of(report) == {("fake", 2): 5, ("fake", 4): 5}
    assert report.early_stop is None and report.to_json()["early_stop"] is None
    assert early_stop_lines(report) == []


def test_fewer_than_three_exact_trials_still_warn(tmp_path: Path) -> None:
    report = bench(fake_plan(tmp_path), backends=("fake",), workers=(2,), repeat=2, warmup=0)
    assert any("only 2 measured trial(s)" in w for w in report.warnings)


def test_a_small_quiet_plan_benches_at_its_own_workers_in_three_trials(tmp_path: Path) -> None:
    """20 × 0.1 s sleeps: the runs a default bench makes and the seconds they take on an exact
    clock, against the first defaults' warmup trial and 5 measured trials at 2, 4 and 8 workers:
    one unmeasured sequential run, then 3 trials at the plan's own workers (8)."""
    plan = fake_plan(tmp_path, n=20, duration=0.1)
    assert plan.defaults.workers == 8
    old = bench(plan, backends=("fake",), workers=(2, 4, 8), repeat=5, warmup=1, cores=8)
    new = bench(plan, backends=("fake",), cores=8)
    assert [(r.backend, r.workers, r.trials) for r in new.results] == [("fake", 8, 3)]
    assert [(s.trial, s.workers) for s in new.samples if s.warmup] == [(-1, 1)]
    assert len(new.samples) == 1 + 3 * 2 and len(old.samples) == 6 * 4
    old_s = sum(s.wall_s for s in old.samples)
    new_s = sum(s.wall_s for s in new.samples)
    assert old_s == pytest.approx(6 * (2.0 + 1.0 + 0.5 + 0.3))
    assert new_s == pytest.approx(2.0 + 3 * (2.0 + 0.3))
    # A scaling curve is one option away.
    curve = bench(plan, backends=("fake",), workers=(2, 4, 8), cores=8)
    assert [r.workers for r in curve.results] == [2, 4, 8]


def test_without_a_warmup_trial_each_backend_is_primed_once_at_its_most_workers() -> None:
    configs = [("sequential", 1), ("threads", 2), ("threads", 8), ("async", 4), ("async", 2)]
    assert bench_module._primers(configs) == [("sequential", 1), ("threads", 8), ("async", 4)]
    # On the fake backend the baseline is the backend's own 1-worker run: nothing else to prime.
    assert bench_module._primers([("fake", 1), ("fake", 4)]) == [("fake", 1)]


def test_a_backend_that_leaves_threads_is_primed_before_processes() -> None:
    """Ray's client threads turn later processes workers to a fork server: its start belongs in
    processes' priming run, so Ray is primed first (whatever the order asked)."""
    configs = [("sequential", 1), ("processes", 2), ("threads", 2), ("ray", 2)]
    assert bench_module._primers(configs) == [
        ("sequential", 1),
        ("ray", 2),
        ("processes", 2),
        ("threads", 2),
    ]


# -- progress --------------------------------------------------------------------------------------


def test_progress_counts_runs_and_estimates_the_time_left(tmp_path: Path) -> None:
    seen: list[BenchProgress] = []
    plan = fake_plan(tmp_path)
    bench(plan, backends=("fake",), workers=(2, 4), warmup=1, cores=8, on_progress=seen.append)
    # 1 warmup + 3 measured trials of 3 configurations: 12 runs, each announced once.
    assert [p.runs_done for p in seen] == list(range(12))
    assert {p.runs_planned for p in seen} == {12}
    assert [p.trial for p in seen[::3]] == [0, 1, 2, 3] and seen[0].warmup and not seen[3].warmup
    assert seen[0].eta_s is None  # nothing measured yet
    # After the baseline's 4 s: ×2 guessed at 2 s, ×4 at 1 s; then measured times, exactly.
    assert seen[1].eta_s == pytest.approx(2.0 + 1.0 + 3 * (4.0 + 2.0 + 1.0))
    assert seen[-1].eta_s == pytest.approx(1.0 if seen[-1].config == ("fake", 4) else 2.0)
    etas = [p.eta_s for p in seen[1:] if p.eta_s is not None]
    assert len(etas) == len(seen) - 1
    assert etas == sorted(etas, reverse=True)


def test_the_plan_grows_when_a_configuration_is_not_tight_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    swings = [1.0, 1.3, 0.8, 1.25, 0.85, 1.2]
    noisy_runs(monkeypatch, lambda w, nth: swings[nth] if w == 4 else 1.0)
    seen: list[BenchProgress] = []
    bench(fake_plan(tmp_path), backends=("fake",), workers=(2, 4), cores=8, on_progress=seen.append)
    assert seen[0].trial == -1 and seen[0].trials_planned == 3 and seen[-1].trials_planned == 5
    assert seen[-1].runs_planned == len(seen) == 1 + 3 * 3 + 2 * 2  # 4, 5: baseline and ×4


def test_without_a_terminal_progress_is_one_plain_line_a_trial(tmp_path: Path) -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=80)  # not a terminal: a pipe, a CI log
    with ProgressView(console) as view:
        bench(fake_plan(tmp_path), backends=("fake",), workers=(2, 4), on_progress=view.update)
    lines = buf.getvalue().splitlines()
    assert lines[0] == "first run (not measured): estimating time left"
    assert lines[1].startswith("trial 1/3: about ") and lines[1].endswith(" s left")
    assert len(lines) == 4 and "\x1b" not in buf.getvalue()


def test_on_a_terminal_progress_is_a_bar_with_trial_config_and_time_left(tmp_path: Path) -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=80, force_terminal=True)
    frames: list[str] = []

    def update(p: BenchProgress) -> None:
        view.update(p)
        frames.append(buf.getvalue())

    with ProgressView(console) as view:
        bench(fake_plan(tmp_path), backends=("fake",), workers=(2, 4), warmup=1, on_progress=update)
    assert "trial 2/4 fake ×2" in frames[3] or "trial 2/4 fake ×4" in frames[3]
    assert "runs · about" in frames[-1] and "s left" in frames[-1]
    assert "11/12" in frames[-1]


def render(report: BenchReport, width: int) -> str:
    console = Console(width=width, file=io.StringIO())
    with console.capture() as cap:
        show(console, report)
    return cap.get()


def test_the_json_contract_keeps_its_fields(tmp_path: Path) -> None:
    data = json.loads(json.dumps(bench(fake_plan(tmp_path), backends=("fake",)).to_json()))
    assert data["repeat"] == 5 and {"results", "trials", "early_stop"} <= set(data)
