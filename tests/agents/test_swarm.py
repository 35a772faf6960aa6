"""``truepar swarm``: real agents in real worktrees of a real repository — two merge, one
conflicts and is reported, nothing stray is left, one consolidated record and one commit; a
hundred agents in one run; aggregation; a live budget shared between agents."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from helpers.cli import truepar
from helpers.git import git
from helpers.github import GitHubState
from truepar.agents.swarm import run_swarm
from truepar.agents.swarm_config import load_swarm

REPO_ROOT = Path(__file__).resolve().parents[2]
SCENARIO = REPO_ROOT / "scenarios" / "swarm"

pytestmark = pytest.mark.usefixtures("git_identity")


def make_repo(folder: Path) -> Path:
    spec = importlib.util.spec_from_file_location("make_repo", SCENARIO / "make_repo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Path(module.make(folder))


def scenario_copy(tmp_path: Path) -> tuple[Path, Path]:
    """The scenario's swarm file, pointed at a fresh repository under ``tmp_path``."""
    repo = make_repo(tmp_path / "repo")
    text = (SCENARIO / "AGENTS.toml").read_text()
    text = text.replace('repo = "../../.truepar/swarm-demo/repo"', f'repo = "{repo}"')
    text = text.replace(
        'sessions = "../../.truepar/swarm-demo/sessions"', f'sessions = "{tmp_path / "sessions"}"'
    )
    text = text.replace("{here}", str(SCENARIO))
    swarm_file = tmp_path / "AGENTS.toml"
    swarm_file.write_text(text)
    return swarm_file, repo


def test_results_stay_readable_at_80_columns(tmp_path: Path) -> None:
    """At 80 columns (a CI log) the table gives way to a record per agent: names, merge
    outcomes and the record's path whole; a wide terminal keeps the table."""
    swarm_file, _ = scenario_copy(tmp_path)
    out = tmp_path / "out.json"
    proc = truepar("swarm", str(swarm_file), "--json", str(out), "--no-evidence", columns=80)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the conflict, as in the scenario
    record = json.loads(out.read_text())["record"]
    lines = proc.stdout.splitlines()
    assert f"record {record}" in "\n".join(lines)  # the path on one line, whole
    for name in ("fix-add", "fix-docs", "fix-add-again"):
        assert any(line.startswith(f"{name}  ok  ") for line in lines), proc.stdout
    assert "    merge: conflict in calc.py" in lines, proc.stdout
    assert "…" not in proc.stdout
    for line in lines:
        assert len(line) <= 80 or line.startswith(("record ", "session logs in ")), line


def test_scenario_merges_two_reports_the_conflict_and_leaves_nothing_stray(
    tmp_path: Path,
) -> None:
    swarm_file, repo = scenario_copy(tmp_path)
    before = git(repo, "rev-parse", "HEAD").strip()
    proc = truepar("swarm", str(swarm_file), "--json", str(tmp_path / "out.json"), columns=200)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # one agent's work did not land
    assert "conflict: fix-add-again" in proc.stdout and "calc.py" in proc.stdout
    data = json.loads((tmp_path / "out.json").read_text())
    merges = {a["name"]: a["merge"]["status"] for a in data["agents"]}
    assert merges == {"fix-add": "merged", "fix-docs": "merged", "fix-add-again": "conflict"}
    assert all(a["status"] == "ok" and a["commits"] == 1 for a in data["agents"])
    # the checkout has both landed changes and none of the third's, and a clean tree
    assert "return a + b" in (repo / "calc.py").read_text()
    assert "prints 3" in (repo / "docs" / "usage.md").read_text()
    assert git(repo, "status", "--porcelain") == ""
    # no stray worktree; the conflicting agent's branch is kept so its work is not lost
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert not (repo.parent / "repo-worktrees").exists()
    branches = git(repo, "branch", "--format=%(refname:short)").split()
    assert len(branches) == 2 and branches[0] == "main" and branches[1].endswith("fix-add-again")
    # one consolidated record, one commit listing every session
    log = git(repo, "log", "--format=%s", f"{before}..HEAD").splitlines()
    assert log[0].startswith("truepar swarm ") and log[0].endswith(": 3 agents")
    assert sum(s.startswith("truepar: merge agent") for s in log) == 2
    message = git(repo, "log", "-1", "--format=%B")
    for line in ("- fix-add: merged", "- fix-docs: merged", "- fix-add-again: conflict in calc.py"):
        assert line in message, message
    record = json.loads(Path(data["record"]).read_text())
    assert record["summary"]["merged"] == 2 and record["summary"]["conflicts"] == 1
    sessions = Path(data["record"]).parent
    for name in ("fix-add", "fix-docs", "fix-add-again"):  # each agent its own log pair
        assert (sessions / f"session-{name}.json").exists()
        assert (sessions / f"session-{name}.md").exists()


