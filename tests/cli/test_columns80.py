"""Every command's output at 80 columns, as a CI log or a pipe shows it: the names that say
which row is which are printed whole (never cut to "…"), and free text reads as sentences,
not as a word per line in a narrow column."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from helpers.cli import flat, truepar
from helpers.git import git
from truepar.agents import worktrees as wt
from truepar.cli.prove_cmd import show
from truepar.cli.report_cmd import _terminal
from truepar.measure.prove_results import ProveReport, ProveResult

LONG_ID = "compile-the-frontend-assets-bundle"
FAILING = "fails-with-a-long-error-message"
ERROR = "this command fails with a long and descriptive error message that must stay readable"
PLAN_NAME = "a fairly long plan name for the eighty column check"


def lines_within(text: str, width: int = 80) -> None:
    """Every line fits, but for those naming a file (a path is printed whole, however long)."""
    assert all(len(ln.rstrip()) <= width for ln in text.splitlines() if "/" not in ln), text


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            name = "{PLAN_NAME}"
            [defaults]
            workers = 2
            [[ops]]
            id = "{LONG_ID}"
            tool = "bash"
            argv = ["echo", "built"]
            [[ops]]
            id = "{FAILING}"
            tool = "bash"
            command = "echo '{ERROR}' >&2; exit 3"
            shell = true
            """
        )
    )
    return path


def test_run_and_history_keep_ids_errors_plan_and_summary_whole(plan: Path) -> None:
    ran = truepar("run", str(plan), columns=80)
    assert ran.returncode == 1, ran.stderr
    out = ran.stdout
    lines_within(out)
    assert "…" not in out
    lines = out.splitlines()
    for op_id in (LONG_ID, FAILING):
        assert any(op_id in line for line in lines), out
    assert ERROR in flat(out)  # the error, whole, on lines of its own
    assert any(line.startswith("FAILED · ") for line in lines)
    # The summary line breaks between its parts, never inside one.
    assert any("cores used" in line and " of " in line for line in lines), out

    history = truepar("history", columns=80)
    assert history.returncode == 0, history.stderr
    lines_within(history.stdout)
    assert "…" not in history.stdout
    assert any(PLAN_NAME in line for line in history.stdout.splitlines()), history.stdout
    assert any("FAILED" in line and "wall" in line for line in history.stdout.splitlines())


def test_report_of_a_run_keeps_op_ids_whole(plan: Path, tmp_path: Path) -> None:
    evidence = tmp_path / "run.json"
    assert truepar("run", str(plan), "--evidence", str(evidence)).returncode == 1
    shown = truepar("report", str(evidence), columns=80)
    assert shown.returncode == 0, shown.stderr
    lines_within(shown.stdout)
    assert "…" not in shown.stdout
    for op_id in (LONG_ID, FAILING):
        assert any(op_id in line for line in shown.stdout.splitlines()), shown.stdout


def test_lint_findings_read_as_sentences(tmp_path: Path) -> None:
    path = tmp_path / "races.toml"
    path.write_text(
        textwrap.dedent(
            """
            name = "races"
            [[ops]]
            id = "writer-one"
            tool = "bash"
            argv = ["touch", "out.txt"]
            writes = ["out.txt"]
            [[ops]]
            id = "writer-two"
            tool = "bash"
            argv = ["touch", "out.txt"]
            writes = ["out.txt"]
            """
        )
    )
    findings = json.loads(truepar("lint", str(path), "--json").stdout)["findings"]
    assert findings
    shown = truepar("lint", str(path), columns=80)
    assert shown.returncode == 1, shown.stderr
    lines_within(shown.stdout)
    text = flat(shown.stdout)
    for finding in findings:
        assert flat(finding["message"]) in text
        assert flat(f"fix: {finding['fix']}") in text
    # Not a word per line: every line of prose carries several words.
    prose = [ln for ln in shown.stdout.splitlines() if ln.startswith("    ")]
    assert prose and all(len(ln.split()) >= 3 for ln in prose[:-1]), shown.stdout


@pytest.mark.usefixtures("git_identity")
def test_worktrees_list_and_clean_keep_paths_whole(tmp_path: Path) -> None:
    repo = tmp_path / "a-project-with-a-name-long-enough-to-matter"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# project\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    keep = wt.create(repo, "an-agent-with-uncommitted-work")
    (keep.path / "wip.txt").write_text("work in progress\n")
    done = wt.create(repo, "an-agent-that-finished")
    for command in (("list",), ("clean", "--dry-run")):
        shown = truepar("worktrees", *command, str(repo), columns=80)
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        assert "…" not in shown.stdout
        for worktree in (keep, done):
            assert any(str(worktree.path) in line for line in lines), shown.stdout
    assert "has uncommitted changes (1 file(s))" in flat(shown.stdout)


