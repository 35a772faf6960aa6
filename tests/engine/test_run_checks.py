"""One way to run a plan: ``truepar.run(plan)`` makes the same checks as ``truepar run`` —
an unsafe plan is refused by both, with the same words — and ``checks=False`` is the one way to
skip them."""

from __future__ import annotations

from pathlib import Path

import pytest

import truepar
from helpers.cli import truepar as truepar_cli
from truepar.measure import bench

UNSAFE = """
name = "unsafe"
[[op]]
id = "fix-a"
tool = "agent"
argv = ["true"]
prompt = "fix"
repo = "."
isolation = "worktree"
[[op]]
id = "fix-b"
tool = "agent"
argv = ["true"]
prompt = "fix"
repo = "."
isolation = "worktree"
"""


def test_an_unsafe_plan_is_refused_the_same_from_python_and_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(UNSAFE)
    with pytest.raises(truepar.PlanError) as caught:
        truepar.run(path)
    proc = truepar_cli("run", str(path), "--no-evidence")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"truepar: error: {caught.value}"
    assert "TP004" in str(caught.value)
    with pytest.raises(truepar.PlanError, match="TP004"):
        bench(path, backends=("threads",), workers=(2,), repeat=1)


def test_checks_false_is_the_one_way_to_skip_them(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(UNSAFE)
    trace = truepar.run(path, checks=False)  # `true` changes nothing: safe to run in place
    assert trace.ok
    with pytest.raises(truepar.UsageError, match="checks=False"):
        truepar.run(path, budget=truepar.engine.BudgetDecision())


def test_a_safe_plan_gives_the_same_result_both_ways(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text('name = "safe"\n[[op]]\nid = "a"\ntool = "sleep"\nseconds = 0\n')
    assert truepar.run(path).ok
    assert truepar_cli("run", str(path), "--no-evidence", "-q").returncode == 0
