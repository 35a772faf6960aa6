"""Observer hooks: the scheduler calls the ones a watcher overrides, and skips the no-ops."""

from __future__ import annotations

from pathlib import Path

import truepar
from helpers.plans import make_plan
from truepar import SleepOp
from truepar.engine.observer import Observer, listening
from truepar.records import Span


class Finishes(Observer):
    def __init__(self) -> None:
        self.spans: list[Span] = []

    def op_finished(self, span: Span) -> None:
        self.spans.append(span)


def test_listening_skips_only_the_base_no_ops() -> None:
    watcher = Finishes()
    assert listening(watcher, "op_started") is None
    assert listening(watcher, "op_finished") == watcher.op_finished
    started: list[tuple[str, int]] = []
    watcher.op_started = lambda op_id, attempt: started.append((op_id, attempt))  # type: ignore[method-assign]
    hook = listening(watcher, "op_started")
    assert hook is not None
    hook("a", 1)
    assert started == [("a", 1)]


def test_a_watcher_of_one_hook_sees_every_attempt(tmp_path: Path) -> None:
    watcher = Finishes()
    ops = [SleepOp(id=f"s{k}", seconds=0.01 * k) for k in range(20)]
    trace = truepar.run(make_plan(tmp_path, ops, backend="fake", workers=3), observer=watcher)
    assert sorted(s.op_id for s in watcher.spans) == sorted(op.id for op in ops)
    assert set(watcher.spans) == set(trace.spans)
