"""Hooks for watching a run as it happens (the CLI's live progress view uses them)."""

from __future__ import annotations

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
