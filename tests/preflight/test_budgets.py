"""Live rate budgets: GitHub's /rate_limit from a local server; the fail, wait, reduce policies."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import Field
from typer.testing import CliRunner

import truepar
from helpers.github import TOKEN, GitHubState
from helpers.plans import make_plan
from truepar import FakeSpec, Resource, SleepOp, Status
from truepar.cli.budget_cmd import budget_command
from truepar.errors import BudgetError
from truepar.preflight import budgets, github
from truepar.preflight.github import Quota


def gh_ops(n: int, resource: str = "gh", **kw: Any) -> list[SleepOp]:
    return [
        SleepOp(id=f"q{i}", seconds=0.1, resource=resource, fake=FakeSpec(duration_s=0.1), **kw)
        for i in range(n)
    ]


def gh_plan(tmp_path: Path, ops: list[Any], **resource: Any) -> truepar.Plan:
    res = Resource(provider="github:search", **resource)
    return make_plan(tmp_path, ops, backend="fake", resources={"gh": res})


# -- the GitHub client -----------------------------------------------------------------------------


def test_fetch_reads_every_bucket_with_the_token(gh: tuple[str, GitHubState]) -> None:
    url, state = gh
    limits = github.fetch_rate_limits()
    assert limits.api_url == url and limits.authenticated
    assert state.auth == [f"Bearer {TOKEN}"]
    core = limits.quota("core")
    assert (core.limit, core.remaining, core.used, core.provider) == (5000, 4990, 10, "github:core")
    assert core.reset_unix_s == pytest.approx(time.time() + 3600, abs=5)
    assert set(limits.buckets) == {"core", "search", "graphql", "code_search"}


def test_fetch_token_order_and_no_token(
    gh: tuple[str, GitHubState], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, state = gh
    monkeypatch.setenv("GITHUB_TOKEN", "other")
    github.fetch_rate_limits()
    assert state.auth[-1] == f"Bearer {TOKEN}"  # GH_TOKEN first, as the gh CLI does
    monkeypatch.delenv("GH_TOKEN")
    monkeypatch.delenv("GITHUB_TOKEN")
    assert not github.fetch_rate_limits().authenticated
    assert state.auth[-1] is None


def test_fetch_errors_are_one_line(
    gh: tuple[str, GitHubState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = gh
    monkeypatch.setenv("GH_TOKEN", "wrong")
    with pytest.raises(BudgetError, match=r"answered 401 Unauthorized \(check GH_TOKEN"):
        github.fetch_rate_limits()
    with pytest.raises(BudgetError, match="answered 404"):
        github.fetch_rate_limits(f"{url}/api/v3")  # a base URL of its own (GitHub Enterprise)
    with pytest.raises(BudgetError, match=r"GET http://127.0.0.1:9/rate_limit failed"):
        github.fetch_rate_limits("http://127.0.0.1:9")
    monkeypatch.setenv("GH_TOKEN", TOKEN)
    with pytest.raises(BudgetError, match="no rate-limit bucket 'nope'"):
        github.fetch_rate_limits().quota("nope")


# -- the check, without side effects ---------------------------------------------------------------


def quota(remaining: int, limit: int = 30, reset_in: float = 40.0) -> Quota:
    return Quota("github:search", limit, remaining, limit - remaining, 1_000_000.0 + reset_in)


def test_needs_and_pacing(tmp_path: Path) -> None:
    ops = [*gh_ops(3, cost=2, tokens=100), SleepOp(id="free", seconds=0)]
    plan = make_plan(
        tmp_path, ops, backend="fake", resources={"gh": Resource(per_second=2, per_hour=100)}
    )
    need = budgets.needs(plan)
    assert need == {"gh": budgets.Need(6.0, 300, ("q0", "q1", "q2"))}
    check = budgets.check_budget(plan, {})
    (r,) = check.resources
    # Declared rates pace and never refuse: 6 requests at 2/s take at least 2 s.
    assert (r.action, r.quota, r.paced, r.pacing_s) == ("ok", None, "2/s, 100/h", 2.0)
    assert "no hard quota" in r.message


def test_check_fail_wait_reduce(tmp_path: Path) -> None:
    now = 1_000_000.0
    fail = budgets.check_budget(gh_plan(tmp_path, gh_ops(10)), {"gh": quota(4)}, now_unix_s=now)
    assert fail.resources[0].action == "fail"
    wait_plan = gh_plan(tmp_path, gh_ops(10), policy="wait", max_wait_s=60)
    (w,) = budgets.check_budget(wait_plan, {"gh": quota(4)}, now_unix_s=now).resources
    assert (w.action, w.wait_s) == ("wait", 40.5)
    (w,) = budgets.check_budget(wait_plan, {"gh": quota(4, reset_in=90)}, now_unix_s=now).resources
    assert w.action == "fail" and "longer than its max_wait_s = 60" in w.message
    (w,) = budgets.check_budget(wait_plan, {"gh": quota(4, limit=8)}, now_unix_s=now).resources
    assert w.action == "fail" and "waiting cannot help" in w.message
    reduce_plan = gh_plan(tmp_path, gh_ops(10), policy="reduce")
    (r,) = budgets.check_budget(reduce_plan, {"gh": quota(4)}, now_unix_s=now).resources
    assert r.action == "reduce"
    assert sorted(r.dropped) == [f"q{i}" for i in range(4, 10)]
    ok = budgets.check_budget(reduce_plan, {"gh": quota(10)}, now_unix_s=now)
    assert ok.resources[0].action == "ok" and not ok.dropped


# -- preflight against the local server ------------------------------------------------------------


def test_fail_names_remaining_required_and_reset(
    tmp_path: Path, gh: tuple[str, GitHubState]
) -> None:
    _, state = gh
    state.set("search", limit=30, remaining=3, reset_in=600)
    plan = gh_plan(tmp_path, gh_ops(12))
    with pytest.raises(BudgetError) as info:
        budgets.preflight(plan)
    message = str(info.value)
    assert "\n" not in message
    assert "resource 'gh' (github:search): the run needs 12 requests, 3 of 30 are left" in message
    assert re.search(r"until \d\d:\d\d:\d\d UTC \(in (9|10) min", message)
    assert 'set policy = "wait" or "reduce"' in message


def test_wait_sleeps_until_the_reset_then_runs(tmp_path: Path, gh: tuple[str, GitHubState]) -> None:
    _, state = gh
    state.set("search", limit=30, remaining=2, reset_in=1.5)
    told: list[budgets.ResourceCheck] = []
    plan = gh_plan(tmp_path, gh_ops(12), policy="wait", max_wait_s=10)
    t0 = time.monotonic()
    pre = budgets.preflight(plan, on_wait=told.append)
    waited = time.monotonic() - t0
    assert len(told) == 1 and told[0].resource == "gh" and 1.0 < told[0].wait_s <= 3.0
    assert waited >= told[0].wait_s - 0.05 and pre.waited_s == told[0].wait_s
    assert pre.check.resources[0].quota is not None
    assert pre.check.resources[0].quota.remaining == 30  # read again after the reset
    trace = truepar.run(pre.plan, checks=False, budget=pre.decision)
    assert trace.ok
    assert trace.budget is not None and trace.budget["waited_s"] == pre.waited_s


def test_wait_longer_than_max_wait_fails_at_once(
    tmp_path: Path, gh: tuple[str, GitHubState]
) -> None:
    _, state = gh
    state.set("search", limit=30, remaining=2, reset_in=3000)
    plan = gh_plan(tmp_path, gh_ops(5), policy="wait", max_wait_s=5)
    slept: list[float] = []
    with pytest.raises(BudgetError, match="longer than its max_wait_s = 5"):
        budgets.preflight(plan, sleep=slept.append)
    assert slept == []


class ShareOp(SleepOp):
    """Stands in for the ``agent`` tool's op: what reduce looks for is a ``budget_share`` field."""

    budget_share: dict[str, float] = Field(default_factory=dict)


