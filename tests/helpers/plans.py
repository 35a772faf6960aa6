"""Plans and traces for tests: a checked plan from ops, fresh importable modules, overlaps."""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import truepar

#: The backends that do real work; ``fake`` has its own tests (virtual clock).
REAL_BACKENDS = ("sequential", "async", "threads", "processes")

_module_ids = itertools.count()


def make_plan(
    base_dir: Path,
    ops: Iterable[truepar.OpBase],
    *,
    name: str = "test",
    backend: str = "threads",
    workers: int = 4,
    resources: dict[str, truepar.Resource] | None = None,
    **defaults: Any,
) -> truepar.Plan:
    """A checked plan of ``ops`` whose root and import folder is ``base_dir``."""
    plan = truepar.Plan(
        name=name,
        ops=list(ops),
        defaults=truepar.Defaults(backend=backend, workers=workers, **defaults),
        resources=resources or {},
        base_dir=base_dir,
    )
    plan.check()
    return plan


def overlaps(spans: Sequence[truepar.Span] | truepar.RunTrace) -> int:
    """The largest number of spans in flight at any one instant.

    Spans are half-open ``[start, end)``: one that starts exactly when another ends does not
    overlap it. Accepts a trace (all its spans) or a sequence of spans.
    """
    items = spans.spans if isinstance(spans, truepar.RunTrace) else spans
    events = []
    for s in items:
        if s.end_ns > s.start_ns:
            events.append((s.start_ns, 1))
            events.append((s.end_ns, -1))
    events.sort()  # at equal times, -1 (an end) sorts before +1 (a start)
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


def write_module(base_dir: Path, source: str) -> str:
    """Write ``source`` as a fresh module in ``base_dir`` and return its (unique) name.

    Each call gets a new module name, so the import cache of one test never serves another.
    Use it as ``call=f"{name}:function"`` in a plan whose ``base_dir`` is ``base_dir``.
    """
    name = f"tp_mod_{next(_module_ids)}_{abs(hash(str(base_dir))) % 10**8}"
    (base_dir / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return name


def by_id(trace: truepar.RunTrace) -> dict[str, truepar.Span]:
    """The last span of each op."""
    out: dict[str, truepar.Span] = {}
    for s in trace.spans:
        if s.op_id not in out or s.attempt > out[s.op_id].attempt:
            out[s.op_id] = s
    return out


def statuses(trace: truepar.RunTrace) -> dict[str, str]:
    return {k: r.status.value for k, r in trace.results.items()}
