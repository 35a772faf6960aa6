"""The runnable examples of docs/parallel-patterns.md, run exactly as the guide shows them.

Each test copies ``scenarios/patterns/`` into a fresh project folder under ``tmp_path``, runs the
guide's commands there through ``bash`` (``truepar``, ``python`` and ``python3`` on ``PATH`` are
this interpreter, as in an activated virtual environment) with no git identity configured, as on
a fresh CI machine, and checks the outcome the guide describes. Nothing here depends on how fast
the machine is: the examples are built so that their outcomes do not depend on timing (merge
order is the swarm file's, the context pages are all one size, pacing is a lower bound).
``test_the_guide_shows_exactly_the_tested_commands`` keeps the guide and these tests in step.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import truepar
from truepar.agents.swarm_config import load_swarm

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "parallel-patterns.md"
PATTERNS = ROOT / "scenarios" / "patterns"

SETUP = "python scenarios/patterns/make_repos.py"

BUDGET = (
    "truepar budget --plan scenarios/patterns/prs/budget.toml",
    "truepar run scenarios/patterns/prs/budget.toml --explain",
    "python scenarios/patterns/prs/budget_policies.py",
)
PRS = (
    "truepar swarm scenarios/patterns/prs/AGENTS.toml --json .truepar/patterns/prs/swarm.json",
    "git -C .truepar/patterns/prs/repo log -1 --format=%B",
    "truepar worktrees list .truepar/patterns/prs/repo",
    "truepar worktrees clean .truepar/patterns/prs/repo",
    "rm .truepar/patterns/prs/repo-worktrees/*-pr-docs/NOTES.md",
)
REVIEWS = "truepar swarm scenarios/patterns/reviews/AGENTS.toml"
FILES = (
    "truepar lint scenarios/patterns/files/files.toml",
    "truepar run scenarios/patterns/files/files.toml --explain",
    "git -C .truepar/patterns/files/repo log --stat -1",
)
LINT = (
    "truepar lint scenarios/patterns/lint/antipatterns.toml",
    "truepar run scenarios/patterns/lint/antipatterns.toml --explain",
    "truepar lint scenarios/patterns/lint/clean.toml",
    "truepar run scenarios/patterns/lint/clean.toml",
)
DETACH = (
    "git -C .truepar/patterns/lint/repo worktree add --detach ../detached",
    "git -C .truepar/patterns/lint/repo worktree remove ../detached",
)
CONTEXT = (
    "truepar run scenarios/patterns/context/context.toml "
    "--json .truepar/patterns/context/trace.json"
)
TOOL_CALLS = "python scenarios/patterns/tool_calls/tool_calls.py"
TESTED = {SETUP, *BUDGET, *PRS, REVIEWS, *FILES, *LINT, *DETACH, CONTEXT, TOOL_CALLS}


class Project:
    """A copy of the project's ``scenarios/patterns/`` and a shell to run the guide's commands."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        shutil.copytree(PATTERNS, folder / "scenarios" / "patterns", ignore=_pycache)
        bin_dir = folder / "bin"
        bin_dir.mkdir()
        for name, prefix in (("truepar", "-m truepar "), ("python", ""), ("python3", "")):
            shim = bin_dir / name
            shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" {prefix}"$@"\n')
            shim.chmod(0o755)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        for name in ("EMAIL", "VIRTUAL_ENV"):
            env.pop(name, None)
        self.env = {
            **env,
            "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', os.defpath)}",
            "COLUMNS": "200",
            "GIT_CONFIG_GLOBAL": os.devnull,  # no user.name / user.email, as on a fresh machine
            "GIT_CONFIG_NOSYSTEM": "1",
        }

    def sh(self, command: str, rc: int = 0) -> subprocess.CompletedProcess[str]:
        """Run one of the guide's command lines and check its exit code."""
        assert command in TESTED, f"not a guide command: {command}"
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == rc, f"{command}\n{done.stdout}\n{done.stderr}"
        return done

    def path(self, relative: str) -> Path:
        return self.folder / relative

    def git(self, repo: str, *args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(self.path(repo)), *args],
            capture_output=True,
            text=True,
            check=True,
            env=self.env,
        ).stdout