def test_reduce_drops_what_does_not_fit_and_shares_the_rest(
    tmp_path: Path, gh: tuple[str, GitHubState]
) -> None:
    _, state = gh
    state.set("search", limit=30, remaining=7, reset_in=60)
    ops: list[Any] = [
        SleepOp(id="list", seconds=0.1, resource="gh", cost=1),
        *(ShareOp(id=f"agent{i}", seconds=0.1, resource="gh", cost=2) for i in range(5)),
        SleepOp(id="report", seconds=0.1, after=["agent4"]),
        SleepOp(id="local", seconds=0.1),
    ]
    plan = gh_plan(tmp_path, ops, policy="reduce")
    pre = budgets.preflight(plan)
    # 1 + 2 + 2 + 2 = 7: list and three agents fit; the other two are dropped, and so is what
    # needs them. Each kept agent gets an equal share of what "list" leaves: (7 - 1) / 3.
    assert set(pre.decision.skip if pre.decision else {}) == {"agent3", "agent4", "report"}
    shares = {op.id: getattr(op, "budget_share", None) for op in pre.plan.ops}
    assert shares["agent0"] == shares["agent2"] == {"gh": 2.0}
    assert shares["agent3"] == {} and shares["list"] is None
    trace = truepar.run(pre.plan, checks=False, budget=pre.decision)
    status = {k: r.status for k, r in trace.results.items()}
    assert [k for k, s in status.items() if s is Status.SKIPPED] == ["agent3", "agent4", "report"]
    assert "dropped by the budget: resource 'gh' had 7 requests left" in (
        trace.results["agent3"].error or ""
    )
    assert "it needs 'agent4', which was dropped" in (trace.results["report"].error or "")
    assert status["local"] is Status.OK
    assert trace.budget is not None
    assert trace.budget["resources"]["gh"]["action"] == "reduce"
    assert trace.to_json()["budget"]["resources"]["gh"]["remaining"] == 7