def test_a_hundred_agents_in_one_run(tmp_path: Path) -> None:
    swarm_file = tmp_path / "AGENTS.toml"
    swarm_file.write_text(
        f"""
[swarm]
name = "hundred"
count = 100
workers = 100
sessions = "{tmp_path / "sessions"}"

[template]
argv = ["sh", "-c", "echo working; echo done {{name}}"]
prompt = "go"
"""
    )
    result = run_swarm(load_swarm(swarm_file))
    assert len(result.agents) == 100
    assert all(a.status == "ok" for a in result.agents)
    assert {a.last_line for a in result.agents} == {f"done agent-{i}" for i in range(100)}
    assert result.record.summary()["agents"] == 100
    assert result.trace.totals.avg_concurrency > 1  # they overlapped


def test_agents_results_are_voted_on(tmp_path: Path) -> None:
    answers = {"a": "yes", "b": "yes", "c": "no"}
    tasks = "".join(
        f'\n[[task]]\nname = "{name}"\nanswer = "{answer}"\n' for name, answer in answers.items()
    )
    swarm_file = tmp_path / "AGENTS.toml"
    program = 'import json, sys; print(json.dumps({{"ship": sys.argv[1]}}))'  # {{ }}: literal
    swarm_file.write_text(
        f"""
[swarm]
name = "reviews"
aggregate = "vote"
sessions = "{tmp_path / "s"}"

[template]
argv = ["{{python}}", "-c", '{program}', "{{answer}}"]
prompt = "should we ship?"
{tasks}"""
    )
    result = run_swarm(load_swarm(swarm_file))
    assert result.aggregation is not None and result.aggregation["strategy"] == "vote"
    text = json.dumps(result.aggregation)
    assert '"yes"' in text and "ship" in text


def test_a_live_budget_is_shared_between_agents(
    tmp_path: Path, gh: tuple[str, GitHubState]
) -> None:
    _, state = gh
    state.set("core", limit=5000, remaining=2, reset_in=600)
    env_dump = "import os; print(os.environ.get('TRUEPAR_BUDGET_GITHUB', 'none'))"
    swarm_file = tmp_path / "AGENTS.toml"
    swarm_file.write_text(
        f"""
[swarm]
name = "four prs"
count = 4
sessions = "{tmp_path / "s"}"

[template]
argv = ["{{python}}", "-c", "{env_dump}"]
prompt = "open a PR"
resource = "github"
cost = 1

[resources.github]
provider = "github:core"
policy = "reduce"
"""
    )
    result = run_swarm(load_swarm(swarm_file))
    statuses = [a.status for a in result.agents]
    assert statuses.count("ok") == 2 and statuses.count("error") == 2  # two did not fit
    ran = [a for a in result.agents if a.status == "ok"]
    assert all(a.last_line == "1.0" for a in ran)  # each kept agent got its share
    assert result.budget is not None


