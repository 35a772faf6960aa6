"""Hooks for watching a run as it happens (the CLI's live progress view uses them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from truepar.records import Span


class Observer:
    """Override what you need; every hook is called on the scheduler's loop, so keep it quick."""

    def run_started(self, total_ops: int) -> None:
        pass

    def op_started(self, op_id: str, attempt: int) -> None:
        pass

    def op_finished(self, span: Span) -> None:
        pass

    def op_skipped(self, op_id: str) -> None:
        pass

    def run_finished(self) -> None:
        pass


def listening(observer: Observer, hook: str) -> Callable[..., Any] | None:
    """``observer``'s bound ``hook``, or ``None`` where it is :class:`Observer`'s own no-op.

    The scheduler calls the per-op hooks on every attempt; skipping the ones nobody overrode
    saves a call each, which for instant ops is a measurable share of the engine's cost.
    """
    bound = getattr(observer, hook)
    return None if getattr(bound, "__func__", None) is getattr(Observer, hook) else bound
