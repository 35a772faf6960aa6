"""``truepar budget``: the live rate budget, and what a plan would need of it.

Without ``--plan`` it shows GitHub's buckets (remaining, limit, reset). With one it also shows,
per resource with a budget, what the plan's ops need against what is available and what the
resource's policy would do — without running anything, waiting, or dropping ops. Exit 1 when a
policy would refuse the run, so a script can ask before it starts.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from truepar.agents.swarm_config import load_swarm
from truepar.agents.swarm_plan import draft_plan, is_swarm_file
from truepar.cli.layout import FREE_TEXT_MIN, fits, record
from truepar.errors import UsageError
from truepar.plan.load import load_plan
from truepar.preflight import github
from truepar.preflight.budgets import BudgetCheck, ResourceCheck, check_budget, live_quotas
from truepar.units import fmt_duration as duration_text

PROVIDERS = ("github",)
_ACTION_STYLE = {"ok": "green", "reduce": "yellow", "wait": "yellow", "fail": "red"}


def budget_command(
    plan: Annotated[
        Path | None,
        typer.Option(
            "--plan",
            help="Also show what this plan (or swarm AGENTS.toml) needs and what its policies do.",
        ),
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option("--provider", help="Live budget to show: github (default without --plan)."),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print only a JSON object to stdout.")
    ] = False,
) -> int:
    """Show the live rate budget (GitHub's rate_limit) and what PLAN would need of it."""
    if provider is not None and provider not in PROVIDERS:
        raise UsageError(f"--provider {provider!r} is unknown (one of: {', '.join(PROVIDERS)})")
    loaded = None
    if plan is not None:
        loaded = draft_plan(load_swarm(plan)) if is_swarm_file(plan) else load_plan(plan)
    answers: dict[str, github.RateLimits] = {}

    def fetch(url: str | None = None, **kw: Any) -> github.RateLimits:
        key = github.api_url(url)
        if key not in answers:
            answers[key] = github.fetch_rate_limits(url, **kw)
        return answers[key]

    live = fetch() if provider == "github" or loaded is None else None
    check = check_budget(loaded, live_quotas(loaded, fetch=fetch)) if loaded is not None else None
    if json_out:
        data = {
            "provider": live.to_json() if live is not None else None,
            "plan": check.to_json() if check is not None else None,
        }
        typer.echo(json.dumps(data, indent=2))
    else:
        out = Console(highlight=False)
        for answer in answers.values():
            out.print(_live_table(answer))
        if check is not None:
            _print_plan(out, check, loaded.name if loaded else "")
    return 1 if check is not None and check.with_action("fail") else 0


def _live_table(limits: github.RateLimits) -> Table:
    who = "authenticated" if limits.authenticated else "unauthenticated: set GH_TOKEN"
    table = Table(
        title=f"GitHub rate limit — {limits.api_url} ({who})",
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
    )
    for name in ("bucket", "remaining", "limit", "used", "resets at", "in"):
        table.add_column(name, justify="left" if name in ("bucket", "resets at") else "right")
    shown = [b for b in github.MAIN_BUCKETS if b in limits.buckets] or sorted(limits.buckets)
    for name in shown:
        q = limits.buckets[name]
        at = datetime.datetime.fromtimestamp(q.reset_unix_s).strftime("%H:%M:%S")
        style = "red" if q.remaining == 0 else None
        left = q.resets_in_s(limits.fetched_unix_s)
        table.add_row(
            name, str(q.remaining), str(q.limit), str(q.used), at, duration_text(left), style=style
        )
    hidden = len(limits.buckets) - len(shown)
    if hidden:
        table.caption = f"{hidden} more buckets in --json"
    return table


def _print_plan(out: Console, check: BudgetCheck, plan_name: str) -> None:
    """What the plan needs per resource: a table where it fits, else one record each."""
    table = Table(
        title=f"Budget of plan {plan_name!r}",
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
    )
    for name in ("resource", "provider", "needs", "available", "policy", "would", "why"):
        table.add_column(
            name,
            justify="right" if name in ("needs", "available") else "left",
            no_wrap=name == "resource",
        )
    rows = [_plan_row(r) for r in check.resources]
    for row in rows:
        table.add_row(*row[:-1], escape(row[-1]))
    if not check.resources:
        table.caption = "no op uses a resource with a rate limit or a provider"
    if fits(out, table, free={"why": FREE_TEXT_MIN}) or not rows:
        out.print(table)
        return
    # Too narrow for the table (a CI log): each resource whole, then its numbers, then why.
    out.print(table.title, markup=False)
    for resource, provider, needs, available, policy, would, why in rows:
        head = Text.assemble(
            (resource, "bold"), f" · provider {provider} · policy {policy} · would "
        )
        head.append_text(Text.from_markup(would))
        record(out, head, [Text(f"needs {needs} · available {available}"), Text(why)])


def _plan_row(r: ResourceCheck) -> tuple[str, str, str, str, str, str, str]:
    needs = f"{r.need.requests:g} req" + (f", {r.need.tokens} tok" if r.need.tokens else "")
    if r.quota is not None:
        available = f"{r.quota.remaining} / {r.quota.limit}"
    else:
        available = f"paced {r.paced}" if r.paced else "—"
    would = {"ok": "run", "reduce": f"drop {len(r.dropped)} ops", "wait": "wait"}.get(
        r.action, "refuse"
    )
    if r.action == "wait":
        would = f"wait {duration_text(r.wait_s)}"
    return (
        r.resource,
        r.provider or "—",
        needs,
        available,
        r.policy if r.provider else "—",
        f"[{_ACTION_STYLE[r.action]}]{would}[/]",
        r.message,
    )
