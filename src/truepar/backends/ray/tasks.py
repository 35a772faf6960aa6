"""Ops with resource requests: one Ray task each, asking Ray for what the op asks.

An op with ``num_cpus``, ``num_gpus`` or ``custom_resources`` (its own or the plan's defaults)
does not go to the warm actors, which hold no resources while they run: it runs as a Ray task
with ``.options(num_cpus=…, num_gpus=…, resources={…})`` — ``num_cpus`` 1 when only the others
are given, as for any Ray task — so Ray starts it only where those resources are free, holds them
while it runs, and gives it its GPUs (``CUDA_VISIBLE_DEVICES``). Ray retries nothing
(``max_retries=0``): the op's own ``retries`` decide. Each op is its own span and its own task,
never batched (ops that need a GPU are not the tiny ones).

A request that no live node of the cluster has at all — a GPU on a cluster without one, a custom
resource no node declares — Ray would keep pending forever. Such an op fails at once, saying what
it asked for and the most any node has; ops the cluster *can* run wait, like any Ray task, until
what they ask is free.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from typing import Any

from truepar.backends.base import Outcome, Slots
from truepar.backends.ray import actor, bridge, payload
from truepar.backends.ray.records import Op, crashed, first_line, lost_worker
from truepar.backends.ray.session import import_ray, node_resources
from truepar.errors import BackendUnavailable
from truepar.tools.base import OpBase


@dataclasses.dataclass(frozen=True, slots=True)
class Shape:
    """What an op asks Ray for."""

    num_cpus: float
    num_gpus: float
    custom: tuple[tuple[str, float], ...]

    def needs(self) -> dict[str, float]:
        """By Ray's resource names, what a node must have (zero requests left out)."""
        wanted = {"CPU": self.num_cpus, "GPU": self.num_gpus, **dict(self.custom)}
        return {name: amount for name, amount in wanted.items() if amount > 0}

    def options(self) -> dict[str, Any]:
        return {
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            "resources": dict(self.custom),
            "max_retries": 0,
        }

    def describe(self) -> str:
        parts = [f"num_cpus={self.num_cpus:g}", f"num_gpus={self.num_gpus:g}"]
        return ", ".join(parts + [f"{name}={amount:g}" for name, amount in self.custom])


def shape_of(op: OpBase) -> Shape | None:
    """The op's requests, or ``None`` when it asks for nothing (it goes to the warm actors)."""
    if op.num_cpus is None and op.num_gpus is None and op.custom_resources is None:
        return None
    cpus = op.num_cpus if op.num_cpus is not None else 1.0
    custom = tuple(sorted((op.custom_resources or {}).items()))
    return Shape(cpus, op.num_gpus or 0.0, custom)


def infeasible(shape: Shape, nodes: list[dict[str, float]]) -> str | None:
    """Why no node of ``nodes`` (each one's total resources) could ever run ``shape``; ``None``
    when one could."""
    needs = shape.needs()
    if any(all(node.get(name, 0.0) >= v for name, v in needs.items()) for node in nodes):
        return None
    most = ", ".join(
        f"{name} {max((node.get(name, 0.0) for node in nodes), default=0.0):g}" for name in needs
    )
    return (
        f"it asks for {shape.describe()}, which no live node of the Ray cluster has (the most "
        f"one node has: {most}); Ray would wait for it forever. Lower the request, or add a node "
        "that has it"
    )


class Tasks:
    """The ops of one run that have resource requests, each in flight as one Ray task."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        finish: Callable[[Op, Outcome | BaseException], None],
        refuse: Callable[[Op, BaseException], None],
        align: Callable[[Outcome, int, int], Outcome],
        first_worker: int,
    ) -> None:
        self._loop = loop
        self._finish = finish
        #: Fails an op from inside ``submit`` (its ``done`` then comes on the next loop turn).
        self._refuse = refuse
        self._align = align
        self._first_worker = first_worker
        self._slots = Slots()
        self._remote = import_ray().remote(actor.run_task)
        self._verdicts: dict[Shape, str | None] = {}
        self._nodes: list[dict[str, float]] | None = None
        #: CPU of the processes that ran this run's tasks, while they ran them.
        self.cpu_s = 0.0

    def send(self, op: Op, shape: Shape) -> None:
        why = self._verdicts.get(shape, "?")
        if why == "?":
            if self._nodes is None:
                self._nodes = node_resources(import_ray())
            why = self._verdicts[shape] = infeasible(shape, self._nodes)
        if why is not None:
            self._refuse(op, BackendUnavailable(f"op {op.call.op.id!r} cannot run on Ray: {why}"))
            return
        data = payload.dumps([op], self._refuse)
        if op.finished:
            return
        slot = self._slots.acquire()
        worker = self._first_worker + slot
        op.call.worker = worker
        sent = op.call.started_ns = time.monotonic_ns()
        ref = self._remote.options(**shape.options()).remote(worker, data)
        op.task = ref
        bridge.on_loop(self._loop, ref.future(), self._done, op, slot, sent)

    def _done(self, op: Op, slot: int, sent_ns: int, fut: Any) -> None:
        self._slots.release(slot)
        if op.finished:
            return
        try:
            outcome, cpu_s = fut.result()
        except Exception as exc:
            import ray  # noqa: PLC0415 - loaded: this is one of its futures

            if isinstance(exc, ray.exceptions.TaskCancelledError):
                self._finish(op, asyncio.CancelledError())
            elif lost_worker(exc):
                why = f"the Ray worker running it died ({first_line(exc)})"
                self._finish(op, crashed(op.call, sent_ns, op.call.worker, why))
            else:
                self._finish(op, exc)
            return
        self.cpu_s += cpu_s
        self._finish(op, self._align(outcome, sent_ns, time.monotonic_ns()))

    def cancel(self, op: Op, *, force: bool) -> None:
        """Ask Ray to stop the op's task (``force``: kill the worker process running it)."""
        if op.task is not None:
            with contextlib.suppress(Exception):  # done already, or the cluster is gone
                import_ray().cancel(op.task, force=force)
