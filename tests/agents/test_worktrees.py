"""Worktree isolation on real git: create, lock, collect, merge back, clean — no mocks.

"Agents" here are real subprocesses (small Python scripts) that edit files and commit in
their own worktree, some of them at the same time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import typer
from typer.testing import CliRunner

from helpers.git import git
from truepar.agents import worktrees as wt
from truepar.cli.worktrees_cmd import worktrees_app
from truepar.errors import BadInput, UsageError
from truepar.git.commands import admin_lock, open_repo

# An agent: append or replace lines of files, then commit; argv: MESSAGE PATH=TEXT ...
AGENT = textwrap.dedent(
    """
    import subprocess, sys
    message, *edits = sys.argv[1:]
    for edit in edits:
        path, text = edit.split("=", 1)
        with open(path, "w") as f:
            f.write(text.replace("|", "\\n"))
    subprocess.run(["git", "add", "-A"], check=True)
    subprocess.run(["git", "commit", "-q", "-m", message], check=True)
    print("agent done:", message)
    """
)

pytestmark = pytest.mark.usefixtures("git_identity")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "shared.txt").write_text("one\ntwo\nthree\n")
    (root / "README.md").write_text("# project\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root.resolve()


def run_agent_script(worktree: wt.Worktree, message: str, *edits: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", AGENT, message, *edits],
        cwd=worktree.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def agent(worktree: wt.Worktree, message: str, *edits: str) -> None:
    proc = run_agent_script(worktree, message, *edits)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out


def status(root: Path) -> str:
    return git(root, "status", "--porcelain")


# ----------------------------------------------------------------------------------- create


def test_create_gives_an_isolated_worktree_on_its_own_branch(repo: Path) -> None:
    w = wt.create(repo, "alpha")
    assert w.path == repo.parent / "project-worktrees" / "alpha"
    assert w.branch == "truepar/alpha"
    assert w.base == git(repo, "rev-parse", "HEAD")
    assert git(w.path, "rev-parse", "--show-toplevel") == str(w.path)
    assert git(w.path, "symbolic-ref", "HEAD") == "refs/heads/truepar/alpha"  # never detached
    assert (w.path / "shared.txt").read_text() == "one\ntwo\nthree\n"
    assert wt.worktrees_dir(repo) == w.path.parent
    # Work in the worktree does not show in the main checkout.
    agent(w, "alpha edits", "new.txt=hello")
    assert not (repo / "new.txt").exists()
    assert status(repo) == ""


def test_create_custom_branch_and_base(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    (repo / "later.txt").write_text("later\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "later")
    w = wt.create(repo, "old", base=first, branch="feature/old")
    assert w.branch == "feature/old"
    assert w.base == first
    assert not (w.path / "later.txt").exists()


def test_create_refuses_bad_input_and_leaves_nothing_behind(repo: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(BadInput, match="not a git repository"):
        wt.create(plain, "a")
    with pytest.raises(BadInput, match="does not name a commit"):
        wt.create(repo, "a", base="no-such-ref")
    with pytest.raises(BadInput, match="already exists"):
        wt.create(repo, "a", branch="main")
    with pytest.raises(BadInput, match="agent name"):
        wt.create(repo, "../escape")
    wt.create(repo, "a")
    with pytest.raises(BadInput, match="already exists"):
        wt.create(repo, "a", branch="other")
    assert [w.branch for w in wt.list_worktrees(repo)] == ["main", "truepar/a"]
    assert git(repo, "branch", "--format=%(refname:short)").split() == ["main", "truepar/a"]


def test_parallel_creation_of_eight_worktrees(repo: Path) -> None:
    """Plain `git worktree add` races on the admin files when run 8 at once; create() must not."""
    names = [f"p{i}" for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(lambda n: wt.create(repo, n), names))
    assert sorted(w.name for w in made) == names
    listed = wt.list_worktrees(repo)
    assert len(listed) == 9
    assert all(not w.dirty and not w.locked and w.branch for w in listed)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda w: wt.remove(w, delete_branch=True), made))
    assert len(wt.list_worktrees(repo)) == 1
    assert git(repo, "branch", "--format=%(refname:short)") == "main"


def test_create_waits_for_the_worktree_admin_lock(repo: Path) -> None:
    """Eight or more `git worktree add` at once fail now and then ("failed to read
    .git/worktrees/<id>/commondir"): create() writes admin files only under truepar's lock."""
    made: list[wt.Worktree] = []
    with admin_lock(open_repo(repo)):
        thread = threading.Thread(target=lambda: made.append(wt.create(repo, "late")))
        thread.start()
        thread.join(0.3)
        assert thread.is_alive() and not (wt.worktrees_dir(repo) / "late").exists()
    thread.join(10)
    assert made and made[0].path.is_dir()


# ------------------------------------------------------------------------------ lock / collect


def test_lock_names_the_agent_and_its_pid_while_it_runs(repo: Path) -> None:
    w = wt.create(repo, "busy")
    with wt.locked(w, pid=os.getpid()):
        (info,) = [i for i in wt.list_worktrees(repo) if i.path == w.path]
        assert info.locked
        started = int(psutil.Process().create_time())
        assert (
            info.lock_reason
            == f"truepar: agent busy running (pid {os.getpid()}, started {started})"
        )
        assert info.lock_pid == os.getpid() and info.lock_alive
        with pytest.raises(BadInput, match="locked"):
            wt.remove(w)
    assert not next(i for i in wt.list_worktrees(repo) if i.path == w.path).locked
    wt.unlock(w)  # unlocking twice is fine


def test_collect_reports_commits_diffstat_and_uncommitted_changes(repo: Path) -> None:
    w = wt.create(repo, "worker")
    agent(w, "first change", "shared.txt=one|TWO|three|four|")
    agent(w, "second change", "added.txt=a|b|")
    (w.path / "scratch.txt").write_text("not committed\n")
    work = wt.collect(w)
    assert [c.subject for c in work.commits] == ["first change", "second change"]
    assert work.commits[-1].sha == git(repo, "rev-parse", "truepar/worker")
    assert work.files_changed == 2
    assert (work.insertions, work.deletions) == (4, 1)
    assert {f.path: (f.insertions, f.deletions) for f in work.files} == {
        "shared.txt": (2, 1),
        "added.txt": (2, 0),
    }
    assert work.dirty and work.dirty_files == ("scratch.txt",)
    assert work.to_dict()["diff_stat"]["files_changed"] == 2


# -------------------------------------------------------------------------------- merge_back


def test_two_agents_merge_and_a_conflicting_third_changes_nothing(repo: Path) -> None:
    a, b, c = (wt.create(repo, n) for n in ("a", "b", "c"))
    procs = [
        run_agent_script(a, "a: line two", "shared.txt=one|two by a|three|"),
        run_agent_script(b, "b: new file", "b.txt=from b|"),
        run_agent_script(c, "c: line two", "shared.txt=one|two by c|three|"),
    ]
    for proc in procs:  # all three ran at the same time
        assert proc.wait(timeout=30) == 0
    (repo / "notes.txt").write_text("untracked, must survive\n")

    first = wt.merge_back(repo, a, "merge")
    second = wt.merge_back(repo, b, "merge")
    assert (first.status, second.status) == ("merged", "merged")
    assert first.commits == 1 and second.summary() == "merged (1 commit, merge)"
    assert git(repo, "rev-list", "--count", "--merges", "HEAD") == "2"
    head = git(repo, "rev-parse", "HEAD")
    before = {p: (repo / p).read_text() for p in ("shared.txt", "b.txt", "notes.txt")}

    third = wt.merge_back(repo, c, "merge")
    assert third.status == "conflict"
    assert third.conflict_files == ("shared.txt",)
    assert third.head_before == third.head_after == head
    assert git(repo, "rev-parse", "HEAD") == head
    assert status(repo) == "?? notes.txt"
    assert {p: (repo / p).read_text() for p in before} == before
    assert not (repo / ".git" / "MERGE_HEAD").exists()
    assert "conflict in shared.txt" in third.summary()


def test_rebase_strategy_keeps_history_linear(repo: Path) -> None:
    a, b, c = (wt.create(repo, n) for n in ("ra", "rb", "rc"))
    agent(a, "a edits", "a.txt=a|")
    agent(b, "b edits", "b.txt=b|")
    agent(c, "c edits", "a.txt=c|")
    assert wt.merge_back(repo, a, "rebase").status == "merged"
    outcome = wt.merge_back(repo, b, "rebase")
    assert outcome.status == "merged"
    assert git(repo, "rev-parse", "HEAD") == git(repo, "rev-parse", "truepar/rb")
    assert git(repo, "rev-list", "--count", "--merges", "HEAD") == "0"
    assert (repo / "a.txt").exists() and (repo / "b.txt").exists()

    c_before = git(repo, "rev-parse", "truepar/rc")
    head = git(repo, "rev-parse", "HEAD")
    conflict = wt.merge_back(repo, c, "rebase")
    assert conflict.status == "conflict" and conflict.conflict_files == ("a.txt",)
    assert git(repo, "rev-parse", "truepar/rc") == c_before  # the agent's branch is untouched
    assert git(c.path, "symbolic-ref", "HEAD") == "refs/heads/truepar/rc"
    assert status(c.path) == ""
    assert git(repo, "rev-parse", "HEAD") == head and status(repo) == ""


def test_merge_outcomes_without_merging(repo: Path) -> None:
    w = wt.create(repo, "idle")
    nothing = wt.merge_back(repo, w, "merge")
    assert nothing.status == "nothing" and nothing.commits == 0
    agent(w, "work", "w.txt=w|")
    skipped = wt.merge_back(repo, w, "none")
    assert skipped.status == "skipped" and skipped.commits == 1
    assert not (repo / "w.txt").exists()
    with pytest.raises(UsageError, match="strategy"):
        wt.merge_back(repo, w, "squash")
    (repo / "shared.txt").write_text("edited by the user\n")
    with pytest.raises(BadInput, match="uncommitted changes"):
        wt.merge_back(repo, w, "merge")
    assert (repo / "shared.txt").read_text() == "edited by the user\n"


# ------------------------------------------------------------------------------- list / clean


def test_clean_keeps_dirty_and_unmerged_removes_merged_and_force_removes_all(repo: Path) -> None:
    merged, _fresh, dirty, unmerged = (
        wt.create(repo, n) for n in ("merged", "fresh", "dirty", "unmerged")
    )
    agent(merged, "done", "m.txt=m|")
    assert wt.merge_back(repo, merged, "merge").status == "merged"
    (dirty.path / "wip.txt").write_text("work in progress\n")
    agent(unmerged, "not merged", "u.txt=u|")

    preview = wt.clean(repo, dry_run=True)
    assert {Path(i.path).name for i in preview.removed} == {"merged", "fresh"}
    assert all(i.action == "would remove" for i in preview.removed)
    assert len(wt.list_worktrees(repo)) == 5  # a dry run changes nothing

    report = wt.clean(repo)
    assert {Path(i.path).name for i in report.removed} == {"merged", "fresh"}
    kept = {Path(i.path).name: i.reasons for i in report.kept}
    assert kept["dirty"] == ("has uncommitted changes (1 file(s))",)
    assert "not merged into main" in kept["unmerged"][0]
    branches = git(repo, "branch", "--format=%(refname:short)").split()
    assert sorted(branches) == ["main", "truepar/dirty", "truepar/unmerged"]
    assert (dirty.path / "wip.txt").exists()

    forced = wt.clean(repo, force=True)
    assert {Path(i.path).name for i in forced.removed} == {"dirty", "unmerged"}
    assert all(r.startswith("forced: ") for i in forced.removed for r in i.reasons)
    assert len(wt.list_worktrees(repo)) == 1
    assert git(repo, "branch", "--format=%(refname:short)") == "main"
    assert not wt.worktrees_dir(repo).exists()


def test_clean_keeps_a_live_lock_and_clears_a_stale_one(repo: Path) -> None:
    live, stale = wt.create(repo, "live"), wt.create(repo, "stale")
    gone = subprocess.Popen(["true"])
    gone.wait()
    wt.lock(live, pid=os.getpid())
    wt.lock(stale, pid=gone.pid)
    report = wt.clean(repo)
    assert [Path(i.path).name for i in report.kept] == ["live"]
    assert f"pid {os.getpid()}" in report.kept[0].reasons[0]
    (removed,) = report.removed
    assert Path(removed.path).name == "stale"
    assert any("stale lock" in r for r in removed.reasons)
    assert wt.clean(repo, force=True).removed[0].path == str(live.path)


def test_orphaned_worktree_is_pruned(repo: Path) -> None:
    w = wt.create(repo, "orphan")
    shutil.rmtree(w.path)
    (info,) = [i for i in wt.list_worktrees(repo) if i.branch == "truepar/orphan"]
    assert info.prunable
    report = wt.clean(repo)
    assert [Path(i.path).name for i in report.pruned] == ["orphan"]
    assert report.pruned[0].branch_deleted
    assert len(git(repo, "worktree", "list").splitlines()) == 1
    assert git(repo, "branch", "--format=%(refname:short)") == "main"


def test_orphan_with_unmerged_commits_keeps_its_branch_and_a_crashed_lock_is_cleared(
    repo: Path,
) -> None:
    unmerged, crashed, running = (wt.create(repo, n) for n in ("unmerged", "crashed", "running"))
    agent(unmerged, "work that is not merged", "u.txt=u|")
    gone = subprocess.Popen(["true"])
    gone.wait()
    wt.lock(crashed, pid=gone.pid)  # its orchestrator died without unlocking
    wt.lock(running, pid=os.getpid())
    for tree in (unmerged, crashed, running):
        shutil.rmtree(tree.path)
    report = wt.clean(repo)
    (pruned,) = report.pruned
    assert Path(pruned.path).name == "unmerged" and not pruned.branch_deleted
    assert "branch truepar/unmerged kept" in pruned.reasons[-1]
    assert [Path(i.path).name for i in report.removed] == ["crashed"]
    assert [Path(i.path).name for i in report.kept] == ["running"]
    branches = git(repo, "branch", "--format=%(refname:short)").split()
    assert sorted(branches) == ["main", "truepar/running", "truepar/unmerged"]
    assert len(wt.list_worktrees(repo)) == 2  # main, and the one a live agent holds


def test_detached_worktrees_are_reported_and_outside_ones_never_cleaned(repo: Path) -> None:
    outside = repo.parent / "by-hand"
    git(repo, "worktree", "add", "-q", "--detach", str(outside), "HEAD")
    wt.create(repo, "ours")
    (detached,) = wt.detached_worktrees(repo)
    assert detached.path == outside and detached.branch is None and not detached.managed
    report = wt.clean(repo, force=True)
    assert [Path(i.path).name for i in report.removed] == ["ours"]
    assert outside.exists()


# -------------------------------------------------------------------------------------- CLI


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(worktrees_app, name="worktrees")
    return app


def test_cli_list_and_clean(repo: Path) -> None:
    runner = CliRunner()
    wt.create(repo, "one")
    dirty = wt.create(repo, "two")
    (dirty.path / "x").write_text("x")
    listed = runner.invoke(_app(), ["worktrees", "list", str(repo), "--json"])
    assert listed.exit_code == 0, listed.output
    data = json.loads(listed.output)
    assert [w["branch"] for w in data["worktrees"]] == ["main", "truepar/one", "truepar/two"]
    assert data["worktrees"][2]["dirty"] is True

    table = runner.invoke(_app(), ["worktrees", "list", str(repo)], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "truepar/one" in table.output

    dry = runner.invoke(_app(), ["worktrees", "clean", str(repo), "--dry-run"])
    assert dry.exit_code == 0 and "would remove 1" in dry.output and "kept 1" in dry.output
    assert len(wt.list_worktrees(repo)) == 3

    cleaned = runner.invoke(_app(), ["worktrees", "clean", str(repo), "--json"])
    report = json.loads(cleaned.output)
    assert [Path(i["path"]).name for i in report["removed"]] == ["one"]
    assert [Path(i["path"]).name for i in report["kept"]] == ["two"]


def test_cli_not_a_repository_is_bad_input(tmp_path: Path) -> None:
    command = typer.main.get_command(_app())
    with pytest.raises(BadInput, match="is not a git repository") as err:
        command.main(["worktrees", "list", str(tmp_path)], standalone_mode=False)
    assert "\n" not in str(err.value)  # main() prints it as one line and exits 2


def test_clean_lists_ignored_files_and_keeps_ones_that_are_not_build_output(repo: Path) -> None:
    (repo / ".gitignore").write_text("__pycache__/\n*.log\n.env\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore")
    cache, secret = wt.create(repo, "cache"), wt.create(repo, "secret")
    (cache.path / "__pycache__").mkdir()
    (cache.path / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\0")
    (cache.path / "run.log").write_text("log\n")
    (secret.path / ".env").write_text("TOKEN=x\n")

    preview = wt.clean(repo, dry_run=True)
    would = {Path(i.path).name: i for i in preview.removed}
    assert would["cache"].ignored == ("__pycache__/", "run.log")  # listed, in a dry run too
    kept = {Path(i.path).name: i for i in preview.kept}
    assert "ignored files that are not build output (.env)" in kept["secret"].reasons[0]
    assert kept["secret"].ignored == (".env",)

    report = wt.clean(repo)
    assert {Path(i.path).name for i in report.removed} == {"cache"}
    assert (secret.path / ".env").exists()
    forced = wt.clean(repo, force=True)
    assert {Path(i.path).name for i in forced.removed} == {"secret"}
    assert wt.is_build_output("a/node_modules/x.js") and not wt.is_build_output("notes.txt")
