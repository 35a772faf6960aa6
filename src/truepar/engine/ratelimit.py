"""Request and token rate limits, enforced at dispatch with pyrate-limiter.

Each resource with ``per_second``/``per_minute``/``per_hour`` or ``tokens_per_minute`` gets a
:class:`RateGate`. The scheduler asks it right before it would launch an op; the gate answers
"go" (and counts the op) or "not before N seconds", and the scheduler parks the op on a timer:
nothing sleeps, and ops of other resources go on meanwhile.

The counting is pyrate-limiter's sliding-window log, so no window of the limit's length ever
holds more than the limit — unlike a token bucket, which lets up to twice through across a
refill. We use its buckets without its ``Limiter``, whose waits sleep: ``put`` answers at once
and ``waiting`` says how long, and every item carries our own timestamp, which is what lets the
fake backend's virtual clock drive a limit. A resource with ``limiter_file`` keeps its log in
SQLite behind a file lock (pyrate-limiter's ``SQLiteBucket``), on the wall clock, so that every
process naming the same file and resource shares one limit.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from truepar.errors import InternalError, UsageError
from truepar.plan.models import Plan, Resource
from truepar.tools.base import OpBase
from truepar.units import fmt_rate

if TYPE_CHECKING:  # imported when a plan has a rate limit: most runs never pay for it
    from pyrate_limiter import AbstractBucket, Rate

#: Puts between two clean-ups of items that have left every window.
_LEAK_EVERY = 64


class _Counter:
    """One pyrate-limiter bucket and the clock its items are stamped with."""

    def __init__(
        self,
        bucket: AbstractBucket,
        name: str,
        now_ms: Callable[[], int],
        lock: AbstractContextManager[object] | None = None,
    ) -> None:
        from pyrate_limiter import RateItem  # noqa: PLC0415 - only plans with a rate limit pay for it

        self.item = RateItem
        self.bucket = bucket
        self.name = name
        self.now_ms = now_ms
        #: A shared log's file lock, held from the timestamp to the insert: taken before it, a
        #: stamp would be as old as the wait for the other process, and the op counted earlier
        #: than it goes. The lock is reentrant, so the bucket's own ``put`` takes it again.
        self.lock = lock if lock is not None else contextlib.nullcontext()
        self._puts = 0

    def take(self, weight: int) -> int:
        """Count ``weight`` now and return 0, or return the milliseconds until it would fit."""
        with self.lock:
            return self._take(weight)

    def _take(self, weight: int) -> int:
        now = self.now_ms()
        item = self.item(self.name, now, weight)
        if self.bucket.put(item):
            self._puts += 1
            if self._puts % _LEAK_EVERY == 0:
                self.bucket.leak(now)
            return 0
        wait = self.bucket.waiting(item)
        if not isinstance(wait, int) or wait < 0:
            # Plan.check refuses a weight larger than a whole window, the only way to get -1.
            raise InternalError(f"rate limiter of {self.name!r} cannot ever fit weight {weight}")
        return max(wait, 1)

    def close(self) -> None:
        self.bucket.close()


class RateGate:
    """The rate limits of one resource: ask :meth:`acquire` right before launching an op."""

    def __init__(
        self,
        name: str,
        resource: Resource,
        *,
        now_ms: Callable[[], int],
        shared_file: Path | None = None,
    ) -> None:
        from pyrate_limiter import (  # noqa: PLC0415 - only plans with a rate limit pay for it
            InMemoryBucket,
            Rate,
            SQLiteBucket,
        )

        self.name = name
        windows = resource.request_windows()
        self.block = resource.token_block()
        parts = [fmt_rate(limit, ms) for limit, ms in windows]
        if resource.tokens_per_minute is not None:
            parts.append(f"{resource.tokens_per_minute} tokens/min")
        self.description = ", ".join(parts)
        if shared_file is not None:
            now_ms = _wall_ms  # other processes share the log: one clock for all of them

        def counter(kind: str, rates: list[Rate]) -> _Counter:
            if shared_file is None:
                return _Counter(InMemoryBucket(rates), f"{name}:{kind}", now_ms)
            bucket = SQLiteBucket.init_from_file(
                rates, table=_table(name, kind), db_path=str(shared_file), use_file_lock=True
            )
            return _Counter(bucket, f"{name}:{kind}", now_ms, lock=bucket.lock)

        self._requests = (
            counter("requests", [Rate(n, ms) for n, ms in windows]) if windows else None
        )
        tpm = resource.tokens_per_minute
        self._tokens = counter("tokens", [Rate(tpm // self.block, 60_000)]) if tpm else None
        #: Ask the counter that said "wait" last time first: when both limits apply, a permit
        #: taken from the first and then refused by the second is not given back (pyrate-limiter
        #: has no refund), so asking the binding one first keeps such waste rare.
        self._tokens_first = False

    def counts(self, op: OpBase) -> bool:
        """Whether the limiter counts ``op`` at all (an op with cost and tokens 0 never waits)."""
        return (self._requests is not None and op.cost > 0) or (
            self._tokens is not None and op.tokens > 0
        )

    def acquire(self, op: OpBase) -> float:
        """0.0: ``op`` may start now, and is counted. Otherwise the seconds to wait first."""
        requests = math.ceil(op.cost) if self._requests is not None else 0
        blocks = math.ceil(op.tokens / self.block) if self._tokens is not None else 0
        steps = [(self._requests, requests, False), (self._tokens, blocks, True)]
        if self._tokens_first:
            steps.reverse()
        for counter, weight, is_tokens in steps:
            if counter is None or weight == 0:
                continue
            wait_ms = counter.take(weight)
            if wait_ms:
                self._tokens_first = is_tokens
                return wait_ms / 1000
        return 0.0

    def close(self) -> None:
        for counter in (self._requests, self._tokens):
            if counter is not None:
                counter.close()


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _table(resource: str, kind: str) -> str:
    """A SQL-safe table name for a resource (pyrate-limiter pastes it into its queries)."""
    return f"truepar_{kind}_{hashlib.sha256(resource.encode()).hexdigest()[:16]}"


def build_gates(
    plan: Plan, clock_ns: Callable[[], int], *, virtual_clock: bool
) -> dict[str, RateGate]:
    """A gate per resource with rate limits that some op of the plan uses."""
    used = {op.resource for op in plan.ops if op.resource is not None}
    gates: dict[str, RateGate] = {}
    for name, resource in plan.resources.items():
        if name not in used or not (resource.request_windows() or resource.tokens_per_minute):
            continue
        shared = None
        if resource.limiter_file is not None:
            if virtual_clock:
                raise UsageError(
                    f"resource {name!r} has limiter_file, which counts on the wall clock: "
                    "it cannot run on the fake backend's virtual clock"
                )
            shared = plan.base_dir / resource.limiter_file
            shared.parent.mkdir(parents=True, exist_ok=True)
        gates[name] = RateGate(
            name, resource, now_ms=lambda: clock_ns() // 1_000_000, shared_file=shared
        )
    return gates