def test_bad_swarm_files_are_one_line_exit_2(tmp_path: Path) -> None:
    cases = {
        "empty.toml": "[swarm]\nname = 'x'\n",
        "typo.toml": "[swarm]\nworkerz = 3\n[[task]]\nname = 'a'\n",
        "norepo.toml": "[swarm]\nrepo = 'no'\n[template]\nargv = ['true']\n[[task]]\nname='a'\n",
        "badname.toml": "[template]\nargv = ['true']\n[[task]]\nname = '../x'\n",
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        proc = truepar("swarm", str(path))
        assert proc.returncode == 2, (name, proc.stdout, proc.stderr)
        assert proc.stderr.strip().count("\n") == 0, (name, proc.stderr)
        assert str(path) in proc.stderr, (name, proc.stderr)


def test_a_repository_with_a_detached_worktree_is_refused(tmp_path: Path) -> None:
    swarm_file, repo = scenario_copy(tmp_path)
    git(repo, "worktree", "add", "-q", "--detach", str(tmp_path / "loose"), "HEAD")
    proc = truepar("swarm", str(swarm_file))
    assert proc.returncode == 2 and "TP005 detached-worktree" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert not (repo.parent / "repo-worktrees").exists()  # nothing was started


def in_place_swarm(tmp_path: Path) -> Path:
    """Two agents that change the checkout itself and two that only read it."""
    repo = make_repo(tmp_path / "repo")
    agents = "".join(
        f'\n[[agent]]\nname = "{name}"\nread_only = {str(reads).lower()}\n'
        for name, reads in (("w1", False), ("w2", False), ("r1", True), ("r2", True))
    )
    path = tmp_path / "AGENTS.toml"
    path.write_text(
        f'[swarm]\nname = "in place"\nrepo = "{repo}"\nisolation = "none"\nmerge = "none"\n'
        f'workers = 4\nsessions = "{tmp_path / "sessions"}"\n'
        f'[template]\nargv = ["sleep", "0.4"]\nprompt = ""\n{agents}'
    )
    return path


def test_agents_changing_the_checkout_in_place_take_turns(tmp_path: Path) -> None:
    result = run_swarm(load_swarm(in_place_swarm(tmp_path)))
    assert all(a.status == "ok" for a in result.agents)
    spans = {s.op_id: s for s in result.trace.spans}
    w1, w2, r1, r2 = (spans[name] for name in ("w1", "w2", "r1", "r2"))
    assert w1.end_ns <= w2.start_ns  # the writers one after the other (TP004), in file order
    assert max(r1.start_ns, r2.start_ns) < min(r1.end_ns, r2.end_ns)  # the readers together


def test_lint_takes_a_swarm_file(tmp_path: Path) -> None:
    swarm_file, repo = scenario_copy(tmp_path)
    proc = truepar("lint", str(swarm_file))
    assert proc.returncode == 0 and "3 ops, no findings" in proc.stdout, proc.stdout + proc.stderr
    proc = truepar("lint", str(in_place_swarm(tmp_path / "in-place")), "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (finding,) = json.loads(proc.stdout)["findings"]
    assert finding["rule"] == "TP004" and finding["ops"] == ["w1", "w2"]
    git(repo, "worktree", "add", "-q", "--detach", str(tmp_path / "loose"), "HEAD")
    proc = truepar("lint", str(swarm_file))
    assert proc.returncode == 1 and "TP005" in proc.stdout


def test_budget_takes_a_swarm_file(tmp_path: Path) -> None:
    swarm_file = tmp_path / "AGENTS.toml"
    swarm_file.write_text(
        '[swarm]\nname = "b"\ncount = 3\n[template]\nargv = ["true"]\nprompt = ""\n'
        'resource = "api"\ncost = 2\n[resources.api]\nper_minute = 60\n'
    )
    proc = truepar("budget", "--plan", str(swarm_file), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    api = json.loads(proc.stdout)["plan"]["resources"]["api"]
    assert api["required_requests"] == 6 and api["ops"] == 3 and api["paced"] == "60/min"
