"""What a run knows of the cluster it uses: its actors, their nodes, each node's clock, CPU.

An actor *joins* a run once it is up: the first actor of each node measures that node's clock
against this one (:mod:`~truepar.backends.ray.clocks`, through a control call answered at once),
and every actor's CPU so far is taken as its baseline. The trace's ``nodes`` section and the
run's worker CPU are read from here; outcomes are moved onto this machine's timeline here.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from truepar.backends.base import Outcome, replace_outcome
from truepar.backends.ray import bridge, clocks
from truepar.backends.ray.actor import CONTROL, boot_id
from truepar.backends.ray.pool import Actor
from truepar.backends.ray.records import Joined

#: Round trips per node when measuring its clock.
CLOCK_ROUNDS = 5


class Members:
    """The actors that joined a run, by index, and what was measured of their nodes."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.joined: dict[int, Joined] = {}
        self._clocks: dict[str, clocks.NodeClock] = {}
        self._node_info: dict[str, dict[str, Any]] = {}
        self._cpu_base: dict[int, float] = {}
        self._cpu_last: dict[int, float] = {}
        #: How long connecting and joining took (it outlives the run: not in its clock).
        self.setup_s = 0.0

    async def join(self, actor: Actor) -> None:
        """Wait for ``actor`` to be up, measure its node's clock if new, and take its CPU."""
        info = await bridge.watch(self._loop, actor.ready)
        node = info["node"]
        if node not in self._clocks:
            self._clocks[node] = clocks.NodeClock(node, 0, 0, "pending", 0, 0, 0)
            self._clocks[node] = await self._measure(actor, shared=info["boot_id"] == boot_id())
            self._node_info[node] = {
                "node": node,
                "host": info["host"],
                "cores": info["cores"],
                "python": info["python"],
                "ray": info["ray"],
            }
        cpu = await self.control(actor, "cpu")
        self._cpu_base[id(actor)] = self._cpu_last[id(actor)] = cpu
        self.joined[actor.index] = Joined(actor, info)

    async def _measure(self, actor: Actor, *, shared: bool) -> clocks.NodeClock:
        samples = []
        for _ in range(CLOCK_ROUNDS):
            sent = time.monotonic_ns()
            remote = await self.control(actor, "clock")
            samples.append((sent, int(remote), time.monotonic_ns()))
        return clocks.estimate(actor.ready.result()["node"], samples, shared=shared)

    def control(self, actor: Actor, method: str, *args: Any) -> asyncio.Future[Any]:
        """Call one of the actor's control methods (answered even while its threads work)."""
        ref = getattr(actor.handle, method).options(concurrency_group=CONTROL).remote(*args)
        return bridge.watch(self._loop, ref.future())

    def cpu_seen(self, actor: Actor, cpu_s: float) -> None:
        """The actor's whole-process CPU, as it reported with a chunk."""
        key = id(actor)
        self._cpu_last[key] = max(self._cpu_last.get(key, cpu_s), cpu_s)

    def cpu_s(self) -> float:
        """The joined actors' CPU since they joined."""
        return sum(self._cpu_last[k] - base for k, base in self._cpu_base.items())

    def fit(self, outcome: Outcome, sent_ns: int, now: int) -> Outcome:
        """The outcome on this machine's clock, inside what this machine saw of its call."""
        clock = self._clocks.get(outcome.node or "")
        start, end = clocks.fit(clock, outcome.start_ns, outcome.end_ns, sent_ns, now)
        if start == outcome.start_ns and end == outcome.end_ns:
            return outcome  # the usual case on a shared clock: no copy (µs per op, thousands)
        return replace_outcome(outcome, start_ns=start, end_ns=end)

    def nodes(self) -> list[dict[str, Any]]:
        """The trace's ``nodes``: each node's host, cores, versions, actors and clock."""
        out = []
        for node, info in self._node_info.items():
            actors = [j for j in self.joined.values() if j.info["node"] == node]
            out.append(
                {
                    **info,
                    "actors": len(actors),
                    "pids": sorted({j.info["pid"] for j in actors}),
                    "clock": self._clocks[node].to_json(),
                    "setup_s": self.setup_s,
                }
            )
        return out
