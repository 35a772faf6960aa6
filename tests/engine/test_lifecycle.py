"""Nothing leaks, nothing lies (issue 9): worker limits, parent death, blocked ops, honest spans.

Each test starts a bounded number of processes and kills whatever is left of them, by pid, even
when the code under test misbehaves (:func:`reaped`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import truepar
from helpers.cli import truepar as truepar_cli
from helpers.git import git
from helpers.plans import REAL_BACKENDS, make_plan, write_module
from truepar import PythonOp, ReadOp, SleepOp, Status
from truepar.agents import worktrees as wt
from truepar.backends.processes import process_ceiling
from truepar.tools import TOOLS
from truepar.tools.base import Tool, ToolContext, ToolOutput

GRACE_S = 0.5  # truepar.backends.inline.GRACE_S: asked to stop, then interrupted


def _dead(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_dead(pids: set[int], within_s: float) -> set[int]:
    """The pids still running after ``within_s`` seconds (zombies count as dead)."""
    deadline = time.monotonic() + within_s
    while True:
        alive = {p for p in pids if not _dead(p)}
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


@contextlib.contextmanager
def reaped(proc: subprocess.Popen[str]) -> Iterator[set[int]]:
    """Yield a set the test fills with pids it saw; afterwards stop ``proc`` (SIGSTOP first, so
    it cannot start more while its tree is read), kill every process under it and every one
    seen, then ``proc`` itself: no test leaves a process behind, whatever truepar did."""
    seen: set[int] = set()
    try:
        yield seen
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGSTOP)
            seen.update(_descendants(proc.pid))
        for pid in seen:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=10)


def _bounded(proc: subprocess.Popen[str], seen: set[int], *, most: int, within_s: float) -> int:
    """Wait for ``proc``, failing the test (and so reaping everything) if more than ``most``
    processes run under it at once or it takes longer than ``within_s``. The most seen."""
    deadline = time.monotonic() + within_s
    peak = 0
    while proc.poll() is None:
        kids = _descendants(proc.pid)
        seen.update(kids)
        peak = max(peak, len(kids))
        if peak > most:
            pytest.fail(f"{peak} processes under truepar at once (at most {most} expected)")
        if time.monotonic() > deadline:
            pytest.fail(f"truepar still running after {within_s:g} s")
        time.sleep(0.02)
    return peak


def _descendants(pid: int) -> set[int]:
    try:
        return {c.pid for c in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def _cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "truepar", *args, "--no-evidence"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# -- 1. workers: never a fork bomb ---------------------------------------------------------------

TWO_OPS = """
name = "two"
[[op]]
id = "a"
tool = "python"
call = "time:sleep"
args = [1.5]
[[op]]
id = "b"
tool = "python"
call = "time:sleep"
args = [1.5]
"""


@pytest.mark.parametrize("backend", [*REAL_BACKENDS, "fake"])
def test_an_absurd_worker_count_is_bad_input_on_every_backend(tmp_path: Path, backend: str) -> None:
    (tmp_path / "plan.toml").write_text(TWO_OPS)
    proc = _cli("run", "plan.toml", "-b", backend, "--workers", "1000000000", "-q", cwd=tmp_path)
    with reaped(proc) as seen:
        _bounded(proc, seen, most=3, within_s=30)
        _, err = proc.communicate()
    assert proc.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "workers 1000000000" in lines[0] and "at most" in lines[0]


def test_processes_start_only_the_workers_the_plan_can_use(tmp_path: Path) -> None:
    """Two ops at ``--workers 50``: two worker processes (plus the watchdog), not fifty."""
    (tmp_path / "plan.toml").write_text(TWO_OPS)
    proc = _cli("run", "plan.toml", "-b", "processes", "--workers", "50", "-q", cwd=tmp_path)
    with reaped(proc) as seen:
        most = _bounded(proc, seen, most=3, within_s=60)
        _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert most >= 2  # the two workers were seen: the sampling did look


def test_more_workers_than_the_machine_takes_are_clamped_with_a_warning(tmp_path: Path) -> None:
    ceiling = process_ceiling()
    ops = [SleepOp(id=f"s{i}", seconds=0) for i in range(3)]
    plan = make_plan(tmp_path, ops, backend="processes", workers=ceiling + 1)
    with pytest.warns(truepar.TrueparWarning, match=f"at most {ceiling} at once"):
        trace = truepar.run(plan)
    assert trace.ok and trace.workers == ceiling
    assert len({s.pid for s in trace.spans}) <= 3  # three ops: at most three workers


# -- 2. parent death: SIGKILL of truepar leaves nothing running ----------------------------------

LONG = """
name = "long"
[defaults]
workers = 4
[[op]]
id = "cmd"
tool = "bash"
argv = ["sleep", "300"]
[[op]]
id = "forks"
tool = "bash"
shell = true
command = "sleep 301 & sleep 302"
[[op]]
id = "py"
tool = "python"
call = "time:sleep"
args = [303]
"""


@pytest.mark.parametrize("backend", REAL_BACKENDS)
def test_sigkill_of_truepar_leaves_no_process_it_started(tmp_path: Path, backend: str) -> None:
    (tmp_path / "plan.toml").write_text(LONG)
    proc = _cli("run", "plan.toml", "-b", backend, "-q", cwd=tmp_path)
    with reaped(proc) as seen:
        # sequential runs one op at a time: the first one's sleep; the others: all three
        wanted = {"sleep 300"} if backend == "sequential" else {"sleep 300", "sleep 301"}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            seen.update(_descendants(proc.pid))
            running = set()
            for pid in seen:
                with contextlib.suppress(psutil.Error):
                    running.add(" ".join(psutil.Process(pid).cmdline()))
            if wanted <= running:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the ops never started: {running}")
        seen.update(_descendants(proc.pid))
        proc.kill()  # SIGKILL: no clean-up code of truepar's runs
        proc.wait(10)
        assert _wait_dead(seen, 5.0) == set()


def _stuck_swarm(tmp_path: Path) -> tuple[Path, subprocess.Popen[str]]:
    """A repository and a running ``truepar swarm`` of two agents that sleep 300 s."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README").write_text("hello\n")
    git(repo, "add", "README")
    git(repo, "commit", "-q", "-m", "first")
    (tmp_path / "AGENTS.toml").write_text(
        f"""
[swarm]
name = "stuck"
repo = "{repo}"
count = 2
sessions = "{tmp_path / "sessions"}"

[template]
argv = ["sh", "-c", "sleep 300"]
prompt = "wait"
"""
    )
    return repo, _cli("swarm", "AGENTS.toml", cwd=tmp_path)


