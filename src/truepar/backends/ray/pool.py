"""The warm actors: one per worker slot, spread over the cluster's nodes, kept between runs.

Starting an actor costs about a second (a fresh worker process importing truepar), far more
than a run of small ops, so actors outlive the run that started them: every later run of the
process on the same cluster takes them warm. They are placed CPU slot by CPU slot across the
live nodes (the head's first slot, the next node's first slot, …), softly — if a node is gone,
Ray puts the actor elsewhere — and ask Ray for the default actor resources (a CPU to be placed,
none held while running), so other Ray work on the cluster is not locked out while they idle.

An actor that dies (its process or node lost) or is killed (an op that would not stop) is
replaced under the same index by a fresh one, placed again on the nodes alive now.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import threading
from types import ModuleType
from typing import Any

from truepar.backends.ray.actor import CONTROL, CONTROL_THREADS, THREADS, RayWorker
from truepar.backends.ray.session import Session, cluster_nodes, import_ray


@dataclasses.dataclass(eq=False)
class Actor:
    """One warm actor of the pool."""

    index: int
    handle: Any
    #: Resolves to the actor's ``ready()`` answer (pid, node, host, ...) once it is up.
    ready: concurrent.futures.Future[dict[str, Any]]
    #: Why it is gone (died, killed), once it is.
    dead: str | None = None


def placement(nodes: list[dict[str, Any]]) -> list[str]:
    """Node ids slot by slot: each node's first CPU, then each node's second, and so on."""
    slots: list[str] = []
    depth = max((n["cpus"] for n in nodes), default=0)
    for k in range(depth):
        slots.extend(n["node"] for n in nodes if n["cpus"] > k)
    return slots


class Pool:
    """The actors of one session (one connection to a cluster)."""

    def __init__(self, ray: ModuleType, session: Session) -> None:
        self.ray = ray
        self.session = session
        self._remote = ray.remote(concurrency_groups={CONTROL: CONTROL_THREADS})(RayWorker)
        self._actors: list[Actor] = []
        self._lock = threading.Lock()

    def ensure(self, n: int) -> list[Actor]:
        """The first ``n`` actors, starting those missing, and replacing those known dead whose
        replacement (on its way from a run that ended meanwhile) has not happened yet."""
        with self._lock:
            dead = [a for a in self._actors[:n] if a.dead is not None]
            grow = len(self._actors) < n
            slots = placement(cluster_nodes(self.ray)) if grow or dead else []
            for actor in dead:
                self._kill(actor, actor.dead or "dead")
                self._actors[actor.index] = self._create(actor.index, slots)
            while len(self._actors) < n:
                self._actors.append(self._create(len(self._actors), slots))
            return self._actors[:n]

    def current(self, index: int) -> Actor:
        with self._lock:
            return self._actors[index]

    def replace(self, actor: Actor, why: str) -> Actor:
        """A fresh actor in the place of ``actor`` (once, however many runs notice it died)."""
        with self._lock:
            if self._actors[actor.index] is actor:
                self._kill(actor, why)
                slots = placement(cluster_nodes(self.ray))
                self._actors[actor.index] = self._create(actor.index, slots)
            return self._actors[actor.index]

    def kill(self, actor: Actor, why: str) -> None:
        with self._lock:
            self._kill(actor, why)

    def _kill(self, actor: Actor, why: str) -> None:
        if actor.dead is None:
            actor.dead = why
        with contextlib.suppress(Exception):  # already dead, or the cluster is gone
            self.ray.kill(actor.handle, no_restart=True)

    def _create(self, index: int, slots: list[str]) -> Actor:
        options: dict[str, Any] = {"max_concurrency": THREADS}
        if slots:
            from ray.util.scheduling_strategies import (  # noqa: PLC0415 - Ray is loaded by now
                NodeAffinitySchedulingStrategy,
            )

            node = slots[index % len(slots)]
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=True)
        handle = self._remote.options(**options).remote(index)
        return Actor(index, handle, handle.ready.remote().future())


_pool: Pool | None = None
_pool_lock = threading.Lock()


def pool_for(session: Session) -> Pool:
    """The pool of ``session``: a new one after a reconnection (the old actors died with it)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool.session is not session:
            _pool = Pool(import_ray(), session)
        return _pool
