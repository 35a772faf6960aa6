"""What the ``ray`` backend keeps about the work it sent: ops, chunks, the actors it uses.

Plain records, and the two outcomes the driver makes itself (an op whose actor died, an op Ray
could not carry), so that the dispatch (:mod:`~truepar.backends.ray.backend`) and the ops with
resource requests (:mod:`~truepar.backends.ray.tasks`) say them alike.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from truepar.backends.base import Done, OpCall, Outcome, Slots
from truepar.backends.ray.pool import Actor
from truepar.records import Status


@dataclasses.dataclass(eq=False)
class Op:
    """One attempt the backend was given, until its ``done`` is called."""

    token: int
    call: OpCall
    done: Done
    kind: str
    chunk: Chunk | None = None
    #: The Ray task running it (an op with resource requests), once sent.
    task: Any = None
    finished: bool = False
    grace: asyncio.TimerHandle | None = None


@dataclasses.dataclass(eq=False)
class Chunk:
    """One Ray call carrying one or more ops to one actor thread (a worker slot)."""

    actor: Actor
    slot: int
    worker: int
    ops: list[Op]
    sent_ns: int
    #: A chunk of batched (tiny) ops, counted against its actor's pipeline.
    batched: bool = False


@dataclasses.dataclass(eq=False)
class Joined:
    """An actor this backend sends work to: its identity and its load."""

    actor: Actor
    info: dict[str, Any]
    slots: Slots = dataclasses.field(default_factory=Slots)
    busy: int = 0
    #: Chunks of batched ops in flight on it.
    batched: int = 0


def crashed(call: OpCall, sent_ns: int, worker: int, why: str) -> Outcome:
    """The outcome of an op whose worker died under it (measured here: it cannot report)."""
    return Outcome(
        Status.CRASHED,
        call.started_ns or sent_ns,
        time.monotonic_ns(),
        call.pid,
        0,
        worker,
        None,
        error=why,
        host=call.host,
        node=call.node,
    )


def first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def lost_worker(exc: BaseException) -> bool:
    """Whether Ray says the process (or node) running the work is gone, rather than the work
    itself failing."""
    import ray  # noqa: PLC0415 - loaded by now: only Ray's futures raise these

    lost = (
        ray.exceptions.RayActorError,
        ray.exceptions.WorkerCrashedError,
        ray.exceptions.NodeDiedError,
    )
    return isinstance(exc, lost)
