"""The warm worker: a Ray actor that runs chunks of op calls, each measured where it runs.

One actor per worker slot of the cluster, kept alive between runs. A chunk is one Ray call
carrying several ops (the small ones, batched) that run one after the other on one of the
actor's threads, each through :func:`truepar.backends.invoke.invoke` — the path the process
workers take — so every op gets its own times, pid, thread and CPU (``thread_time`` of the
thread that ran it, plus its subprocesses' rusage). Several chunks may run at once on one actor
(a threaded actor), which is how waits overlap beyond the cluster's CPUs.

The ``control`` methods (``cancel``, ``clock``, ``cpu``) run in their own concurrency group, so
they answer at once even while every work thread is busy. This module imports Ray only inside
the actor: it is loaded by the backend once Ray is, and by Ray in the actor's process.
"""

from __future__ import annotations

import os
import pickle
import platform
import resource
import socket
import threading
import time
from pathlib import Path
from typing import Any

from truepar.backends.base import OpCall, Outcome, replace_outcome
from truepar.backends.invoke import invoke
from truepar.records import Status
from truepar.tools.base import ToolContext

#: Work threads per actor (Ray's ``max_concurrency``): chunks at once on one actor.
THREADS = 64
#: The concurrency group of the methods that must answer while work runs, and its threads.
CONTROL = "control"
CONTROL_THREADS = 2


def boot_id() -> str:
    """This kernel's boot id: two processes with the same one share ``CLOCK_MONOTONIC``."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def cumulative_cpu_s() -> float:
    """CPU seconds of this process (all its threads, Ray's own included) and its reaped
    children: what the run's total counts for this actor."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class RayWorker:
    """The actor's class (made remote by the pool, with its concurrency groups)."""

    def __init__(self, index: int) -> None:
        import ray  # noqa: PLC0415 - in the actor's process, where Ray is loaded already

        self.index = index
        self.node: str = ray.get_runtime_context().get_node_id()
        self.host = socket.gethostname()
        self._lock = threading.Lock()
        #: Ops running now, by token, and tokens cancelled before they started.
        self._running: dict[int, ToolContext] = {}
        self._cancelled: set[int] = set()

    def ready(self) -> dict[str, Any]:
        """Who and where this actor is (sent once, when it is up)."""
        import ray  # noqa: PLC0415 - as above

        try:
            cores = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cores = os.cpu_count() or 1
        return {
            "pid": os.getpid(),
            "node": self.node,
            "host": self.host,
            "boot_id": boot_id(),
            "cores": cores,
            "python": platform.python_version(),
            "ray": ray.__version__,
            "cpu_s": cumulative_cpu_s(),
        }

    def run_chunk(self, worker: int, payload: bytes) -> tuple[list[tuple[int, Outcome]], float]:
        """Run each call of the pickled ``[(token, OpCall), ...]`` in turn on this thread;
        their outcomes, and this process's CPU."""
        items: list[tuple[int, OpCall]] = pickle.loads(payload)
        out: list[tuple[int, Outcome]] = []
        for token, call in items:
            ctx = ToolContext(call.root, call.plan_dir)
            with self._lock:
                skipped = token in self._cancelled
                self._cancelled.discard(token)
                if not skipped:
                    self._running[token] = ctx
            if skipped:
                now = time.monotonic_ns()
                tid = threading.get_native_id()
                cancelled = Outcome(Status.CANCELLED, now, now, os.getpid(), tid, worker, None)
                out.append((token, replace_outcome(cancelled, host=self.host, node=self.node)))
                continue
            try:
                outcome = invoke(call, ctx, worker)
            finally:
                with self._lock:
                    self._running.pop(token, None)
            out.append((token, replace_outcome(outcome, host=self.host, node=self.node)))
        return out, cumulative_cpu_s()

    def cancel(self, tokens: list[int]) -> None:
        """Stop these ops: a running one is asked its own way (its subprocess killed, its sleep
        woken); one not started yet will not start."""
        for token in tokens:
            with self._lock:
                ctx = self._running.get(token)
                if ctx is None:
                    self._cancelled.add(token)
            if ctx is not None:
                ctx.request_cancel()

    def clock(self) -> int:
        return time.monotonic_ns()

    def cpu(self) -> float:
        return cumulative_cpu_s()


def run_task(worker: int, payload: bytes) -> tuple[Outcome, float]:
    """A Ray task (an op with resource requests, see :mod:`truepar.backends.ray.tasks`): run
    the one pickled ``[(token, OpCall)]`` here; its outcome, and the CPU this process spent
    meanwhile. Ray's cancel arrives as ``KeyboardInterrupt``: the op is asked to stop its own
    way (its subprocess killed) before the task ends."""
    import ray  # noqa: PLC0415 - in a Ray worker, where Ray is loaded already

    cpu0 = cumulative_cpu_s()
    ((_, call),) = pickle.loads(payload)
    ctx = ToolContext(call.root, call.plan_dir)
    try:
        outcome = invoke(call, ctx, worker)
    except KeyboardInterrupt:
        ctx.request_cancel()
        raise
    node = ray.get_runtime_context().get_node_id()
    placed = replace_outcome(outcome, host=socket.gethostname(), node=node)
    return placed, cumulative_cpu_s() - cpu0
