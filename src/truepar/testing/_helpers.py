"""What the conformance suite needs to build plans and read traces; nothing from a project's tests.

Plain functions, no fixtures: a checked plan in a test's folder, fresh importable modules, the
largest overlap of spans, the last span of each op, the status of each op, and whether a process
is still alive.
"""

from __future__ import annotations

import asyncio
import itertools
import textwrap
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import psutil

from truepar.backends import create_backend
from truepar.plan import Defaults, Plan, Resource
from truepar.records import RunTrace, Span
from truepar.tools import OpBase

_module_ids = itertools.count()


def make_plan(
    base_dir: Path,
    ops: Iterable[OpBase],
    *,
    backend: str = "threads",
    name: str = "test",
    workers: int = 4,
    resources: dict[str, Resource] | None = None,
    **defaults: Any,
) -> Plan:
    """A checked plan of ``ops`` on ``backend`` whose root and import folder is ``base_dir``."""
    plan = Plan(
        name=name,
        ops=list(ops),
        defaults=Defaults(backend=backend, workers=workers, **defaults),
        resources=resources or {},
        base_dir=base_dir,
    )
    plan.check()
    return plan


def overlaps(spans: Sequence[Span] | RunTrace) -> int:
    """The largest number of spans in flight at any one instant.

    Spans are half-open ``[start, end)``: one that starts exactly when another ends does not
    overlap it. Accepts a trace (all its spans) or a sequence of spans.
    """
    items = spans.spans if isinstance(spans, RunTrace) else spans
    events: list[tuple[int, int]] = []
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
    name = f"tp_conformance_{next(_module_ids)}_{abs(hash(str(base_dir))) % 10**8}"
    (base_dir / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return name


def by_id(trace: RunTrace) -> dict[str, Span]:
    """The last span of each op."""
    out: dict[str, Span] = {}
    for s in trace.spans:
        if s.op_id not in out or s.attempt > out[s.op_id].attempt:
            out[s.op_id] = s
    return out


def statuses(trace: RunTrace) -> dict[str, str]:
    """Each op's final status, as its word."""
    return {k: r.status.value for k, r in trace.results.items()}


def alive(pid: int) -> bool:
    """True if ``pid`` is a running (not zombie) process."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def wait_gone(pid: int, timeout_s: float = 2.0) -> bool:
    """Wait up to ``timeout_s`` for ``pid`` to end; True if it did."""
    deadline = time.monotonic() + timeout_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not alive(pid)


def max_workers(backend: str, workers: int) -> int:
    """How many ops ``backend`` runs at once when asked for ``workers`` — read from a fresh
    instance (closed again), since that is the backend's own word, not its name's."""
    instance = create_backend(backend, workers)
    try:
        return instance.max_workers
    finally:
        asyncio.run(instance.aclose())
