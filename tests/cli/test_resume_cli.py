"""``truepar run PLAN --resume TRACE``: rerun what failed, as a user runs it (a real subprocess)."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.cli import truepar

PLAN = """
name = "resumable"
[defaults]
backend = "sequential"
[[op]]
id = "fetch"
tool = "bash"
argv = ["sh", "-c", "echo fetch >> log"]
[[op]]
id = "build"
tool = "bash"
argv = ["sh", "-c", "echo build >> log && test -f fixed"]
after = ["fetch"]
[[op]]
id = "test"
tool = "bash"
argv = ["sh", "-c", "echo test >> log"]
after = ["build"]
[[op]]
id = "lint"
tool = "bash"
argv = ["sh", "-c", "echo lint >> log"]
"""


def runs(folder: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op_id in (folder / "log").read_text().split():
        counts[op_id] = counts.get(op_id, 0) + 1
    return counts


def first_run(tmp_path: Path) -> tuple[Path, Path]:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    trace = tmp_path / "first.json"
    proc = truepar("run", str(plan), "--no-evidence", "-q", "--json", str(trace), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    return plan, trace


def test_resume_reruns_the_failed_op_and_its_dependents_then_nothing(tmp_path: Path) -> None:
    plan, first = first_run(tmp_path)
    (tmp_path / "fixed").touch()
    second = tmp_path / "second.json"
    evidence = tmp_path / "evidence.json"
    proc = truepar(
        "run", str(plan), "--resume", str(first), "--json", str(second),
        "--evidence", str(evidence), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert runs(tmp_path) == {"fetch": 1, "build": 2, "test": 1, "lint": 1}
    assert f"resumed from {first}: 2 ops reused (ok there), 2 run again: build, test" in proc.stdout
    data = json.loads(second.read_text())
    assert data["status"] == "ok" and data["totals"]["ok"] == 4
    assert data["resumed_from"]["reused"] == ["fetch", "lint"]
    assert {s["op_id"] for s in data["spans"]} == {"build", "test"}
    # The evidence of a resumed run says what was reused, and still checks out.
    assert json.loads(evidence.read_text())["data"]["resumed_from"]["rerun"] == ["build", "test"]
    verified = truepar("verify", str(evidence), cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    third = tmp_path / "third.json"
    again = truepar(
        "run", str(plan), "--resume", str(second), "--no-evidence", "--json", str(third),
        cwd=tmp_path,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert f"nothing to rerun: all 4 ops ended ok in {second}" in again.stdout
    assert runs(tmp_path) == {"fetch": 1, "build": 2, "test": 1, "lint": 1}
    data = json.loads(third.read_text())
    assert data["status"] == "ok" and data["spans"] == [] and data["totals"]["wall_s"] == 0
    assert data["resumed_from"]["reused"] == ["fetch", "build", "test", "lint"]


def test_resume_with_a_changed_plan_or_a_bad_trace_is_exit_2_in_one_line(tmp_path: Path) -> None:
    plan, first = first_run(tmp_path)
    not_json = tmp_path / "notes.txt"
    not_json.write_text("hello")
    for trace, words in (
        (tmp_path / "missing.json", "no such file"),
        (not_json, "not JSON"),
        (plan, "not JSON"),
    ):
        proc = truepar("run", str(plan), "--resume", str(trace), "--no-evidence", cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert words in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    plan.write_text(PLAN.replace("echo lint", "echo LINT"))
    proc = truepar("run", str(plan), "--resume", str(first), "--no-evidence", cwd=tmp_path)
    assert proc.returncode == 2
    assert "trace of another plan" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert runs(tmp_path) == {"fetch": 1, "build": 1, "lint": 1}  # nothing ran
