"""Adaptive resources: a concurrency cap that backs off when the server throttles, and recovers.

A resource with ``adaptive = true`` starts at its ``max_concurrent``. The rule is AIMD, the one
TCP uses for its congestion window:

- **decrease**: an attempt on the resource that got a 429 or 503 (its outcome's ``throttled``,
  whether the tool then waited and succeeded or not) halves the limit, rounding down, never
  below 1 — once per window: an attempt dispatched *before* the last decrease does not halve it
  again (it was sent under the old limit, which that decrease already answered);
- **increase**: each time ``limit`` attempts in a row (the limit's current value: one full
  window) succeed without a 429/503, the limit rises by 1, up to ``max_concurrent``;
- a throttled attempt restarts that count; an attempt that fails or times out for another
  reason changes nothing.

Ops already running when the limit drops finish; only new dispatches wait. The scheduler asks
:meth:`AdaptiveLimits.observe` after each attempt of an op on an adaptive resource — plans
without one never reach this module — and every change is kept as an event for the trace.
"""

from __future__ import annotations

from typing import Any

from truepar.backends.base import Outcome
from truepar.plan.models import Plan
from truepar.records import Status
from truepar.tools.base import OpBase


class AdaptiveLimit:
    """One adaptive resource's current limit, its recovery count, and what it did when."""

    __slots__ = ("ceiling", "clean", "cut_ns", "events", "limit", "lowest", "throttled")

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.limit = ceiling
        self.lowest = ceiling
        #: Successful unthrottled attempts in a row since the last change.
        self.clean = 0
        #: When the limit last decreased (scheduler clock), if it has.
        self.cut_ns: int | None = None
        #: Attempts that got a 429/503.
        self.throttled = 0
        self.events: list[dict[str, Any]] = []

    def observe(
        self, op_id: str, attempt: int, throttled: int, ok: bool, dispatched_ns: int, now_ns: int
    ) -> int | None:
        """Count one finished attempt; the new limit if it changed, else ``None``."""
        if throttled:
            self.throttled += 1
            self.clean = 0
            if self.cut_ns is not None and dispatched_ns < self.cut_ns:
                return None  # sent under the old limit: that decrease already answered it
            if self.limit == 1:
                return None
            return self._change("decrease", max(1, self.limit // 2), op_id, attempt, now_ns)
        if not ok or self.limit >= self.ceiling:
            return None
        self.clean += 1
        if self.clean < self.limit:
            return None
        return self._change("increase", self.limit + 1, op_id, attempt, now_ns)

    def _change(self, action: str, limit: int, op_id: str, attempt: int, now_ns: int) -> int:
        self.events.append(
            {
                "action": action,
                "after_op": op_id,
                "attempt": attempt,
                "at_ns": now_ns,
                "limit_before": self.limit,
                "limit": limit,
            }
        )
        if action == "decrease":
            self.cut_ns = now_ns
        self.limit, self.clean = limit, 0
        self.lowest = min(self.lowest, limit)
        return limit

    def to_json(self) -> dict[str, Any]:
        return {
            "max_concurrent": self.ceiling,
            "final_limit": self.limit,
            "lowest_limit": self.lowest,
            "throttled_attempts": self.throttled,
            "events": list(self.events),
        }


class AdaptiveLimits:
    """The adaptive resources of one run, by name."""

    def __init__(self, limits: dict[str, AdaptiveLimit]) -> None:
        self.limits = limits

    @classmethod
    def from_plan(cls, plan: Plan) -> AdaptiveLimits | None:
        """``None`` when no resource adapts: the scheduler then skips every adaptive step."""
        limits = {
            name: AdaptiveLimit(r.max_concurrent)
            for name, r in plan.resources.items()
            if r.adaptive and r.max_concurrent is not None
        }
        return cls(limits) if limits else None

    def observe(
        self,
        op: OpBase,
        attempt: int,
        outcome: Outcome | None,
        status: Status,
        dispatched_ns: int,
        now_ns: int,
    ) -> int | None:
        """Count one finished attempt of ``op``; its resource's new limit if it changed."""
        limit = self.limits.get(op.resource) if op.resource is not None else None
        if limit is None or outcome is None:
            return None
        ok = status is Status.OK
        return limit.observe(op.id, attempt, outcome.throttled, ok, dispatched_ns, now_ns)

    def waiting(self, resource: str, plain: str) -> str:
        """Why an op waits for ``resource``, in words: its adaptive limit, when it has one."""
        limit = self.limits.get(resource)
        if limit is None:
            return plain
        return (
            f"resource {resource} (adaptive limit {limit.limit} of max_concurrent {limit.ceiling})"
        )

    def to_json(self) -> dict[str, Any]:
        return {name: limit.to_json() for name, limit in self.limits.items()}
