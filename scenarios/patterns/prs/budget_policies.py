"""What ``reduce``, ``wait`` and ``fail`` do when a provider's quota is too small, offline
(docs/parallel-patterns.md, "Budget pre-checks").

    python scenarios/patterns/prs/budget_policies.py

A live quota comes from the provider (GitHub's ``/rate_limit``), which needs the network. Here
the same decision function that ``truepar swarm`` and ``truepar run`` use before dispatch,
:func:`truepar.preflight.budgets.check_budget`, is given a quota by hand: 5 requests left of 60,
resetting in 10 minutes, for the four agents of budget.toml, which need 2 each (8).
"""

from __future__ import annotations

from pathlib import Path

import truepar
from truepar.preflight.budgets import check_budget
from truepar.preflight.github import Quota

NOW = 1_700_000_000.0  # a fixed "now", so the output is the same every time
QUOTA = Quota(provider="github:core", limit=60, remaining=5, used=55, reset_unix_s=NOW + 600)


def main() -> int:
    plan = truepar.load_plan(Path(__file__).with_name("budget.toml"))
    api = plan.resources["api"]
    for policy in ("reduce", "wait", "fail"):
        resources = {**plan.resources, "api": api.model_copy(update={"policy": policy})}
        variant = plan.model_copy(update={"resources": resources})
        r = check_budget(variant, {"api": QUOTA}, now_unix_s=NOW).resources[0]
        print(f'policy = "{policy}": {r.action}')
        print(f"  {r.message}")
        for op_id, why in r.dropped.items():
            print(f"  skipped {op_id}: {why}")
        for op_id, share in r.shares.items():
            print(f"  {op_id} runs with TRUEPAR_BUDGET_API={share:g}")
        if r.action == "wait":
            print(f"  sleeps {r.wait_s:g} s, reads the quota again, then runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
