"""Checks before a plan runs: what would make it unsafe (lint), and whether its live rate
budgets cover it (budgets, GitHub's quotas).

:func:`check_plan` is what every run does first — ``truepar.run(plan)`` and ``truepar run``
alike — unless told not to (``checks=False``): refuse a plan the scheduler cannot make safe
(TP004 worktree isolation asked of a plain run, TP005 a detached worktree), then check its
live budgets and apply their policy (fail, wait, or reduce the fan-out).
"""

from __future__ import annotations

from truepar.plan.models import Plan
from truepar.preflight.budgets import BudgetDecision, Preflight, preflight
from truepar.preflight.lint import Finding, lint, refuse_unsafe


def check_plan(plan: Plan) -> Preflight:
    """Refuse what cannot be made safe (:class:`~truepar.errors.PlanError`, exit 2), then the
    live budgets (:class:`~truepar.errors.BudgetError` under ``fail``): the plan to run (agents'
    budget shares filled in) and what the run must skip."""
    refuse_unsafe(plan)
    return preflight(plan)


__all__ = (
    "BudgetDecision",
    "Finding",
    "Preflight",
    "check_plan",
    "lint",
    "preflight",
    "refuse_unsafe",
)
