"""Rate budgets before a run: what a plan needs of each resource, against what is left.

Two kinds of limit, which mean different things:

- A declared rate (``per_second``, ``per_minute``, ``per_hour``, ``tokens_per_minute``) *paces*.
  The scheduler's limiter holds each op until the rate allows it, so any amount of work fits;
  it only takes longer. The check reports how long the pacing needs at least, and never refuses.
- A provider's live ``remaining`` (GitHub's ``/rate_limit``) is a *hard quota* until its reset
  time: requests beyond it fail at the service. It is the only thing ``policy`` acts on, when
  the ops on the resource need more (Σ ``cost``) than is left:

  ``fail``    raise :class:`~truepar.errors.BudgetError` naming need, remaining and reset (exit 1);
  ``wait``    sleep until the reset (at most ``max_wait_s``), read the budget again, then run;
  ``reduce``  shrink the fan-out: keep ops in the graph's order while their cost fits, drop the
              rest with everything downstream of them (recorded ``skipped``, with the reason),
              and give each kept ``agent`` op an equal share of what the others leave, in its
              ``budget_share``. Parallelism is not lowered: the quota counts requests, not rate.

Every ``truepar.run`` does this first (:func:`truepar.preflight.check_plan`). By hand:
``pre = preflight(plan)``, then ``truepar.run(pre.plan, checks=False, budget=pre.decision)``.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from truepar.errors import BudgetError
from truepar.plan.graph import Graph, build_graph
from truepar.plan.models import Plan, Resource
from truepar.preflight import github
from truepar.preflight.github import Quota
from truepar.tools.base import OpBase
from truepar.units import fmt_duration as duration_text
from truepar.units import fmt_rate

Action = Literal["ok", "reduce", "wait", "fail"]
#: Seconds added to a provider's reset time before reading the budget again (clock skew).
RESET_MARGIN_S = 0.5


@dataclasses.dataclass(frozen=True)
class BudgetDecision:
    """What the pre-dispatch budget check decided, handed to ``run(..., budget=)``.

    ``skip``: ops not to run, each with the reason (their result is ``skipped``, and so is
    everything downstream of them). ``report``: the check in JSON form, kept in the trace.
    """

    skip: Mapping[str, str] = dataclasses.field(default_factory=dict)
    report: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Need:
    """What the ops on one resource ask for: Σ ``cost`` (requests) and Σ ``tokens``."""

    requests: float
    tokens: int
    ops: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ResourceCheck:
    """One resource: its need, what is available, and what the policy does about it."""

    resource: str
    provider: str | None
    policy: str
    need: Need
    quota: Quota | None
    #: The declared rates, in words ("10/s, 5000/h"), and the least time they need for ``need``.
    paced: str | None
    pacing_s: float
    action: Action
    message: str
    dropped: Mapping[str, str] = dataclasses.field(default_factory=dict)
    shares: Mapping[str, float] = dataclasses.field(default_factory=dict)
    wait_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "resource": self.resource,
            "provider": self.provider,
            "policy": self.policy,
            "required_requests": self.need.requests,
            "required_tokens": self.need.tokens,
            "ops": len(self.need.ops),
            "remaining": self.quota.remaining if self.quota else None,
            "limit": self.quota.limit if self.quota else None,
            "reset_unix_s": self.quota.reset_unix_s if self.quota else None,
            "paced": self.paced,
            "pacing_s": self.pacing_s,
            "action": self.action,
            "message": self.message,
            "dropped": dict(self.dropped),
            "shares": dict(self.shares),
            "wait_s": self.wait_s,
        }


@dataclasses.dataclass(frozen=True)
class BudgetCheck:
    checked_unix_s: float
    resources: tuple[ResourceCheck, ...]

    def with_action(self, action: Action) -> list[ResourceCheck]:
        return [r for r in self.resources if r.action == action]

    @property
    def dropped(self) -> dict[str, str]:
        return {k: v for r in self.resources for k, v in r.dropped.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "checked_unix_s": self.checked_unix_s,
            "resources": {r.resource: r.to_json() for r in self.resources},
        }


@dataclasses.dataclass(frozen=True)
class Preflight:
    """The plan to run (agents' shares filled in), the check, and what ``run`` must skip."""

    plan: Plan
    check: BudgetCheck
    #: ``None`` when no op uses a resource with a budget: the trace then stays as it was.
    decision: BudgetDecision | None
    waited_s: float = 0.0


def needs(plan: Plan, excluded: frozenset[str] = frozenset()) -> dict[str, Need]:
    """Σ cost and Σ tokens of the ops on each resource (those in ``excluded`` left out)."""
    per: dict[str, list[OpBase]] = {}
    for op in plan.ops:
        if op.resource is not None and op.id not in excluded:
            per.setdefault(op.resource, []).append(op)
    return {
        name: Need(
            sum(op.cost for op in ops), sum(op.tokens for op in ops), tuple(o.id for o in ops)
        )
        for name, ops in per.items()
    }


def live_quotas(
    plan: Plan,
    *,
    env: Mapping[str, str] | None = None,
    fetch: Callable[..., github.RateLimits] = github.fetch_rate_limits,
) -> dict[str, Quota]:
    """The live quota of every resource with a ``provider`` that an op uses, by resource name.

    One ``/rate_limit`` request per API URL, however many resources name it.
    """
    used = {op.resource for op in plan.ops}
    answers: dict[str, github.RateLimits] = {}
    quotas: dict[str, Quota] = {}
    for name, resource in sorted(plan.resources.items()):
        if resource.provider is None or name not in used:
            continue
        url = github.api_url(resource.provider_url, env)
        if url not in answers:
            answers[url] = fetch(url, env=env)
        quotas[name] = answers[url].quota(resource.provider.partition(":")[2])
    return quotas


def pacing_s(resource: Resource, need: Need) -> float:
    """The least time the declared rates need to let ``need`` through (bursts included)."""
    least = 0.0
    requests = math.ceil(need.requests)
    for limit, ms in resource.request_windows():
        least = max(least, (math.ceil(requests / limit) - 1) * ms / 1000)
    tpm = resource.tokens_per_minute
    if tpm and need.tokens:
        block = resource.token_block()
        least = max(least, (math.ceil(math.ceil(need.tokens / block) / (tpm // block)) - 1) * 60)
    return max(least, 0.0)


def check_budget(
    plan: Plan, quotas: Mapping[str, Quota], *, now_unix_s: float | None = None
) -> BudgetCheck:
    """Decide, without side effects, what each resource's policy does with these quotas.

    ``reduce`` resources are settled first, in name order, so that the ops they drop no longer
    count against the others.
    """
    now = time.time() if now_unix_s is None else now_unix_s
    graph = build_graph(plan)
    dropped: dict[str, str] = {}
    checks: dict[str, ResourceCheck] = {}
    used = needs(plan)
    order = sorted(used, key=lambda n: (plan.resources[n].policy != "reduce", n))
    for name in order:
        resource = plan.resources[name]
        if not resource.has_budget:
            continue
        need = needs(plan, frozenset(dropped)).get(name, Need(0, 0, ()))
        quota = quotas.get(name)
        paced = _paced(resource)
        base = ResourceCheck(
            resource=name,
            provider=resource.provider,
            policy=resource.policy,
            need=need,
            quota=quota,
            paced=paced,
            pacing_s=pacing_s(resource, need),
            action="ok",
            message="",
        )
        if quota is None or need.requests <= quota.remaining:
            checks[name] = dataclasses.replace(base, message=_fits(base, quota))
        elif resource.policy == "reduce":
            kept, drops, shares = _reduce(plan, graph, name, quota.remaining, dropped)
            dropped.update(drops)
            message = (
                f"{name} ({quota.provider}): needs {need.requests:g} requests, "
                f"{quota.remaining} left: keeps {len(kept)} of {len(need.ops)} ops, "
                f"drops {len(need.ops) - len(kept)}"
            )
            checks[name] = dataclasses.replace(
                base, action="reduce", message=message, dropped=drops, shares=shares
            )
        else:
            checks[name] = _wait_or_fail(base, resource, quota, now)
    ordered = tuple(checks[n] for n in sorted(checks))
    return BudgetCheck(checked_unix_s=now, resources=ordered)


def _paced(resource: Resource) -> str | None:
    parts = [fmt_rate(limit, ms) for limit, ms in resource.request_windows()]
    if resource.tokens_per_minute:
        parts.append(f"{resource.tokens_per_minute} tokens/min")
    return ", ".join(parts) or None


def _fits(check: ResourceCheck, quota: Quota | None) -> str:
    have = f"{quota.remaining} of {quota.limit} left" if quota else "no hard quota"
    pacing = f"; pacing ({check.paced}) takes at least {duration_text(check.pacing_s)}"
    return f"{check.resource}: needs {check.need.requests:g} requests, {have}" + (
        pacing if check.paced and check.pacing_s > 0 else ""
    )


def _wait_or_fail(
    check: ResourceCheck, resource: Resource, quota: Quota, now: float
) -> ResourceCheck:
    name, need = check.resource, check.need.requests
    short = (
        f"resource {name!r} ({quota.provider}): the run needs {need:g} requests, "
        f"{quota.remaining} of {quota.limit} are left until {_when(quota.reset_unix_s, now)}"
    )
    if resource.policy == "fail":
        hint = 'set policy = "wait" or "reduce", or run fewer ops'
        return dataclasses.replace(check, action="fail", message=f"{short}; {hint}")
    if need > quota.limit:
        return dataclasses.replace(
            check,
            action="fail",
            message=f"{short}; more than the {quota.limit} a full window allows, so waiting "
            'cannot help: use policy = "reduce"',
        )
    wait = quota.resets_in_s(now) + RESET_MARGIN_S
    if wait > resource.max_wait_s:
        return dataclasses.replace(
            check,
            action="fail",
            message=f"{short}; that is longer than its max_wait_s = {resource.max_wait_s:g}",
        )
    return dataclasses.replace(check, action="wait", message=short, wait_s=wait)


def _reduce(
    plan: Plan, graph: Graph, name: str, available: int, dropped: Mapping[str, str]
) -> tuple[list[OpBase], dict[str, str], dict[str, float]]:
    """First fit in the graph's order; a dropped op takes everything downstream with it."""
    left = float(available)
    kept: list[OpBase] = []
    drops: dict[str, str] = {}
    for i in graph.order:
        op = plan.ops[i]
        if op.resource != name or op.id in dropped or op.id in drops:
            continue
        if op.cost <= left:
            left -= op.cost
            kept.append(op)
            continue
        drops[op.id] = (
            f"dropped by the budget: resource {name!r} had {available} requests left, "
            f"not enough for this op's {op.cost:g} after the ops before it"
        )
        stack = list(graph.succs[i])
        while stack:
            s = stack.pop()
            succ = plan.ops[s].id
            if succ not in drops and succ not in dropped:
                drops[succ] = f"dropped by the budget: it needs {op.id!r}, which was dropped"
                stack.extend(graph.succs[s])
    agents = [op for op in kept if "budget_share" in type(op).model_fields]
    others = sum(op.cost for op in kept if op not in agents)
    share = max(0.0, available - others) / len(agents) if agents else 0.0
    return kept, drops, {op.id: share for op in agents}


def preflight(
    plan: Plan,
    *,
    quotas: Callable[[Plan], Mapping[str, Quota]] = live_quotas,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    on_wait: Callable[[ResourceCheck], None] | None = None,
) -> Preflight:
    """Check the plan's budgets and apply the policies; see the module docstring.

    Raises :class:`BudgetError` for ``fail``, for a ``wait`` longer than ``max_wait_s``, and
    when the budget is still short after waiting. ``on_wait`` is told before each sleep
    (default: one line on stderr).
    """
    plan.check()
    if not any(
        op.resource is not None and plan.resources[op.resource].has_budget for op in plan.ops
    ):
        return Preflight(plan, BudgetCheck(now(), ()), None)
    check = check_budget(plan, quotas(plan), now_unix_s=now())
    waited = 0.0
    if not check.with_action("fail") and check.with_action("wait"):
        longest = max(check.with_action("wait"), key=lambda r: r.wait_s)
        (on_wait or _say_wait)(longest)
        sleep(longest.wait_s)
        waited = longest.wait_s
        check = check_budget(plan, quotas(plan), now_unix_s=now())
        still = check.with_action("wait")
        if still:
            raise BudgetError(
                f"{still[0].message}; still short after waiting {duration_text(waited)}"
            )
    for r in check.with_action("fail"):
        raise BudgetError(r.message)
    reduced = _with_shares(plan, check)
    report = {**check.to_json(), "waited_s": waited}
    return Preflight(reduced, check, BudgetDecision(skip=check.dropped, report=report), waited)


def _with_shares(plan: Plan, check: BudgetCheck) -> Plan:
    """Each kept agent op gets ``budget_share[resource] = share`` (a copy; the plan is frozen)."""
    shares: dict[str, dict[str, float]] = {}
    for r in check.resources:
        for op_id, share in r.shares.items():
            shares.setdefault(op_id, {})[r.resource] = share
    if not shares:
        return plan
    ops = [
        op.model_copy(
            update={"budget_share": {**(getattr(op, "budget_share", None) or {}), **shares[op.id]}}
        )
        if op.id in shares
        else op
        for op in plan.ops
    ]
    return plan.model_copy(update={"ops": tuple(ops)})


def _say_wait(check: ResourceCheck) -> None:
    print(f"truepar: waiting {duration_text(check.wait_s)}: {check.message}", file=sys.stderr)


def _when(unix_s: float, now: float) -> str:
    at = datetime.datetime.fromtimestamp(unix_s, tz=datetime.UTC).strftime("%H:%M:%S UTC")
    return f"{at} (in {duration_text(max(0.0, unix_s - now))})"
