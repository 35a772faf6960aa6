"""The verification tree: one scenario's measured claim, line by line, and whether it holds.

The format of the parallel-execution framework truepar grew out of, with every number measured::

    📊 PARALLEL EXECUTION VERIFICATION — mixed tool operations
    ├── Tools executed: bash ×2, grep ×3, read ×4, ls ×1 (10 ops)
    ├── Sequential time: 4.21 s (median of 5, CV 2%)
    ...
    └── State: VALIDATED (required: speedup ≥ 2)
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from rich.tree import Tree

from truepar.measure.bench import BenchReport
from truepar.measure.criteria import Validation
from truepar.plan.models import Plan, tools_used
from truepar.records import estimate_tokens
from truepar.units import fmt_bytes, fmt_ratio, fmt_s, fmt_tokens

VERDICT_STYLE = {
    "parallel": "bold green",
    "concurrent": "bold cyan",
    "serialized": "bold yellow",
    "suspect": "bold red",
}


def verification_tree(
    title: str,
    plan: Plan | Mapping[str, int],
    report: BenchReport,
    validation: Validation,
) -> Tree:
    """The tree of ``report``; ``plan`` is the plan, or its tool counts (from evidence)."""
    tree = Tree(Text(f"📊 PARALLEL EXECUTION VERIFICATION — {title}", style="bold"))
    counts = tools_used(plan.ops) if isinstance(plan, Plan) else dict(plan)
    tools = ", ".join(f"{name} ×{n}" for name, n in counts.items())
    tree.add(f"Tools executed: {tools} ({sum(counts.values())} ops)")
    base, best = report.baseline, validation.best
    if base is not None:
        tree.add(
            f"Sequential time: {fmt_s(base.wall_s)} "
            f"(median of {base.trials}, CV {base.wall_cv:.0%})"
        )
    if best is not None:
        lo, hi = best.speedup_ci
        tree.add(
            f"Parallel time: {fmt_s(best.wall_s)} ({best.backend}, {best.workers} workers, "
            f"median of {best.trials}, CV {best.wall_cv:.0%})"
        )
        tree.add(f"Improvement ratio: {best.speedup:.2f}× [95% CI {lo:.2f}–{hi:.2f}]")
        tree.add(
            f"Cores used: {best.cores_used:.2f} · work ratio "
            + fmt_ratio(best.work_ratio)
            + f" · bound efficiency {best.bound_efficiency:.2f}"
        )
        tree.add(
            f"Context usage: {fmt_bytes(best.context_bytes)} ≈ "
            f"{fmt_tokens(estimate_tokens(best.context_bytes))} tokens (estimated)"
        )
        tree.add(f"Errors: {best.errors} / {best.op_runs} op runs")
        verdict = Text("Verdict: ")
        verdict.append(best.verdict or "—", style=VERDICT_STYLE.get(best.verdict or "", ""))
        because = tree.add(verdict)
        for reason in best.reasons:
            because.add(reason)
    state = Text("State: ")
    if validation.validated:
        state.append("VALIDATED", style="bold green")
        state.append(f" (required: {validation.criteria.describe()})")
    else:
        state.append("NOT VALIDATED", style="bold red")
        state.append(f" — {'; '.join(validation.failures)}")
        state.append(f" (required: {validation.criteria.describe()})")
    tree.add(state)
    return tree