def test_budget_of_a_plan_keeps_resource_names_and_reasons_whole(tmp_path: Path) -> None:
    resource = "search-api-with-a-long-name"
    path = tmp_path / "budgeted.toml"
    ops = "".join(
        f'[[ops]]\nid = "q{i}"\ntool = "sleep"\nseconds = 0.01\nresource = "{resource}"\n'
        for i in range(2)
    )
    path.write_text(f'name = "budgeted"\n[resources.{resource}]\nper_second = 2\n{ops}')
    message = json.loads(truepar("budget", "--plan", str(path), "--json").stdout)["plan"]
    shown = truepar("budget", "--plan", str(path), columns=80)
    assert shown.returncode == 0, shown.stderr
    lines_within(shown.stdout)
    assert "…" not in shown.stdout
    assert any(resource in line for line in shown.stdout.splitlines())
    for r in message["resources"].values():
        assert flat(r["message"]) in flat(shown.stdout)


def test_fit_and_verify_fit_in_80_columns(plan: Path, tmp_path: Path) -> None:
    data = tmp_path / "sweep.csv"
    data.write_text("workers,throughput\n1,10\n2,19\n4,35\n8,52\n16,60\n")
    fitted = truepar("fit", str(data), columns=80)
    assert fitted.returncode == 0, fitted.stderr
    assert "…" not in fitted.stdout
    assert "speedup vs 1 worker" in fitted.stdout and "Karp–Flatt e" in fitted.stdout
    evidence = tmp_path / "run.json"
    assert truepar("run", str(plan), "--evidence", str(evidence)).returncode == 1
    checked = truepar("verify", str(evidence), columns=80)
    assert "…" not in checked.stdout
    assert any(line.startswith("✓ recompute: ") for line in checked.stdout.splitlines())


# -- prove: its rendering, on results shaped as prove makes them (prove itself takes seconds)


def result(name: str, backend: str, verdict: str, expected: str, **kw: Any) -> ProveResult:
    values: dict[str, Any] = {
        "name": name,
        "backend": backend,
        "workers": 4,
        "speedup": 3.87,
        "speedup_ci": (3.71, 3.95),
        "cores_used": 3.9,
        "work_ratio": 1.01,
        "wall_s": 0.5,
        "baseline_wall_s": 1.9,
        "verdict": verdict,
        "reasons": ("speedup 3.87× [95% CI 3.71–3.95] > 1.1: a clear gain",),
        "expected": expected,
        "checksums_ok": True,
        "checked": 8,
        "wrong": 0,
    }
    return ProveResult(**{**values, **kw})


RESULTS = (
    result("kernel/async", "async", "serialized", "serialized"),
    result("kernel/threads (free-threaded)", "threads", "parallel", "parallel"),
    result("kernel/processes", "processes", "serialized", "parallel"),
    result("control: sleeps/threads", "threads", "concurrent", "concurrent"),
    result("control: hashlib/threads (free-threaded)", "threads", "parallel", "parallel"),
    result("control: decoy/threads", "threads", "suspect", "suspect", checksums_ok=True),
)


def prove_report() -> ProveReport:
    return ProveReport(
        results=RESULTS,
        conclusion=("overall: NOT AS EXPECTED — kernel/processes: see the reasons",),
        environment={"python_version": "3.14.0", "gil_enabled": False, "cores_available": 4},
        tasks=4,
        repeat=3,
        warmup=1,
        kernel_n=1000,
        kernel_task_s=0.5,
        warnings=(),
        complete=True,
    )


def rendered(width: int, draw: Any) -> str:
    buffer = io.StringIO()
    draw(Console(file=buffer, width=width, highlight=False, color_system=None))
    return buffer.getvalue()


@pytest.mark.parametrize("width", [80, 60, 200])
def test_prove_names_backends_and_verdicts_stay_whole(width: int) -> None:
    out = rendered(width, lambda console: show(console, prove_report()))
    lines_within(out, width)
    assert "…" not in out
    lines = out.splitlines()
    for r in RESULTS:
        row = [line for line in lines if r.name in line]
        assert row, (r.name, out)
        assert r.backend in row[0] and str(r.verdict) in row[0], out
    wrong = next(line for line in lines if "kernel/processes" in line)
    assert "✗" in wrong and "parallel" in wrong  # what was expected, beside what came out
    assert "3.87× [3.71–3.95]" in out


def test_report_of_prove_evidence_keeps_names_whole() -> None:
    doc = {
        "kind": "prove",
        "data": {
            "results": [r.to_json() for r in RESULTS],
            "conclusion": ["overall: as expected"],
            "experiments": [],
        },
        "environment": {"python_version": "3.14.0"},
    }
    out = rendered(80, lambda console: _terminal(console, doc))
    assert "…" not in out
    for r in RESULTS:
        assert any(r.name in line for line in out.splitlines()), out
