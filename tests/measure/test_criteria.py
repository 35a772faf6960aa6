"""Success criteria and the verification tree, on exact fake-backend benches."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

import truepar
from truepar import FakeSpec, SleepOp
from truepar.cli.tree import verification_tree
from truepar.measure import BenchReport, bench
from truepar.measure.criteria import Criteria, validate


def fake_report(tmp_path: Path, *, cpu: float, fail: int = 0, n: int = 4) -> BenchReport:
    ops = [
        SleepOp(
            id=f"s{i}",
            seconds=1.0,
            fake=FakeSpec(duration_s=1.0, cpu_s=cpu, value=i, bytes_out=4000, fail=fail),
        )
        for i in range(n)
    ]
    plan = truepar.Plan(
        name="fake", ops=ops, defaults=truepar.Defaults(backend="fake"), base_dir=tmp_path
    )
    return bench(plan, backends=("fake",), workers=(4,), repeat=2, warmup=0, cores=8)


def render(report: BenchReport, criteria: Criteria) -> str:
    plan = truepar.Plan(name="fake", ops=[SleepOp(id="a", seconds=0), SleepOp(id="b", seconds=0)])
    buffer = io.StringIO()
    Console(file=buffer, width=200, color_system=None).print(
        verification_tree("fake ops", plan, report, validate(report, criteria))
    )
    return buffer.getvalue()


def test_met_criteria_validate(tmp_path: Path) -> None:
    report = fake_report(tmp_path, cpu=0.0)  # four 1 s waits on four workers: 4×, concurrent
    v = validate(report, Criteria(min_speedup=3.5, verdict="concurrent"))
    assert v.validated and v.state == "VALIDATED" and v.failures == ()
    text = render(report, v.criteria)
    assert "PARALLEL EXECUTION VERIFICATION — fake ops" in text
    assert "Improvement ratio: 4.00× [95% CI 4.00–4.00]" in text
    assert "Sequential time: 4.00 s (median of 2, CV 0%)" in text
    assert "Context usage: 16.0 kB ≈ 4.0k tokens (estimated)" in text
    assert "Errors: 0 / 8 op runs" in text
    assert "State: VALIDATED (required: speedup ≥ 3.5, verdict concurrent)" in text


def test_unmet_speedup_is_not_validated_with_the_reason(tmp_path: Path) -> None:
    report = fake_report(tmp_path, cpu=0.0)
    v = validate(report, Criteria(min_speedup=5))
    assert not v.validated
    assert v.failures == ("speedup 4.00× < required 5×",)
    assert "State: NOT VALIDATED — speedup 4.00× < required 5×" in render(report, v.criteria)


def test_a_different_verdict_is_not_validated(tmp_path: Path) -> None:
    report = fake_report(tmp_path, cpu=0.9)  # CPU work on four workers: parallel
    v = validate(report, Criteria(verdict="concurrent"))
    assert not v.validated and v.failures == ("verdict parallel ≠ required concurrent",)


def test_without_criteria_a_real_gain_is_still_required(tmp_path: Path) -> None:
    assert validate(fake_report(tmp_path, cpu=0.0), Criteria()).validated
    one = bench(
        truepar.Plan(
            name="chain",
            ops=[SleepOp(id="a", seconds=1), SleepOp(id="b", seconds=1, after=("a",))],
            defaults=truepar.Defaults(backend="fake"),
        ),
        backends=("fake",),
        workers=(2,),
        repeat=2,
        warmup=0,
    )
    v = validate(one, Criteria())
    assert not v.validated
    assert any("no real gain" in f for f in v.failures)


def test_failed_op_runs_are_never_validated(tmp_path: Path) -> None:
    report = fake_report(tmp_path, cpu=0.0, fail=-1)
    v = validate(report, Criteria(min_speedup=1.0))
    assert not v.validated
    assert any("op runs failed" in f for f in v.failures)
