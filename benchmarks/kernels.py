"""Work functions for the benchmarks: module-level, so they pickle to worker processes."""

from __future__ import annotations

MODULUS = 1_000_000_007

#: Iterations of :func:`fixed_work` for one CPU task: about 0.5 s of pure Python on the machine it
#: was calibrated on (a 2-core Xeon VM, CPython 3.11: ~52 ns per iteration). Fixed, not
#: re-calibrated per run, so the work — and the checksum — is the same everywhere.
CPU_TASK_N = 9_500_000


def noop(x: int) -> int:
    """The dispatch benchmark's call: does nothing but return its argument."""
    return x


def fixed_work(n: int, seed: int = 0) -> int:
    """``(seed + sum(i*i for i < n)) mod MODULUS``, the slow way: n interpreted loop steps."""
    acc = seed
    for i in range(n):
        acc = (acc + i * i) % MODULUS
    return acc


def expected_checksum(n: int, seed: int = 0) -> int:
    """What :func:`fixed_work` must return, by the closed form of the sum of squares."""
    return (seed + (n - 1) * n * (2 * n - 1) // 6) % MODULUS