def _pycache(_folder: str, names: list[str]) -> list[str]:
    return [n for n in names if n == "__pycache__"]


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    yield Project(tmp_path / "project")


def _guide_commands() -> set[str]:
    blocks = re.findall(r"```sh\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.DOTALL)
    return {line.strip() for block in blocks for line in block.splitlines() if line.strip()}


def test_the_guide_shows_exactly_the_tested_commands() -> None:
    shown = _guide_commands()
    assert shown - TESTED == set(), "commands in the guide that no test runs"
    assert TESTED - shown == set(), "commands tested here that the guide does not show"


def test_budget_toml_mirrors_the_swarm_it_stands_for(tmp_path: Path) -> None:
    repo = tmp_path / "repo"  # the swarm file names a repository; any checkout will do here
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    text = (PATTERNS / "prs" / "AGENTS.toml").read_text()
    text = text.replace('repo = "../../../.truepar/patterns/prs/repo"', f'repo = "{repo}"')
    (tmp_path / "AGENTS.toml").write_text(text)
    swarm = load_swarm(tmp_path / "AGENTS.toml")
    plan = truepar.load_plan(PATTERNS / "prs" / "budget.toml")
    assert [a.name for a in swarm.agents] == [op.id for op in plan.ops]
    assert [(a.resource, a.cost) for a in swarm.agents] == [(o.resource, o.cost) for o in plan.ops]
    assert swarm.resources == plan.resources


def test_budget_precheck_shows_pacing_and_the_three_policies(project: Project) -> None:
    check = project.sh(BUDGET[0]).stdout
    assert "paced 4/s, 5000/h" in check and "8 req" in check
    assert "api: needs 8 requests, no hard quota; pacing (4/s, 5000/h) takes at least 1.0 s" in (
        " ".join(check.split())
    )

    virtual = project.sh(BUDGET[1]).stdout
    for late in ("pr-rounding-2", "pr-docs"):
        assert f"{late} waited 1.00 s for rate limit api (4/s, 5000/h)" in virtual
    assert "pr-rounding waited" not in virtual and "4 ok of 4 ops" in virtual

    policies = project.sh(BUDGET[2]).stdout
    assert 'policy = "reduce": reduce' in policies
    assert "skipped pr-rounding-2:" in policies and "skipped pr-docs:" in policies
    assert "pr-rounding runs with TRUEPAR_BUDGET_API=2.5" in policies
    assert "pr-quantity runs with TRUEPAR_BUDGET_API=2.5" in policies
    assert 'policy = "wait": wait' in policies and "sleeps 600.5 s" in policies
    assert 'policy = "fail": fail' in policies
    assert 'set policy = "wait" or "reduce", or run fewer ops' in policies


def test_a_four_pull_requests_in_four_worktrees(project: Project) -> None:
    project.sh(SETUP)
    swarm = project.sh(PRS[0], rc=1)  # a merge conflicted: exit 1
    out = " ".join(swarm.stdout.split())
    assert "conflict: pr-rounding-2 (truepar/" in out and "in shop/prices.py; aborted" in out
    assert "kept: pr-docs: worktree" in out and "uncommitted changes (NOTES.md)" in out

    result = json.loads(project.path(".truepar/patterns/prs/swarm.json").read_text())
    agents = {a["name"]: a for a in result["agents"]}
    assert list(agents) == ["pr-rounding", "pr-quantity", "pr-rounding-2", "pr-docs"]
    assert all(a["status"] == "ok" and a["commits"] == 1 for a in agents.values())
    merges = {name: a["merge"]["status"] for name, a in agents.items()}
    assert merges == {
        "pr-rounding": "merged",
        "pr-quantity": "merged",
        "pr-rounding-2": "conflict",
        "pr-docs": "merged",
    }
    assert agents["pr-rounding-2"]["merge"]["conflict_files"] == ["shop/prices.py"]
    assert "branch truepar/" in agents["pr-rounding-2"]["kept"]
    assert result["ok"] is False
    api = result["budget"]["resources"]["api"]
    assert api["pacing_s"] == 1.0 and api["required_requests"] == 8
    # Two of the four starts wait for the rate window: a lower bound, whatever the machine.
    assert result["totals"]["wall_s"] >= 0.95

    repo = ".truepar/patterns/prs/repo"
    assert (
        "return round(cents * (1 + TAX_RATE))" in project.path(f"{repo}/shop/prices.py").read_text()
    )
    assert "with_tax(c) * q" in project.path(f"{repo}/shop/cart.py").read_text()
    assert "cart.total()  # 360" in project.path(f"{repo}/README.md").read_text()
    assert project.git(repo, "status", "--porcelain") == ""
    sessions = next(project.path(".truepar/patterns/prs/sessions").iterdir())
    assert {p.name for p in sessions.glob("session-*.json")} == {
        f"session-{name}.json" for name in agents
    }
    assert len(list(sessions.glob("record-*.json"))) == 1

    message = project.sh(PRS[1]).stdout
    assert message.startswith("truepar swarm ") and ": 4 agents" in message.splitlines()[0]
    assert "- pr-rounding-2: conflict in shop/prices.py" in message
    assert message.count("merged (1 commit, merge)") == 3

    listed = project.sh(PRS[2]).stdout
    assert "truepar/" in listed and "pr-docs" in listed
    first_clean = project.sh(PRS[3]).stdout
    assert "has uncommitted changes (1 file(s))" in first_clean
    assert "removed 0, pruned 0, kept 1" in first_clean
    project.sh(PRS[4])
    second_clean = project.sh(PRS[3]).stdout
    assert "clean and merged" in second_clean and "removed 1, pruned 0, kept 0" in second_clean
    branches = project.git(repo, "branch", "--format=%(refname:short)").split()
    assert branches[0] == "main" and len(branches) == 2
    assert branches[1].endswith("/pr-rounding-2")  # its work did not land: kept
    assert not project.path(f"{repo}-worktrees").exists()


def test_b_read_only_reviews_vote(project: Project) -> None:
    project.sh(SETUP)
    out = project.sh(REVIEWS).stdout
    assert "3 agents, at most 3 at once" in out and "worktree" not in out.splitlines()[0]
    assert "3/3 agents ok" in out
    assert "aggregation (vote):" in out
    assert "approve: False (2/3, confidence 67%)" in out
    repo = ".truepar/patterns/reviews/repo"
    assert project.git(repo, "status", "--porcelain") == ""
    assert len(project.git(repo, "log", "--format=%H").split()) == 1  # read-only: no commit
    sessions = next(project.path(".truepar/patterns/reviews/sessions").iterdir())
    record = json.loads(next(sessions.glob("record-*.json")).read_text())
    assert record["summary"]["ok"] == 3 and record["commit"] is None


def test_c_one_file_per_agent_on_one_branch(project: Project) -> None:
    project.sh(SETUP)
    lint = project.sh(FILES[0]).stdout
    assert "scenarios/patterns/files/files.toml: 5 ops, no findings" in lint

    run = project.sh(FILES[1]).stdout
    for writer in ("doc-prices", "doc-cart", "doc-stock"):
        assert f"index after {writer}: declared in after" in run
        assert f"commit after {writer}: {writer} writes docs/" in run
        for other in ("doc-prices", "doc-cart", "doc-stock"):
            assert f"{writer} after {other}" not in run  # the three never wait for each other
    assert "5 ok of 5 ops" in run

    log = project.sh(FILES[2]).stdout
    assert "docs: one page per module" in log and "Author: orchestrator" in log
    for page in ("cart", "index", "prices", "stock"):
        assert f"docs/{page}.md" in log
    assert "4 files changed" in log
    repo = ".truepar/patterns/files/repo"
    assert project.git(repo, "branch", "--format=%(refname:short)").split() == ["main"]
    index = project.path(f"{repo}/docs/index.md").read_text()
    assert "[cart](cart.md)" in index and "[stock](stock.md)" in index


def test_lint_antipatterns_clean_and_a_detached_worktree(project: Project) -> None:
    project.sh(SETUP)
    bad = project.sh(LINT[0], rc=1).stdout
    for rule in ("TP001", "TP002", "TP003", "TP004", "TP006", "TP007"):
        assert rule in bad
    assert "4 error(s), 2 warning(s)" in bad
    found = json.loads(
        subprocess.run(
            [sys.executable, "-m", "truepar", "lint", LINT[0].split()[-1], "--json"],
            cwd=project.folder,
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    )["findings"]
    assert {f["rule"]: f["ops"] for f in found} == {
        "TP001": ["summary-prices", "summary-cart"],
        "TP002": ["show-summary", "summary-prices"],
        "TP003": ["ask-prices", "ask-cart", "ask-stock", "ask-readme"],
        "TP004": ["fix-prices", "fix-cart"],
        "TP006": ["estimate"],
        "TP007": ["ask-prices", "ask-cart", "ask-stock", "ask-readme"],
    }

    made_safe = " ".join(project.sh(LINT[1]).stdout.split())
    assert "summary-prices after show-summary: show-summary reads out/summary.md" in made_safe
    assert "summary-cart after summary-prices: both write out/summary.md" in made_safe
    assert "for resource model (max_concurrent 2)" in made_safe
    assert "fix-cart after fix-prices: both write repo" in made_safe

    assert "11 ops, no findings" in project.sh(LINT[2]).stdout
    assert "11 ok of 11 ops" in project.sh(LINT[3]).stdout

    shutil.rmtree(project.path(".truepar/patterns/lint/out"))
    project.sh(DETACH[0])
    detached = project.sh(LINT[2], rc=1).stdout
    assert "TP005 detached-worktree" in detached and "fix-prices, fix-cart" in detached
    refused = project.sh(LINT[3], rc=2)
    assert refused.stderr.count("\n") == 1 and "refused, TP005 detached-worktree" in refused.stderr
    assert not project.path(".truepar/patterns/lint/out").exists()  # nothing started
    project.sh(DETACH[1])
    assert "no findings" in project.sh(LINT[2]).stdout


def test_context_budget_lowers_truncates_and_stops(project: Project) -> None:
    project.sh(SETUP)
    out = project.sh(CONTEXT, rc=1).stdout  # stopped: not every op ran
    assert "8 ok of 11 ops, 3 skipped" in out
    trace = json.loads(project.path(".truepar/patterns/context/trace.json").read_text())
    events = trace["context"]["events"]
    assert [e["action"] for e in events] == ["lower", "truncate", "stop"]
    assert (events[0]["workers_before"], events[0]["workers"]) == (2, 1)
    assert [e["used_tokens"] for e in events] == [96, 112, 120]
    assert sum(1 for s in trace["spans"] if s.get("truncated")) == 1
    skipped = [r for r in trace["results"].values() if r["status"] == "skipped"]
    assert len(skipped) == 3
    assert all("the context budget is spent" in r["error"] for r in skipped)
    assert len(trace["handoff"]["remaining"]) == 3 and len(trace["handoff"]["finished"]) == 8


def test_tool_calls_of_one_message(project: Project) -> None:
    out = project.sh(TOOL_CALLS).stdout
    assert out.startswith("6 calls, 5 ran:")
    assert "3-append_note after 2-append_note: both write NOTES.md" in out
    assert "4-read_file after 3-append_note: 3-append_note writes NOTES.md" in out
    messages = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [m["tool_call_id"] for m in messages] == [f"call_{i}" for i in range(6)]
    assert messages[4]["content"] == (
        "- prices.py: with_tax truncates\n- cart.py: total ignores quantity\n"
    )
    assert messages[5]["content"].startswith("Error: unknown tool 'delete_repo'")