def _until_both_agents_run(proc: subprocess.Popen[str], seen: set[int]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen.update(_descendants(proc.pid))
        cmds = []
        for pid in seen:
            with contextlib.suppress(psutil.Error):
                cmds.append(" ".join(psutil.Process(pid).cmdline()))
        if sum("sleep 300" in c for c in cmds) >= 2:
            return
        time.sleep(0.05)
    pytest.fail("the agents never started")


def test_sigkill_of_a_swarm_leaves_no_agent_and_clean_sees_the_stale_locks(
    tmp_path: Path, git_identity: None
) -> None:
    repo, proc = _stuck_swarm(tmp_path)
    with reaped(proc) as seen:
        _until_both_agents_run(proc, seen)
        seen.update(_descendants(proc.pid))
        proc.kill()
        proc.wait(10)
        assert _wait_dead(seen, 5.0) == set()
    listed = truepar_cli("worktrees", "list", str(repo), columns=200)
    assert listed.stdout.count("locked (stale)") == 2, listed.stdout
    cleaned = truepar_cli("worktrees", "clean", str(repo), columns=200)
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert "removed 2" in cleaned.stdout and "stale lock" in cleaned.stdout
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_sigterm_of_a_swarm_commits_no_record_to_the_repository(
    tmp_path: Path, git_identity: None
) -> None:
    repo, proc = _stuck_swarm(tmp_path)
    with reaped(proc) as seen:
        _until_both_agents_run(proc, seen)
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        assert proc.returncode == 143, proc.stderr.read() if proc.stderr else ""
        assert _wait_dead(seen, 5.0) == set()
    assert git(repo, "log", "--format=%s").splitlines() == ["first"]  # nothing landed
    assert list((tmp_path / "sessions").rglob("record-*.json"))  # the record, kept beside


def test_a_lock_whose_pid_now_belongs_to_another_process_is_stale(
    tmp_path: Path, git_identity: None
) -> None:

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "first")
    w = wt.create(repo, "reused")
    # Our own pid, but a start time long before this process began: the pid was reused.
    reason = f"truepar: agent reused running (pid {os.getpid()}, started 1000)"
    git(repo, "worktree", "lock", "--reason", reason, str(w.path))
    (info,) = [i for i in wt.list_worktrees(repo) if i.path == w.path]
    assert info.lock_pid == os.getpid() and info.lock_alive is False
    assert [Path(i.path).name for i in wt.clean(repo).removed] == ["reused"]


# -- 3 and 4. blocked ops: timeouts and signals work everywhere; spans tell the truth ------------


@pytest.mark.parametrize("backend", ["sequential", "async"])
def test_an_op_holding_the_loop_is_stopped_at_its_deadline_and_its_span_is_true(
    tmp_path: Path, backend: str
) -> None:
    ops = [PythonOp(id="slow", call="time:sleep", args=(30,), timeout=1)]
    t0 = time.monotonic()
    trace = truepar.run(make_plan(tmp_path, ops, backend=backend))
    assert time.monotonic() - t0 < 10
    (span,) = trace.spans
    assert span.status is Status.TIMEOUT
    # It really ran until it was interrupted: past its deadline, within the grace (and slack).
    assert 1.0 <= span.duration_s <= 1.0 + GRACE_S + 1.0, span.duration_s
    assert trace.start_ns <= span.start_ns and span.end_ns <= trace.end_ns
    assert trace.totals.wall_s >= span.duration_s
    assert "did not stop when asked and ran on for" in (span.error or "")


