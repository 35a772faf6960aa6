"""``truepar bench`` as a user runs it: a real subprocess, a real plan file, exit codes, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.cli import truepar


def sleeps_plan(tmp_path: Path, n: int = 4, seconds: float = 0.05) -> Path:
    ops = "".join(f'\n[[op]]\nid = "s{i}"\ntool = "sleep"\nseconds = {seconds}\n' for i in range(n))
    path = tmp_path / "sleeps.toml"
    path.write_text(f'name = "sleeps"\n{ops}')
    return path


def test_bench_writes_the_json_contract(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = truepar(
        "bench", str(sleeps_plan(tmp_path)), "--backends", "threads", "--workers", "1,4",
        "--repeat", "2", "--json", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    assert data["complete"] is True
    assert {"results", "baseline", "warnings", "environment", "thresholds", "trials"} <= set(data)
    by_w = {r["workers"]: r for r in data["results"]}
    assert set(by_w) == {1, 4}
    for r in by_w.values():
        assert {"backend", "workers", "speedup", "cores_used", "verdict", "reasons"} <= set(r)
        assert r["backend"] == "threads" and r["reasons"]
    assert by_w[4]["verdict"] == "concurrent" and by_w[4]["speedup"] > 2
    assert by_w[1]["verdict"] == "serialized"
    assert "concurrent" in proc.stdout and "speedup" in proc.stdout


def test_by_default_the_plan_is_benched_at_its_own_workers(tmp_path: Path) -> None:
    plan = sleeps_plan(tmp_path)
    plan.write_text(
        plan.read_text().replace('"sleeps"\n', '"sleeps"\n[defaults]\nworkers = 3\n', 1)
    )
    out = tmp_path / "bench.json"
    proc = truepar("bench", str(plan), "--backends", "threads", "--json", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [r["workers"] for r in json.loads(out.read_text())["results"]] == [3]
    assert "workers 3, the plan's own (--workers 2,4,8 for a scaling curve)" in proc.stderr


def test_unmet_requirements_exit_1(tmp_path: Path) -> None:
    plan = str(sleeps_plan(tmp_path, seconds=0.02))
    common = ("--backends", "threads", "--workers", "4", "--repeat", "1", "--warmup", "0")
    proc = truepar("bench", plan, *common, "--require-speedup", "100")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "NOT VALIDATED" in proc.stdout and "required 100×" in proc.stdout
    proc = truepar("bench", plan, *common, "--require-verdict", "parallel")
    assert proc.returncode == 1 and "verdict concurrent" in proc.stdout


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (("--backends", ""), "--backends is empty"),
        (("--backends", "threads,gpu"), "'gpu' is unknown"),
        (("--workers", "0"), "--workers: 0"),
        (("--workers", "two"), "'two' is not a whole number"),
        (("--repeat", "0"), "--repeat must be at least 1"),
        (("--require-verdict", "fast"), "'fast' is unknown"),
    ],
)
def test_bad_flags_exit_2_with_one_line(tmp_path: Path, flags: tuple[str, ...], says: str) -> None:
    proc = truepar("bench", str(sleeps_plan(tmp_path)), *flags)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert says in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_one_op_plan_exits_2(tmp_path: Path) -> None:
    proc = truepar("bench", str(sleeps_plan(tmp_path, n=1)))
    assert proc.returncode == 2 and "at least 2 ops" in proc.stderr


def test_an_unwritable_json_path_exits_2_before_benching(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    plan = str(sleeps_plan(tmp_path, seconds=0.02))
    proc = truepar("bench", plan, "--json", str(blocker / "out.json"))
    assert proc.returncode == 2
    assert "is not a directory" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = truepar("bench", plan, "--require-speedup", "nan")
    assert proc.returncode == 2
