"""The dependency graph: ``after`` edges plus conflict edges, each with its reason in words.

Two ops conflict when both write one path (or resource), or one writes what the other reads; a
path conflicts with the paths inside it (writing ``src`` conflicts with reading ``src/x.py``).
Conflicting ops never overlap: the one earlier in the order of the ``after`` graph (which is the
file's order wherever ``after`` does not say otherwise) runs first. Because conflict edges follow
that order they can never close a cycle; only ``after`` can, and a cycle is a plan error.
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from truepar.errors import PlanError
from truepar.tools.base import OpBase


class PlanLike(Protocol):
    """What the graph needs of a plan (a :class:`~truepar.plan.models.Plan`): its ops, its
    resources and root, how to word an error, and a place to keep the graph once built."""

    @property
    def ops(self) -> Sequence[OpBase]: ...
    @property
    def resources(self) -> Mapping[str, object]: ...
    @property
    def root(self) -> Path: ...
    def error(
        self, message: str, op: OpBase | None = None, field: str | None = None
    ) -> PlanError: ...
    def cached_graph(self) -> Graph | None: ...
    def cache_graph(self, graph: Graph) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Edge:
    before: str
    after: str
    reason: str

    def explain(self) -> str:
        return f"{self.after} after {self.before}: {self.reason}"


@dataclasses.dataclass(frozen=True)
class Graph:
    """Ops by index, their predecessors and successors, and why each edge exists."""

    ids: tuple[str, ...]
    preds: tuple[tuple[int, ...], ...]
    succs: tuple[tuple[int, ...], ...]
    edges: tuple[Edge, ...]
    #: A topological order (stable: file order where the edges allow).
    order: tuple[int, ...]

    def index(self, op_id: str) -> int:
        return self.ids.index(op_id)

    def why(self, op_id: str) -> list[str]:
        """Why ``op_id`` waits for others, one sentence per incoming edge."""
        return [e.explain() for e in self.edges if e.after == op_id]

    def waits(self) -> dict[str, tuple[str, ...]]:
        """:meth:`why` of every op that waits for others, in the order of ``ids``.

        One pass over the edges: asking :meth:`why` of each op would read every edge once per
        op, which a 10,000-op chain turns into 10⁸ steps.
        """
        incoming: dict[str, list[str]] = {}
        for e in self.edges:
            incoming.setdefault(e.after, []).append(e.explain())
        return {op_id: tuple(incoming[op_id]) for op_id in self.ids if op_id in incoming}

    def critical_path(self, durations_s: Mapping[str, float]) -> tuple[float, list[str]]:
        """Longest path through the graph when op ``i`` takes ``durations_s[id]`` (missing = 0)."""
        finish = [0.0] * len(self.ids)
        best_pred = [-1] * len(self.ids)
        for i in self.order:
            start = 0.0
            for p in self.preds[i]:
                if finish[p] > start:
                    start, best_pred[i] = finish[p], p
            finish[i] = start + durations_s.get(self.ids[i], 0.0)
        if not finish:
            return 0.0, []
        end = max(range(len(finish)), key=finish.__getitem__)
        path = []
        while end >= 0:
            path.append(self.ids[end])
            end = best_pred[end]
        return max(finish), path[::-1]


def build_graph(plan: PlanLike) -> Graph:
    """The graph of a plan whose ids are unique and known. Raises PlanError on a cycle.

    Built once per plan (plans are immutable): checking a plan and running it share it.
    """
    cached = plan.cached_graph()
    if cached is not None:
        return cached
    graph = _build(plan)
    plan.cache_graph(graph)
    return graph


def _build(plan: PlanLike) -> Graph:
    ids = tuple(op.id for op in plan.ops)
    index = {op_id: i for i, op_id in enumerate(ids)}
    n = len(ids)
    after_preds: list[list[int]] = [[index[d] for d in op.after] for op in plan.ops]
    order = _stable_topo_order(n, after_preds)
    if order is None:
        raise plan.error(f"cycle in 'after': {_shown_cycle(_find_cycle(ids, after_preds))}")

    edges: dict[tuple[int, int], str] = {}
    for i, declared in enumerate(after_preds):
        for p in declared:
            edges.setdefault((p, i), "declared in after")
    resources = set(plan.resources)
    root = str(plan.root)
    tracker = _Hazards()
    ops = plan.ops
    for i in order:
        op = ops[i]
        raw_reads = (*op.implied_reads(), *op.reads)
        raw_writes = (*op.implied_writes(), *op.writes)
        if not raw_reads and not raw_writes:
            continue  # most ops touch no path or resource: nothing to conflict with
        writes = {_key(k, resources, root) for k in raw_writes}
        reads = {_key(k, resources, root) for k in raw_reads} - writes
        for key in sorted(reads):
            for j, theirs, what in tracker.conflicts(key, writing=False):
                edges.setdefault((j, i), _reason(ids[j], what, theirs, ids[i], "reads", key))
        for key in sorted(writes):
            for j, theirs, what in tracker.conflicts(key, writing=True):
                edges.setdefault((j, i), _reason(ids[j], what, theirs, ids[i], "writes", key))
        for key in reads:
            tracker.read(key, i)
        for key in writes:
            tracker.write(key, i)

    preds: list[list[int]] = [[] for _ in range(n)]
    succs: list[list[int]] = [[] for _ in range(n)]
    for a, b in sorted(edges):
        preds[b].append(a)
        succs[a].append(b)
    edge_list = tuple(
        Edge(ids[a], ids[b], r)
        for (a, b), r in sorted(edges.items(), key=lambda e: (e[0][1], e[0][0]))
    )
    return Graph(
        ids, tuple(tuple(p) for p in preds), tuple(tuple(s) for s in succs), edge_list, tuple(order)
    )


def _key(raw: str, resources: set[str], root: str) -> str:
    """One spelling per path: relative to the root where it lies inside it (so ``/repo/x`` and
    ``x`` are the same file), normalized; ``resource:name`` for a declared resource."""
    if raw in resources:
        return f"resource:{raw}"
    norm = posixpath.normpath(raw)
    if posixpath.isabs(norm) and (norm == root or norm.startswith(root.rstrip("/") + "/")):
        norm = posixpath.relpath(norm, root)
    return "" if norm == "." else norm


def _shown(key: str) -> str:
    return key.removeprefix("resource:") if key.startswith("resource:") else (key or ".")


def _reason(first: str, did: str, theirs: str, then: str, does: str, ours: str) -> str:
    """Why ``then`` waits for ``first``, in words: "both write x", "a writes x, which b reads"."""
    if theirs == ours:
        if did == does == "writes":
            return f"both write {_shown(ours)}"
        return f"{first} {did} {_shown(ours)}, which {then} {does}"
    return (
        f"{first} {did} {_shown(theirs)} and {then} {does} {_shown(ours)}: one contains the other"
    )


class _Hazards:
    """Last writer and readers-since-then per key, with lookups of keys inside/around a key."""

    def __init__(self) -> None:
        self.last_writer: dict[str, int] = {}
        self.readers: dict[str, list[int]] = {}
        self.keys: list[str] = []  # sorted, for finding the keys inside a directory

    def _touch(self, key: str) -> None:
        if key not in self.last_writer and key not in self.readers:
            bisect.insort(self.keys, key)

    def read(self, key: str, i: int) -> None:
        self._touch(key)
        self.readers.setdefault(key, []).append(i)

    def write(self, key: str, i: int) -> None:
        self._touch(key)
        self.last_writer[key] = i
        self.readers[key] = []

    def _related(self, key: str) -> list[str]:
        """Keys equal to ``key``, containing it, or inside it."""
        if key.startswith("resource:"):
            return [key] if key in self.last_writer or key in self.readers else []
        found = []
        parent = key
        while True:  # the key itself and its ancestors
            if parent in self.last_writer or parent in self.readers:
                found.append(parent)
            up = posixpath.dirname(parent)
            if not parent or up == parent:  # "" for relative paths, "/" for absolute ones
                break
            parent = up
        prefix = key + "/" if key else ""
        keys = self.keys
        # By index, not over a slice: copying the tail for every lookup made a plan of
        # thousands of distinct paths quadratic.
        for n in range(bisect.bisect_left(keys, prefix), len(keys)):
            k = keys[n]
            if not k.startswith(prefix):
                break
            if k != key and not k.startswith("resource:"):
                found.append(k)
        return found

    def conflicts(self, key: str, *, writing: bool) -> list[tuple[int, str, str]]:
        out = []
        for k in self._related(key):
            if k in self.last_writer:
                out.append((self.last_writer[k], k, "writes"))
            if writing:
                out.extend((r, k, "reads") for r in self.readers.get(k, ()))
        return out


def _stable_topo_order(n: int, preds: list[list[int]]) -> list[int] | None:
    indegree = [len(set(p)) for p in preds]
    succs: list[list[int]] = [[] for _ in range(n)]
    for i, ps in enumerate(preds):
        for p in set(ps):
            succs[p].append(i)
    ready = [i for i in range(n) if indegree[i] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for s in succs[i]:
            indegree[s] -= 1
            if indegree[s] == 0:
                heapq.heappush(ready, s)
    return order if len(order) == n else None


def _shown_cycle(cycle: list[str]) -> str:
    """A cycle in one readable line: a long one as its first and last few ops."""
    if len(cycle) <= 9:
        return " → ".join(cycle)
    return f"{' → '.join(cycle[:4])} → … → {' → '.join(cycle[-3:])} ({len(cycle) - 1} ops)"


def _find_cycle(ids: tuple[str, ...], preds: list[list[int]]) -> list[str]:
    """One cycle of the ``after`` edges, as ids in order (first id repeated at the end).

    Iterative: a cycle through thousands of ops, or reached through a chain of thousands,
    must not exhaust Python's recursion limit.
    """
    color = [0] * len(ids)  # 0 unvisited, 1 on the current path, 2 done
    for root in range(len(ids)):
        if color[root]:
            continue
        path = [root]
        todo = [iter(preds[root])]
        color[root] = 1
        while todo:
            nxt = next(todo[-1], None)
            if nxt is None:
                color[path.pop()] = 2
                todo.pop()
            elif color[nxt] == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                return [ids[j] for j in reversed(cycle)]
            elif color[nxt] == 0:
                color[nxt] = 1
                path.append(nxt)
                todo.append(iter(preds[nxt]))
    return []


def path_key(raw: str, root: str) -> str:
    """How the graph spells a ``reads``/``writes`` path of a plan rooted at ``root``: relative
    to the root where it lies inside it, normalized; ``""`` for the root itself."""
    return _key(raw, set(), root)


def keys_overlap(a: str, b: str) -> bool:
    """Whether two :func:`path_key` keys touch: the same path, or one inside the other (the
    root, ``""``, contains every path) — the rule that orders a writer and its readers."""
    if a == b or not a or not b:
        return True
    return a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")
