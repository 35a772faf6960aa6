"""The context budget: how many tokens of results a run may bring back to the agent.

An agent reads every op's result into its context window, which is finite. With
``defaults.context_tokens`` set, the scheduler adds up each op's final result (its span's
``tokens_out``, ``ceil(bytes / 4)``) as it arrives, and acts once at each threshold:

- ``lower_at`` (70 %): the worker cap halves, so fewer results land before the next decision;
- ``truncate_at`` (90 %): later results are cut to their op's ``max_output_tokens`` (ops that
  declare none are kept whole); the span says ``truncated``;
- ``stop_at`` (95 %): nothing more starts; ops already running finish, the rest are ``skipped``
  and the trace gets a handoff: what finished, what remains, so another run can take over.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from truepar.backends.base import Outcome, result_tokens
from truepar.plan.models import Plan
from truepar.records import BYTES_PER_TOKEN, OpResult, Status
from truepar.tools.base import OpBase

LOWER, TRUNCATE, STOP = "lower", "truncate", "stop"


class ContextBudget:
    """Counts result tokens against the budget and says which thresholds were just crossed."""

    def __init__(self, tokens: int, *, lower_at: float, truncate_at: float, stop_at: float) -> None:
        self.tokens = tokens
        self.thresholds = ((LOWER, lower_at), (TRUNCATE, truncate_at), (STOP, stop_at))
        self.used = 0
        self.crossed: set[str] = set()
        self.events: list[dict[str, Any]] = []

    @classmethod
    def from_plan(cls, plan: Plan) -> ContextBudget | None:
        d = plan.defaults
        if d.context_tokens is None:
            return None
        return cls(
            d.context_tokens, lower_at=d.lower_at, truncate_at=d.truncate_at, stop_at=d.stop_at
        )

    @property
    def truncating(self) -> bool:
        return TRUNCATE in self.crossed

    def account(self, op: OpBase, outcome: Outcome) -> tuple[Outcome, bool, list[str]]:
        """Count one final result: ``(outcome, truncated, thresholds crossed just now)``.

        Past ``truncate_at`` a result longer than the op's ``max_output_tokens`` comes back cut
        to it, and only what is kept counts.
        """
        tokens = result_tokens(outcome)
        cap = op.max_output_tokens
        truncated = self.truncating and cap is not None and tokens > cap
        if truncated:
            assert cap is not None
            value = truncate_value(outcome.value, cap * BYTES_PER_TOKEN)
            summary = f"{outcome.summary} [cut to {cap} tokens by the context budget]".strip()
            outcome = dataclasses.replace(outcome, value=value, summary=summary)
            tokens = cap
        self.used += tokens
        crossed = []
        for name, fraction in self.thresholds:
            if name not in self.crossed and self.used >= fraction * self.tokens:
                self.crossed.add(name)
                crossed.append(name)
        return outcome, truncated, crossed

    def event(self, action: str, op_id: str, **details: Any) -> None:
        self.events.append(
            {"action": action, "after_op": op_id, "used_tokens": self.used, **details}
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "budget_tokens": self.tokens,
            "used_tokens": self.used,
            "used_fraction": self.used / self.tokens,
            "thresholds": dict(self.thresholds),
            "events": list(self.events),
        }

    def handoff(
        self, ops: Iterable[OpBase], results: Mapping[str, OpResult], not_run: set[str]
    ) -> dict[str, Any]:
        """What a next run needs: what finished (with its one-line summary) and what remains."""
        finished: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        remaining: list[dict[str, Any]] = []
        for op in ops:
            result = results.get(op.id)
            if result is None or op.id in not_run:
                remaining.append({"id": op.id, "tool": op.tool, "after": list(op.after)})
            elif result.status is Status.OK:
                finished.append({"id": op.id, "summary": result.summary})
            else:
                failed.append({"id": op.id, "status": result.status.value, "error": result.error})
        text = (
            f"Context budget reached: {self.used} of {self.tokens} tokens "
            f"({self.used / self.tokens:.0%}). {len(finished)} ops finished, {len(failed)} did "
            f"not succeed, {len(remaining)} not run"
            + (f": {', '.join(r['id'] for r in remaining)}." if remaining else ".")
        )
        return {
            "summary": text,
            "used_tokens": self.used,
            "budget_tokens": self.tokens,
            "finished": finished,
            "failed": failed,
            "remaining": remaining,
        }


def truncate_value(value: Any, max_bytes: int) -> Any:
    """``value`` with its text cut to ``max_bytes`` UTF-8 bytes in all, first come first kept.

    Strings and bytes are cut; mappings, lists and tuples are walked in order, each text in them
    getting what the ones before it left; anything else is kept as it is.
    """
    return _cut(value, [max_bytes])


def _cut(value: Any, left: list[int]) -> Any:
    if isinstance(value, str):
        data = value.encode()
        keep = data[: max(left[0], 0)]
        left[0] -= len(keep)
        return keep.decode("utf-8", "ignore")
    if isinstance(value, bytes):
        keep_bytes = value[: max(left[0], 0)]
        left[0] -= len(keep_bytes)
        return keep_bytes
    if isinstance(value, Mapping):
        return {k: _cut(v, left) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut(v, left) for v in value]
    if isinstance(value, tuple):
        return tuple(_cut(v, left) for v in value)
    return value
