"""Which ops travel together, sized from how long ops of their kind took.

A Ray call costs about a millisecond whatever it carries, so ops that take far less are sent in
chunks: one call, many ops, one span each. An op's *kind* (its tool and what it runs) keeps a
moving average of its measured durations; an op is batched only once its kind is known to be
tiny, and never when its timeout is short (a chunk runs its ops one after the other, so an op
waits for the ones before it). A chunk aims at :data:`CHUNK_S` of work. Ops of an unknown or
slow kind go alone, at once.

The averages are kept for the whole process, so a second run of a plan is batched from its
first op.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import TypeVar

from truepar.tools.base import OpBase

#: Ops whose kind averages at most this are batched.
TINY_S = 0.002
#: A chunk of tiny ops aims at about this much work.
CHUNK_S = 0.02
#: Never more ops in one chunk than this.
MAX_CHUNK = 256
#: An op whose timeout is shorter than this always goes alone.
MIN_TIMEOUT_S = 1.0
#: Weight of the newest duration in a kind's average.
ALPHA = 0.3

T = TypeVar("T")


def op_kind(op: OpBase) -> str:
    """What makes ops alike in duration: the tool and the function or command it runs."""
    tool = op.tool
    call_name = getattr(op, "call_name", None)
    if callable(call_name):
        return f"{tool}:{call_name()}"
    argv = getattr(op, "argv", None)
    if argv:
        return f"{tool}:{argv[0]}"
    command = getattr(op, "command", None)
    if command:
        return f"{tool}:{command}"
    seconds = getattr(op, "seconds", None)
    if seconds is not None:
        return f"{tool}:{seconds}"
    return tool


class Durations:
    """Moving averages of op durations by kind (shared by every run of this process)."""

    def __init__(self) -> None:
        self._avg: dict[str, float] = {}
        self._lock = threading.Lock()

    def observe(self, kind: str, seconds: float) -> None:
        with self._lock:
            prev = self._avg.get(kind)
            self._avg[kind] = seconds if prev is None else prev + ALPHA * (seconds - prev)

    def average(self, kind: str) -> float | None:
        return self._avg.get(kind)

    def batchable(self, kind: str, timeout_s: float | None) -> bool:
        """Known to be tiny, with time to wait behind its chunk's other ops."""
        avg = self._avg.get(kind)
        if avg is None or avg > TINY_S:
            return False
        return timeout_s is None or timeout_s >= MIN_TIMEOUT_S

    def chunk_size(self, kinds: Sequence[str]) -> int:
        """How many ops of these kinds make a chunk of about :data:`CHUNK_S`."""
        worst = max((self._avg.get(k, TINY_S) for k in kinds), default=TINY_S)
        return max(1, min(MAX_CHUNK, int(CHUNK_S / max(worst, 1e-6))))


def split(items: Sequence[T], size: int, actors: int) -> list[list[T]]:
    """``items`` in chunks of at most ``size``, and at least one per actor when there are
    enough items to go round (so every actor works)."""
    if not items:
        return []
    per = max(1, min(size, math.ceil(len(items) / max(1, actors))))
    return [list(items[i : i + per]) for i in range(0, len(items), per)]
