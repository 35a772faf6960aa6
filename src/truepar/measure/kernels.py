"""The workloads ``truepar prove`` runs: a fixed-work kernel with a checksum, and the controls.

All are module-level functions, so the ``processes`` backend can pickle them by reference.

- :func:`fixed_work` — pure-Python integer work (a 64-bit xorshift generator folded into a running
  checksum). Its amount of work is fixed by ``n``, never by the clock, and its result depends on
  every iteration, so a run that skipped work returns a wrong checksum. About 0.26 µs per
  iteration on a 2-core CI machine (CPython 3.11): ``n = 1_000_000`` is about a quarter second;
  ``truepar prove`` calibrates ``n`` once (:func:`calibrate`) so a task takes ~0.25 s here.
- :func:`sleep_task` — waits; no CPU. Threads overlap it: ``concurrent``.
- :func:`hash_task` — SHA-256 of a large buffer; hashlib releases the GIL while it hashes, so
  threads really run it on several cores: ``parallel`` even with the GIL.
- :func:`decoy_task` — the classic fake proof: a loop bounded by the clock, not by work. Under
  contention each thread does less, so the wall clock shows a "speedup" that is not one:
  ``suspect``.
"""

from __future__ import annotations

import functools
import hashlib
import time

_MASK = (1 << 64) - 1

#: The default ``n`` of :func:`fixed_work` when not calibrated (~0.25 s on a CI core).
DEFAULT_N = 1_000_000


def fixed_work(n: int, seed: int) -> int:
    """``n`` rounds of xorshift64 folded into a checksum: deterministic for ``(n, seed)``."""
    x = ((seed + 1) * 0x9E3779B97F4A7C15 + 0x2545F4914F6CDD1D) & _MASK or 1
    acc = 0
    for _ in range(n):
        x ^= (x << 13) & _MASK
        x ^= x >> 7
        x ^= (x << 17) & _MASK
        acc = (acc * 31 + x) & _MASK
    return acc


def calibrate(target_s: float = 0.25, *, probe_n: int = 50_000) -> int:
    """The ``n`` for which :func:`fixed_work` takes about ``target_s`` in this process.

    The fastest of three short probes is scaled up (the fastest is the least disturbed).
    """
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        fixed_work(probe_n, 0)
        best = min(best, time.perf_counter() - t0)
    n = int(probe_n * target_s / max(best, 1e-9))
    return max(10_000, round(n, -4))


def sleep_task(seconds: float) -> float:
    """Sleep ``seconds``; returns ``seconds`` (a stable result, checked like a checksum)."""
    time.sleep(seconds)
    return seconds


@functools.cache
def _buffer(mib: int) -> bytes:
    return bytes(range(256)) * (mib * 1024 * 1024 // 256)


def hash_task(mib: int, rounds: int) -> str:
    """SHA-256 hex digest of a ``mib`` MiB buffer fed ``rounds`` times (the GIL is released)."""
    buf = _buffer(mib)
    h = hashlib.sha256()
    for _ in range(rounds):
        h.update(buf)
    return h.hexdigest()


def decoy_task(seconds: float) -> int:
    """The fake: count loop turns until ``seconds`` have passed on the clock.

    Its work is bounded by time, so when threads share one core each does a fraction of the
    sequential work and they all finish "in parallel". Returns the number of turns.
    """
    t0 = time.time()
    n = 0
    while time.time() - t0 < seconds:
        n += 1
    return n
