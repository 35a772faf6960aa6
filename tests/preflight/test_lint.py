"""``truepar lint``: each anti-pattern, in a plan written to contain it, is flagged with its rule
id; a clean plan passes; ``truepar run`` refuses what cannot be made safe (TP005)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import truepar
from helpers.cli import truepar as truepar_cli
from helpers.git import git
from truepar.preflight.lint import lint

pytestmark = pytest.mark.usefixtures("git_identity")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "work" / "repo"
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "a.txt").write_text("a\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


def write(tmp_path: Path, text: str, name: str = "plan.toml") -> Path:
    path = tmp_path / "work" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    (tmp_path / "work" / "blocking.py").write_text(
        "import time\n\ndef work(x):\n    time.sleep(0.01)\n    return x\n\n"
        "async def nice(x):\n    return x\n"
    )
    return path


BAD = """
name = "every anti-pattern"
[defaults]
backend = "async"

[resources.github]
max_concurrent = 2
[resources.unbudgeted]

[[op]]
id = "w1"
tool = "bash"
argv = ["true"]
writes = ["out/report.md"]

[[op]]
id = "w2"
tool = "bash"
argv = ["true"]
writes = ["out/report.md"]

[[op]]
id = "reader"
tool = "read"
path = "out/report.md"
after = ["w1", "w2"]

[[op]]
id = "peek"
tool = "read"
path = "data.txt"

[[op]]
id = "writer"
tool = "bash"
argv = ["true"]
writes = ["data.txt"]

[[op]]
id = "search"
tool = "sleep"
seconds = 0
tags = ["github"]
resource = "unbudgeted"

[[op]]
id = "fix-a"
tool = "agent"
argv = ["true"]
prompt = "fix a"
repo = "repo"
isolation = "none"

[[op]]
id = "fix-b"
tool = "agent"
argv = ["true"]
prompt = "fix b"
repo = "repo"
isolation = "none"

[[op]]
id = "blocker"
tool = "python"
call = "blocking:work"
args = [1]

[[op]]
id = "fine"
tool = "python"
call = "blocking:nice"
args = [1]

[[op]]
id = "g1"
tool = "sleep"
seconds = 0
resource = "github"
[[op]]
id = "g2"
tool = "sleep"
seconds = 0
resource = "github"
[[op]]
id = "g3"
tool = "sleep"
seconds = 0
resource = "github"
"""

CLEAN = """
name = "clean"
[defaults]
backend = "threads"

[resources.github]
max_concurrent = 4
per_minute = 60

[[op]]
id = "build"
tool = "bash"
argv = ["true"]
writes = ["out/report.md"]

[[op]]
id = "report"
tool = "read"
path = "out/report.md"
after = ["build"]

[[op]]
id = "search"
tool = "sleep"
seconds = 0
tags = ["github"]
resource = "github"

[[op]]
id = "review"
tool = "agent"
argv = ["true"]
prompt = "review"
repo = "repo"
read_only = true
isolation = "none"

[[op]]
id = "fix"
tool = "agent"
argv = ["true"]
prompt = "fix"
repo = "repo"
isolation = "none"
"""


def by_rule(findings: list[Any]) -> dict[str, Any]:
    return {f.rule: f for f in findings}


def test_each_anti_pattern_is_flagged_with_its_rule(tmp_path: Path, repo: Path) -> None:
    git(repo, "worktree", "add", "-q", "--detach", str(repo.parent / "loose"), "HEAD")
    plan = truepar.load_plan(write(tmp_path, BAD))
    found = by_rule(lint(plan))
    assert set(found) == {"TP001", "TP002", "TP003", "TP004", "TP005", "TP006", "TP007"}
    assert (
        found["TP001"].ops == ("w1", "w2") and "both write out/report.md" in found["TP001"].message
    )
    assert found["TP002"].ops == ("peek", "writer")
    assert found["TP003"].ops == ("search",)
    assert set(found["TP004"].ops) == {"fix-a", "fix-b"}
    assert "detached HEAD" in found["TP005"].message
    assert found["TP006"].ops == ("blocker",)  # the async def one is fine
    assert set(found["TP007"].ops) == {"g1", "g2", "g3"}
    for f in found.values():
        assert f.fix and f.severity in ("error", "warning")


def test_a_clean_plan_passes(tmp_path: Path, repo: Path) -> None:
    plan = truepar.load_plan(write(tmp_path, CLEAN))
    assert lint(plan) == []
    result = truepar_cli("lint", str(tmp_path / "work" / "plan.toml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no findings" in result.stdout


def test_cli_exits_1_on_errors_and_speaks_json(tmp_path: Path, repo: Path) -> None:
    path = write(tmp_path, BAD)
    result = truepar_cli("lint", str(path), "--json")
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    rules = {f["rule"] for f in doc["findings"]}
    assert {"TP001", "TP002", "TP003", "TP004", "TP006", "TP007"} <= rules
    assert doc["errors"] >= 4
    assert all(
        {"rule", "name", "severity", "ops", "message", "fix"} <= set(f) for f in doc["findings"]
    )
    table = truepar_cli("lint", str(path))
    assert table.returncode == 1 and "TP001 unordered-writes" in table.stdout


def test_warnings_alone_exit_0(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[op]]
id = "peek"
tool = "read"
path = "data.txt"
[[op]]
id = "writer"
tool = "bash"
argv = ["true"]
writes = ["data.txt"]
""",
    )
    result = truepar_cli("lint", str(path))
    assert result.returncode == 0 and "TP002" in result.stdout


def test_run_refuses_an_agent_repo_with_a_detached_worktree(tmp_path: Path, repo: Path) -> None:
    git(repo, "worktree", "add", "-q", "--detach", str(repo.parent / "loose"), "HEAD")
    path = write(
        tmp_path,
        """
[[op]]
id = "fix"
tool = "agent"
argv = ["true"]
prompt = "fix"
repo = "repo"
isolation = "none"
""",
    )
    result = truepar_cli("run", str(path))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "TP005 detached-worktree" in result.stderr


def test_bad_plan_is_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, "[[op]]\nid = 1\n")
    result = truepar_cli("lint", str(path))
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0


def test_a_reader_after_a_writer_is_a_race_not_two_writers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[op]]
id = "writer"
tool = "bash"
argv = ["true"]
writes = ["data.txt"]
[[op]]
id = "peek"
tool = "read"
path = "data.txt"
""",
    )
    found = lint(truepar.load_plan(path))
    assert [(f.rule, f.ops) for f in found] == [("TP002", ("writer", "peek"))]


def test_worktree_isolation_in_a_plan_is_flagged_and_refused(tmp_path: Path, repo: Path) -> None:
    path = write(
        tmp_path,
        """
[[op]]
id = "fix-a"
tool = "agent"
argv = ["true"]
prompt = "fix"
repo = "repo"
[[op]]
id = "fix-b"
tool = "agent"
argv = ["true"]
prompt = "fix"
repo = "repo"
isolation = "worktree"
""",
    )
    found = by_rule(lint(truepar.load_plan(path)))
    assert set(found) == {"TP004"} and found["TP004"].ops == ("fix-a", "fix-b")
    assert "only truepar swarm" in found["TP004"].message
    result = truepar_cli("run", str(path))
    assert result.returncode == 2 and "TP004 shared-checkout" in result.stderr
