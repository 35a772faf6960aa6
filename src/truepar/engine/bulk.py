"""``truepar.map(fn, items)``: many small Python calls, chunked, with a span for every call.

Dispatching calls one by one costs microseconds each (a thread hand-off, a pickle round trip),
which dwarfs a small function. So items go to workers in chunks — each chunk one op of an
ordinary plan, run by the ordinary scheduler on any backend — and inside a chunk a tight loop
stamps each call's start and end into two integer arrays: 16 bytes per call instead of one
object, so the spans are there without costing what they measure.
"""

from __future__ import annotations

import array
import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from truepar.backends.invoke import describe_error
from truepar.engine.environment import environment
from truepar.engine.run import check_workers, run
from truepar.errors import OpError, UsageError
from truepar.plan.models import Defaults, Plan
from truepar.records import RunStatus, RunTotals, RunTrace, Status
from truepar.tools.python import PythonOp

T = TypeVar("T")
R = TypeVar("R")


class _Chunk(tuple):  # type: ignore[type-arg]
    """A chunk's (values, starts, ends, errors), with a repr that does not walk the values."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{len(self[0])} calls, {len(self[3])} raised>"


def _run_chunk(fn: Callable[[Any], Any], items: Sequence[Any]) -> _Chunk:
    """Call ``fn`` on each item, stamping start and end (monotonic ns) of every call."""
    values: list[Any] = [None] * len(items)
    starts = array.array("q", bytes(8 * len(items)))
    ends = array.array("q", bytes(8 * len(items)))
    errors: list[tuple[int, str]] = []
    clock = time.monotonic_ns
    for i, item in enumerate(items):
        starts[i] = clock()
        try:
            values[i] = fn(item)
        except Exception as exc:
            errors.append((i, describe_error(exc)))
        ends[i] = clock()
    return _Chunk((values, starts, ends, errors))


@dataclasses.dataclass(frozen=True)
class MapResult:
    """The values in item order, each call's span (compactly), and the chunks' run trace."""

    values: list[Any]
    #: Start and end of call ``i`` (monotonic ns, the same clock as the trace's spans).
    start_ns: array.array[int]
    end_ns: array.array[int]
    #: Which chunk (op ``chunk-K`` in ``trace``) ran item ``i``: items are in chunk order.
    chunk_bounds: tuple[tuple[int, int], ...]
    #: ``(item index, error)`` for every call that raised.
    errors: tuple[tuple[int, str], ...]
    trace: RunTrace

    def __len__(self) -> int:
        return len(self.values)

    def duration_s(self, i: int) -> float:
        return (self.end_ns[i] - self.start_ns[i]) / 1e9


def map_calls(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    backend: str = "threads",
    workers: int = 4,
    chunksize: int | None = None,
    raise_errors: bool = True,
) -> MapResult:
    """Call ``fn(item)`` for every item on a backend; see the module docstring.

    ``chunksize`` defaults to about four chunks per worker. With ``raise_errors`` (the default)
    a call that raised makes the whole map raise :class:`OpError` after every call has run;
    otherwise its value is ``None`` and its error is in ``errors``.
    """
    seq = items if isinstance(items, Sequence) else list(items)
    n = len(seq)
    check_workers(workers)
    if chunksize is not None and chunksize < 1:
        raise UsageError(f"chunksize must be at least 1, not {chunksize}")
    size = chunksize or max(1, math.ceil(n / (workers * 4)))
    bounds = tuple((lo, min(n, lo + size)) for lo in range(0, n, size))
    ops = [
        PythonOp(id=f"chunk-{k}", call=_run_chunk, args=(fn, seq[lo:hi]))
        for k, (lo, hi) in enumerate(bounds)
    ]
    values: list[Any] = [None] * n
    starts = array.array("q", bytes(8 * n))
    ends = array.array("q", bytes(8 * n))
    errors: list[tuple[int, str]] = []
    if not ops:
        empty = Plan(name="map", ops=(), defaults=Defaults(backend=backend, workers=workers))
        return MapResult(values, starts, ends, (), (), _empty_trace(empty, backend, workers))
    plan = Plan(
        name=f"map {getattr(fn, '__qualname__', 'fn')}",
        ops=ops,
        defaults=Defaults(backend=backend, workers=workers),
    )
    trace = run(plan, checks=False)  # plain callables of our own: nothing to check
    for (lo, hi), op in zip(bounds, ops, strict=True):
        result = trace.results[op.id]
        if result.status is not Status.OK:
            raise OpError(
                f"map chunk of items {lo}..{hi - 1} {result.status.value}: {result.error}"
            )
        chunk_values, chunk_starts, chunk_ends, chunk_errors = result.value
        values[lo:hi] = chunk_values
        starts[lo:hi] = chunk_starts
        ends[lo:hi] = chunk_ends
        errors.extend((lo + i, e) for i, e in chunk_errors)
    if errors and raise_errors:
        i, first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise OpError(f"map: call on item {i} raised {first}{more}")
    return MapResult(values, starts, ends, bounds, tuple(errors), trace)


def _empty_trace(plan: Plan, backend: str, workers: int) -> RunTrace:

    now = time.monotonic_ns()
    return RunTrace(
        plan.name,
        backend,
        workers,
        RunStatus.OK,
        time.time(),
        now,
        now,
        (),
        {},
        RunTotals(0.0, 0.0, 0.0, 0, 0, 0, 0, 0),
        environment(),
    )
