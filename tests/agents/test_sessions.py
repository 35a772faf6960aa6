"""Session logs on real git with real agent processes: one pair of files per agent, written at
the same time; one consolidated record and one commit that lists every session."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from helpers.git import git
from truepar.agents import sessions
from truepar.agents import worktrees as wt
from truepar.agents.sessions import SessionLog, SessionRecord
from truepar.errors import BadInput
from truepar.evidence.canonical import canonical_bytes
from truepar.evidence.ledger import Ledger

# An agent: says its pid and its worktree's lock line, edits FILE, commits, reports tokens.
AGENT = textwrap.dedent(
    """
    import json, os, subprocess, sys, time
    name, path, text, exit_code = sys.argv[1:]
    listing = subprocess.run(["git", "worktree", "list", "--porcelain"],
                             capture_output=True, text=True, check=True).stdout
    here = os.path.realpath(os.getcwd())
    block = [b for b in listing.split("\\n\\n") if b.startswith("worktree " + here + "\\n")]
    print("pid", os.getpid())
    print("lock", [ln for ln in block[0].splitlines() if ln.startswith("locked")])
    time.sleep(0.2)  # long enough that the agents' runs surely overlap
    with open(path, "w") as f:
        f.write(text + "\\n")
    subprocess.run(["git", "add", "-A"], check=True)
    subprocess.run(["git", "commit", "-q", "-m", f"{name}: edit {path}"], check=True)
    with open(os.environ["TRUEPAR_SESSION_META"], "w") as f:
        json.dump({"tokens": 100 + len(name)}, f)
    print("done", os.environ["TRUEPAR_AGENT"])
    sys.exit(int(exit_code))
    """
)

pytestmark = pytest.mark.usefixtures("git_identity")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "shared.txt").write_text("one\ntwo\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root.resolve()


def swarm(
    repo: Path, session_dir: Path, specs: dict[str, tuple[str, str, int]]
) -> list[SessionLog]:
    """Run one agent per spec (file, text, exit code) at the same time, each in its worktree."""

    trees = {name: wt.create(repo, name) for name in specs}

    def one(name: str) -> SessionLog:
        path, text, code = specs[name]
        tree = trees[name]
        return sessions.run_agent(
            name,
            [sys.executable, "-c", AGENT, name, path, text, str(code)],
            session_dir=session_dir,
            worktree=tree,
            task=f"edit {path}",
        )

    with ThreadPoolExecutor(max_workers=len(specs)) as pool:
        return list(pool.map(one, sorted(specs)))


def test_each_agent_writes_its_own_log_while_others_run(repo: Path, tmp_path: Path) -> None:
    session_dir = tmp_path / "sessions"
    specs = {f"agent{i}": (f"file{i}.txt", f"from agent {i}", 0) for i in range(4)}
    logs = swarm(repo, session_dir, specs)

    names = sorted(p.name for p in session_dir.iterdir())
    assert names == sorted(f"session-agent{i}.{ext}" for i in range(4) for ext in ("json", "md"))
    starts = [log.start_utc for log in logs]
    ends = [log.end_utc for log in logs]
    assert max(starts) < min(ends), "the agents did not run at the same time"
    for log in logs:
        assert log.status == "ok" and log.exit_code == 0
        pid = int(next(ln for ln in log.output_tail if ln.startswith("pid ")).split()[1])
        lock_line = next(ln for ln in log.output_tail if ln.startswith("lock "))
        assert f"truepar: agent {log.agent} running (pid {pid}, started " in lock_line
        assert log.branch == f"truepar/{log.agent}"
        assert [c.subject for c in log.commits] == [f"{log.agent}: edit {specs[log.agent][0]}"]
        assert log.diff_stat is not None and log.diff_stat["insertions"] == 1
        assert log.tokens == 100 + len(log.agent)
        assert log.duration_s > 0 and log.start_utc < log.end_utc
        on_disk = sessions.load_session(session_dir / f"session-{log.agent}.json")
        assert on_disk == log
        summary = (session_dir / f"session-{log.agent}.md").read_text()
        assert f"# Agent `{log.agent}`: ok (1 commit, not merged)" in summary
    # The lock is gone once each agent finished.
    assert not any(w.locked for w in wt.list_worktrees(repo))


def test_consolidate_makes_one_record_and_one_commit_listing_every_session(
    repo: Path, tmp_path: Path
) -> None:
    session_dir = tmp_path / "sessions"
    specs = {
        "alpha": ("alpha.txt", "alpha", 0),
        "beta": ("shared.txt", "beta's line", 0),
        "gamma": ("shared.txt", "gamma's line", 0),
        "delta": ("delta.txt", "delta", 3),
    }
    swarm(repo, session_dir, specs)
    for name in ("alpha", "beta", "gamma"):
        tree = wt.Worktree(
            name=name,
            path=wt.worktrees_dir(repo) / name,
            branch=f"truepar/{name}",
            base=git(repo, "rev-parse", f"truepar/{name}~1"),
            repo=repo,
        )
        sessions.record_merge(session_dir, name, wt.merge_back(repo, tree, "merge"))
    (repo / "staged.txt").write_text("the user's own staged work\n")
    git(repo, "add", "staged.txt")
    commits_before = int(git(repo, "rev-list", "--count", "HEAD"))

    record = sessions.consolidate(session_dir, run_id="run-1", repo=repo, expected=["epsilon"])

    assert int(git(repo, "rev-list", "--count", "HEAD")) == commits_before + 1
    assert record.commit == git(repo, "rev-parse", "HEAD")
    message = git(repo, "log", "-1", "--format=%B")
    assert message.splitlines()[0] == "truepar swarm run-1: 5 agents"
    assert "- alpha: merged (1 commit, merge)" in message
    assert "- beta: merged (1 commit, merge)" in message
    assert "- gamma: conflict in shared.txt" in message
    assert "- delta: failed (exit 3, 1 commit)" in message
    assert "- epsilon: missing (it wrote no session log)" in message
    files = git(repo, "show", "--name-only", "--format=", "HEAD").splitlines()
    assert files == [".truepar/sessions/run-1.json"]
    assert git(repo, "diff", "--cached", "--name-only") == "staged.txt"  # left staged

    committed = json.loads((repo / ".truepar/sessions/run-1.json").read_text())
    assert [s["agent"] for s in committed["sessions"]] == ["alpha", "beta", "delta", "gamma"]
    saved = json.loads((session_dir / "record-run-1.json").read_text())
    assert saved["commit"] == record.commit
    assert saved["summary"] == record.summary()
    assert record.summary()["merged"] == 2 and record.summary()["conflicts"] == 1
    assert record.summary()["tokens"] == sum(100 + len(n) for n in specs)
    with pytest.raises(BadInput, match="already exists"):
        sessions.consolidate(session_dir, run_id="run-1", repo=repo)


def test_failures_timeouts_and_unstartable_agents_are_sessions_too(tmp_path: Path) -> None:
    session_dir = tmp_path / "s"
    fail = sessions.run_agent(
        "fails",
        [sys.executable, "-c", "print('bad'); raise SystemExit(2)"],
        session_dir=session_dir,
        cwd=tmp_path,
    )
    slow = sessions.run_agent(
        "slow",
        [sys.executable, "-c", "import time; print('start', flush=True); time.sleep(30)"],
        session_dir=session_dir,
        cwd=tmp_path,
        timeout_s=0.5,
    )
    missing = sessions.run_agent("ghost", ["/no/such/agent"], session_dir=session_dir, cwd=tmp_path)
    assert (fail.status, fail.exit_code, fail.output_tail) == ("failed", 2, ("bad",))
    assert slow.status == "timeout" and slow.duration_s < 10 and slow.output_tail == ("start",)
    assert missing.status == "error" and "cannot start" in missing.detail
    record = sessions.consolidate(session_dir, run_id="r")
    assert [s.status for s in record.sessions] == ["failed", "error", "timeout"]
    assert record.commit is None
    assert "- slow: timed out after" in record.message()


def _write_from_process(session_dir: Path, name: str) -> subprocess.Popen[str]:
    code = textwrap.dedent(
        f"""
        from truepar.agents.sessions import SessionLog, write_session
        log = SessionLog(agent={name!r}, task="t", command=("x",), cwd=".",
                         start_utc="2025-01-01T00:00:00.000+00:00",
                         end_utc="2025-01-01T00:00:01.000+00:00", duration_s=1.0,
                         status="ok", exit_code=0, output_tail=("line " * 2000,))
        for _ in range(20):
            write_session({str(session_dir)!r}, log)
        """
    )
    return subprocess.Popen([sys.executable, "-c", code], text=True, stderr=subprocess.PIPE)


def test_agent_processes_writing_logs_at_once_never_mix(tmp_path: Path) -> None:
    session_dir = tmp_path / "s"
    procs = [_write_from_process(session_dir, f"p{i}") for i in range(6)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert len(list(session_dir.glob("session-*.json"))) == 6
    assert not list(session_dir.glob(".*tmp"))  # no temporary file left behind
    record = sessions.consolidate(session_dir, run_id="procs")
    assert [s.agent for s in record.sessions] == [f"p{i}" for i in range(6)]


def test_on_record_hook_can_append_to_the_evidence_ledger(tmp_path: Path) -> None:

    session_dir = tmp_path / "s"
    sessions.run_agent("solo", [sys.executable, "-c", "print(1)"], session_dir=session_dir)
    ledger_path = tmp_path / "ledger.sqlite"

    def to_ledger(record: SessionRecord, path: Path) -> None:
        doc: dict[str, Any] = json.loads(path.read_text())
        with Ledger(ledger_path) as ledger:
            ledger.append(
                hashlib.sha256(canonical_bytes(doc)).hexdigest(),
                kind="swarm",
                plan=record.run_id,
                signer=None,
                summary=record.summary(),
                evidence_path=path,
            )

    sessions.consolidate(session_dir, run_id="hooked", on_record=to_ledger)
    with Ledger(ledger_path) as ledger:
        (row,) = ledger.records()
        assert row.kind == "swarm" and row.summary["agents"] == 1
        assert ledger.verify_chain().ok


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="does not exist"):
        sessions.consolidate(tmp_path / "nope")
    with pytest.raises(BadInput, match="no session logs"):
        sessions.consolidate(tmp_path)
    with pytest.raises(BadInput, match="agent name"):
        sessions.run_agent("a/b", ["true"], session_dir=tmp_path)
    (tmp_path / "session-bad.json").write_text("{not json")
    with pytest.raises(BadInput, match="cannot be read"):
        sessions.consolidate(tmp_path)