def test_plans_without_budgets_are_not_checked(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, gh_ops(2), backend="fake", resources={"gh": Resource()})
    pre = budgets.preflight(plan, quotas=lambda p: pytest.fail("no provider to ask"))
    assert pre.decision is None and pre.plan is plan


def test_plan_file_fields(tmp_path: Path) -> None:
    data = {
        "defaults": {"backend": "fake", "context_tokens": 5000},
        "resources": {
            "gh": {"provider": "github", "policy": "reduce", "per_hour": 5000},
            "llm": {"tokens_per_minute": 90000, "per_minute": 60},
        },
        "op": [
            {"id": "a", "tool": "sleep", "seconds": 1, "resource": "gh", "tags": "github"},
            {
                "id": "b",
                "tool": "sleep",
                "seconds": 1,
                "resource": "llm",
                "tokens": 1200,
                "max_output_tokens": 300,
                "cost": 1.5,
                "tags": ["llm"],
            },
        ],
    }
    plan = truepar.plan_from_dict(data, source="plan.toml", base_dir=tmp_path)
    assert plan.resources["gh"].provider == "github:core"
    assert plan.op("a").tags == ("github",) and plan.op("b").cost == 1.5
    with pytest.raises(truepar.PlanError, match=r"unknown provider 'gitlab:core'"):
        truepar.plan_from_dict(
            {**data, "resources": {"gh": {"provider": "gitlab:core"}}},
            source="plan.toml",
            base_dir=tmp_path,
        )


# -- truepar budget --------------------------------------------------------------------------------


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("budget")(budget_command)

    @app.command("other")
    def _other() -> None:  # a second command, so that "budget" is not the app's only one
        pass

    return app


def test_budget_command_shows_the_live_buckets(
    gh: tuple[str, GitHubState], cli: typer.Typer
) -> None:
    url, _ = gh
    result = CliRunner().invoke(cli, ["budget"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert f"GitHub rate limit — {url} (authenticated)" in result.output
    for row in ("core", "4990", "5000", "search", "graphql"):
        assert row in result.output
    assert "1 more buckets in --json" in result.output
    data = json.loads(CliRunner().invoke(cli, ["budget", "--json"]).output)
    assert data["provider"]["buckets"]["code_search"]["limit"] == 10 and data["plan"] is None


def test_budget_command_with_a_plan(
    tmp_path: Path, gh: tuple[str, GitHubState], cli: typer.Typer
) -> None:
    _, state = gh
    state.set("search", limit=30, remaining=4, reset_in=60)
    plan = tmp_path / "plan.toml"
    ops = "".join(
        f'[[op]]\nid = "q{i}"\ntool = "sleep"\nseconds = 0\nresource = "gh"\n' for i in range(6)
    )
    plan.write_text(f'[resources.gh]\nprovider = "github:search"\npolicy = "reduce"\n{ops}')
    result = CliRunner().invoke(cli, ["budget", "--plan", str(plan)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "drop 2 ops" in result.output and "4 / 30" in result.output
    data = json.loads(CliRunner().invoke(cli, ["budget", "--plan", str(plan), "--json"]).output)
    gh_check = data["plan"]["resources"]["gh"]
    assert (gh_check["required_requests"], gh_check["remaining"]) == (6, 4)
    assert sorted(gh_check["dropped"]) == ["q4", "q5"] and data["provider"] is None
    plan.write_text(plan.read_text().replace('"reduce"', '"fail"'))
    failing = CliRunner().invoke(
        cli, ["budget", "--plan", str(plan)], env={"COLUMNS": "200"}, standalone_mode=False
    )
    assert failing.return_value == 1 and "refuse" in failing.output
    bad = CliRunner().invoke(cli, ["budget", "--provider", "gitlab"])
    assert isinstance(bad.exception, truepar.UsageError)


def test_reduce_gives_agent_ops_their_share(tmp_path: Path) -> None:
    agent = pytest.importorskip("truepar.tools.agent")
    ops = [
        agent.AgentOp(id=f"a{i}", argv=["true"], prompt="p", resource="gh", cost=3)
        for i in range(4)
    ]
    plan = gh_plan(tmp_path, ops, policy="reduce")
    pre = budgets.preflight(plan, quotas=lambda p: {"gh": quota(7)})
    assert pre.decision is not None and sorted(pre.decision.skip) == ["a2", "a3"]
    kept = {op.id: op.budget_share for op in pre.plan.ops if isinstance(op, agent.AgentOp)}
    assert kept == {"a0": {"gh": 3.5}, "a1": {"gh": 3.5}, "a2": {}, "a3": {}}
