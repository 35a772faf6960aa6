"""The ``truepar`` command as a user runs it: a real subprocess, real plan files, exit codes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from helpers.cli import truepar

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "scenarios"


def max_overlap(spans: list[dict[str, int]]) -> int:
    events = sorted([(s["start_ns"], 1) for s in spans] + [(s["end_ns"], -1) for s in spans])
    best = now = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best


def test_twenty_sleeps_overlap_on_ten_workers(tmp_path: Path) -> None:
    out = tmp_path / "trace.json"
    proc = truepar(
        "run", str(SCENARIOS / "twenty_sleeps.toml"), "--workers", "10", "--json", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    trace = json.loads(out.read_text())
    assert trace["status"] == "ok" and not trace["interrupted"]
    assert len(trace["spans"]) == 20
    assert max_overlap(trace["spans"]) >= 8
    assert trace["totals"]["wall_s"] < 2.0  # 4 s one after another
    assert "avg concurrency" in proc.stdout and "cores used" in proc.stdout


def test_sequential_spans_never_overlap(tmp_path: Path) -> None:
    out = tmp_path / "trace.json"
    proc = truepar(
        "run", str(SCENARIOS / "twenty_sleeps.toml"), "-b", "sequential", "-q", "--json", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    spans = json.loads(out.read_text())["spans"]
    assert max_overlap(spans) == 1
    assert json.loads(out.read_text())["totals"]["wall_s"] >= 4.0


@pytest.mark.parametrize("backend", ["sequential", "async", "threads", "processes"])
def test_same_file_writers_never_overlap_and_explain_says_why(tmp_path: Path, backend: str) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        'name = "writers"\n[defaults]\nworkers = 4\n'
        + "".join(
            f'[[op]]\nid = "w{i}"\ntool = "bash"\n'
            f'argv = ["sh", "-c", "echo {i} >> x.txt; sleep 0.1"]\nwrites = ["x.txt"]\n'
            for i in range(3)
        )
    )
    out = tmp_path / "t.json"
    proc = truepar("run", str(plan), "-b", backend, "--explain", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "w1 after w0: both write x.txt" in proc.stdout
    spans = sorted(json.loads(out.read_text())["spans"], key=lambda s: s["start_ns"])
    assert max_overlap(spans) == 1
    assert (tmp_path / "x.txt").read_text().split() == ["0", "1", "2"]


BAD_PLANS = {
    "cycle": (
        '[[op]]\nid="a"\ntool="sleep"\nseconds=0\nafter=["b"]\n'
        '[[op]]\nid="b"\ntool="sleep"\nseconds=0\nafter=["a"]\n',
        ["cycle", "a", "b"],
    ),
    "unknown tool": ('[[op]]\nid="a"\ntool="teleport"\n', ["op 'a'", "unknown tool 'teleport'"]),
    "missing after": (
        '[[op]]\nid="a"\ntool="sleep"\nseconds=0\nafter=["ghost"]\n',
        ["op 'a'", "'after'", "ghost"],
    ),
    "broken toml": ('[[op]\nid="a"\n', ["invalid TOML"]),
    "typo": ('[[op]]\nid="a"\ntool="sleep"\nsecnds=1\n', ["op 'a'", "secnds", "unknown field"]),
}


@pytest.mark.parametrize("case", list(BAD_PLANS))
def test_bad_plans_exit_2_with_one_line(tmp_path: Path, case: str) -> None:
    text, parts = BAD_PLANS[case]
    plan = tmp_path / "plan.toml"
    plan.write_text(text)
    proc = truepar("run", str(plan))
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(plan) in lines[0] and "Traceback" not in proc.stderr
    for part in parts:
        assert part in lines[0]


@pytest.mark.parametrize(
    "flags", [["--workers", "0"], ["--backend", "gpu"], ["--no-such-flag"]], ids=str
)
def test_bad_flags_exit_2(flags: list[str]) -> None:
    proc = truepar("run", str(SCENARIOS / "twenty_sleeps.toml"), *flags)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1


def test_missing_plan_file_exit_2(tmp_path: Path) -> None:
    proc = truepar("run", str(tmp_path / "nope.toml"))
    assert proc.returncode == 2
    assert "no such plan file" in proc.stderr


def test_failed_op_exits_1_and_json_is_written(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[[op]]\nid="bad"\ntool="bash"\nargv=["false"]\n'
        '[[op]]\nid="after-bad"\ntool="sleep"\nseconds=0\nafter=["bad"]\n'
        '[[op]]\nid="fine"\ntool="sleep"\nseconds=0\n'
    )
    out = tmp_path / "t.json"
    proc = truepar("run", str(plan), "--json", str(out))
    assert proc.returncode == 1
    results = json.loads(out.read_text())["results"]
    assert {k: v["status"] for k, v in results.items()} == {
        "bad": "failed",
        "after-bad": "skipped",
        "fine": "ok",
    }


@pytest.mark.parametrize("backend", ["sequential", "threads", "async", "processes"])
def test_ctrl_c_kills_children_and_writes_a_partial_trace(tmp_path: Path, backend: str) -> None:
    marker = tmp_path / "started"
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'[defaults]\nworkers = 2\n[[op]]\nid="long"\ntool="bash"\n'
        f'argv=["sh", "-c", "echo $$ > {marker}; exec sleep 60"]\n'
        '[[op]]\nid="later"\ntool="sleep"\nseconds=0\nafter=["long"]\n'
    )
    out = tmp_path / "t.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "truepar", "run", str(plan), "-b", backend, "--json", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not (marker.exists() and marker.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(marker.read_text())
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    trace = json.loads(out.read_text())
    assert trace["interrupted"] is True and trace["status"] == "interrupted"
    assert trace["results"]["long"]["status"] == "cancelled"
    assert trace["results"]["later"]["status"] == "cancelled"
    assert not alive(child)


def alive(pid: int) -> bool:
    """Running, not a zombie left for an init that does not reap (as in some containers)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize(
    "command",
    [(), ("run",), ("bench",), ("verify",), ("history",), ("mcp",), ("worktrees", "clean")],
)
def test_help_shows_no_metavar_on_flags(command: tuple[str, ...]) -> None:
    shown = truepar(*command, "--help", columns=80)
    assert shown.returncode == 0, shown.stderr
    assert "<bool>" not in shown.stdout