def test_an_op_kept_from_the_loop_is_not_blamed_for_it(tmp_path: Path) -> None:
    """On async, a sync function holding the loop for 1.5 s must not time out a 0.1 s sleep
    whose timeout is 0.5 s: the sleep never had the loop."""
    ops = [
        PythonOp(id="hog", call="time:sleep", args=(1.5,), timeout=20),
        SleepOp(id="quick", seconds=0.1, timeout=0.5),
    ]
    trace = truepar.run(make_plan(tmp_path, ops, backend="async", workers=2))
    assert trace.results["hog"].status is Status.OK
    assert trace.results["quick"].status is Status.OK, trace.spans_of("quick")


def test_a_file_op_that_never_returns_is_abandoned_on_async(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync tool stuck in a read (a hung mount) runs on a daemon thread: at its timeout it is
    asked to stop, then abandoned; the run ends, and its span says it was still running."""
    release = threading.Event()
    original = TOOLS["read"]

    def stuck(op: ReadOp, ctx: ToolContext) -> ToolOutput:
        release.wait(60)
        return ToolOutput(None, "late")

    monkeypatch.setitem(TOOLS, "read", Tool("read", ReadOp, stuck))
    try:
        ops = [ReadOp(id="hung", path="x", timeout=0.3), SleepOp(id="fine", seconds=0.05)]
        t0 = time.monotonic()
        trace = truepar.run(make_plan(tmp_path, ops, backend="async", workers=2))
        assert time.monotonic() - t0 < 5
    finally:
        release.set()
    assert original.arun is None  # read has no async I/O: it really ran on a thread
    assert trace.results["fine"].status is Status.OK
    (span,) = trace.spans_of("hung")
    assert span.status is Status.TIMEOUT and span.abandoned
    assert trace.abandoned_threads == 1
    assert span.ran_on_s is not None and span.ran_on_s >= 0
    assert "still running when the run ended" in (span.error or "")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs mkfifo")
@pytest.mark.parametrize("backend", REAL_BACKENDS)
def test_a_fifo_is_refused_not_waited_for(tmp_path: Path, backend: str) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "a.txt").write_text("needle\n")
    ops = [
        ReadOp(id="fifo", path="pipe", timeout=30),
        truepar.GrepOp(id="grep", pattern="needle", path=".", timeout=30),
    ]
    t0 = time.monotonic()
    trace = truepar.run(make_plan(tmp_path, ops, backend=backend, workers=2))
    assert time.monotonic() - t0 < 10
    assert trace.results["fifo"].status is Status.FAILED
    assert "is a FIFO, not a regular file" in (trace.results["fifo"].error or "")
    assert trace.results["grep"].status is Status.OK


BLOCKER = """
import time
from pathlib import Path


def block(marker):
    Path(marker).write_text("started")
    time.sleep(300)
"""


@pytest.mark.parametrize(
    ("sig", "code", "word"),
    [(signal.SIGINT, 130, "INTERRUPTED"), (signal.SIGTERM, 143, "TERMINATED")],
)
@pytest.mark.parametrize("backend", REAL_BACKENDS)
def test_a_signal_stops_a_blocked_run_and_the_trace_is_written(
    tmp_path: Path, backend: str, sig: signal.Signals, code: int, word: str
) -> None:
    mod = write_module(tmp_path, BLOCKER)
    marker = tmp_path / "started"
    (tmp_path / "plan.toml").write_text(
        f'name = "blocked"\n[[op]]\nid = "block"\ntool = "python"\ncall = "{mod}:block"\n'
        f'args = ["{marker}"]\n[[op]]\nid = "later"\ntool = "sleep"\nseconds = 0\n'
        'after = ["block"]\n'
    )
    proc = _cli("run", "plan.toml", "-b", backend, "--json", "trace.json", cwd=tmp_path)
    with reaped(proc) as seen:
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        seen.update(_descendants(proc.pid))
        t0 = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
        assert time.monotonic() - t0 < 5 + GRACE_S
    assert proc.returncode == code, err
    assert word in out
    trace = json.loads((tmp_path / "trace.json").read_text())
    assert trace["status"] == "interrupted"
    assert trace["interrupted_by"] == sig.name
    assert trace["results"]["block"]["status"] == "cancelled"
    assert trace["results"]["later"]["status"] == "cancelled"
    (span,) = [s for s in trace["spans"] if s["op_id"] == "block"]
    assert span["end_ns"] <= trace["end_ns"]
