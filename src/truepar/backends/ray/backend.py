"""``ray``: ops on warm Ray actors across a cluster, small ones batched, every one its own span.

How a run goes. ``prepare`` — before the run's clock starts, since all of it outlives the run
— connects (:mod:`~truepar.backends.ray.session`), takes one warm actor per worker slot the run
can use (at most the cluster's CPUs) from the pool, measures each node's clock against this one
(:mod:`~truepar.backends.ray.clocks`) and each actor's CPU so far. ``submit`` sends an op at
once on the least busy actor, or, when its kind is known to be tiny, holds it to the end of the
loop turn and sends the turn's tiny ops as a few chunks (:mod:`~truepar.backends.ray.batching`).
Each chunk runs on one of its actor's threads (a worker slot: ``worker`` = actor index + thread
× actors) and comes back as one outcome per op, measured there, moved onto this machine's
timeline. An op with resource requests (``num_cpus``, ``num_gpus``, ``custom_resources``) goes
instead as a Ray task asking for them (:mod:`~truepar.backends.ray.tasks`). ``worker_cpu_s`` is
the actors' CPU since the run started, plus the tasks', so cores used counts the CPU of every
node that worked.

Failures. A dead actor (process or node lost) crashes the ops of its chunks — the scheduler
retries them per their ``retries`` — and is replaced by a fresh one. A timeout or Ctrl-C asks
the actor to stop the op its own way (its subprocess killed, its sleep woken); an op still
running :data:`GRACE_S` later has its actor killed (and replaced), which also crashes the ops
that shared it, each saying why. An actor that cannot be (re)started within
:data:`READY_TIMEOUT_S` — a lost cluster — fails the ops waiting for it with one clear error;
a head that stops answering (:mod:`~truepar.backends.ray.watchdog`) fails every op in flight.
The actors joined, their nodes' clocks and CPU are :mod:`~truepar.backends.ray.members`' to keep.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import itertools
import math
import time
from typing import Any

from truepar.backends.base import Backend, Done, OpCall, Outcome
from truepar.backends.invoke import describe_error
from truepar.backends.ray import batching, bridge, payload
from truepar.backends.ray.actor import THREADS
from truepar.backends.ray.members import Members
from truepar.backends.ray.pool import Actor, Pool, pool_for
from truepar.backends.ray.records import Chunk, Joined, Op, crashed, first_line, lost_worker
from truepar.backends.ray.session import cluster_nodes, connect, import_ray
from truepar.backends.ray.tasks import Tasks, shape_of
from truepar.backends.ray.watchdog import Watchdog, gcs_address
from truepar.errors import BackendUnavailable
from truepar.records import Status

#: After asking an op to stop, how long before its actor is killed instead.
GRACE_S = 0.5
#: How long an actor may take to start (or to be replaced) before the cluster counts as lost.
READY_TIMEOUT_S = 60.0
#: Chunks of batched ops in flight per actor: one running, one on its way. Tiny ops wait
#: for a place (a round trip at most) and so travel in ever fuller chunks.
PIPELINE = 2

#: Durations by op kind, for the whole process (see :mod:`truepar.backends.ray.batching`).
DURATIONS = batching.Durations()


class RayBackend(Backend):
    name = "ray"
    cpu_parallel = "yes"
    leaves_threads = True
    #: Ops' ``num_cpus``/``num_gpus``/``custom_resources`` are asked of Ray (``truepar lint``
    #: warns, TP008, where a backend ignores them).
    honours_requests = True

    def __init__(self, workers: int, *, address: str | None = None) -> None:
        super().__init__(workers)
        #: The cluster (``auto``, ``ray://HOST:PORT``); ``None``: ``$TRUEPAR_RAY_ADDRESS``, else
        #: a local instance.
        self.address = address
        self._pool: Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: Tasks | None = None
        self._width = 1
        #: The joined actors (:class:`Members`' dict), by index.
        self._joined: dict[int, Joined] = {}
        self._ops: dict[int, Op] = {}
        self._tokens = itertools.count()
        self._batch: list[Op] = []
        self._flush_handle: asyncio.Handle | None = None
        self._waiting: collections.deque[list[Op]] = collections.deque()
        self._members: Members | None = None
        self._rejoining: set[asyncio.Task[None]] = set()
        self._lost: str | None = None
        self._watchdog: Watchdog | None = None

    # -- start ------------------------------------------------------------------------------

    async def prepare(self, parallel: int) -> None:
        """Connect, take warm actors (starting those missing), measure clocks: before the
        run's clock starts, since all of it outlives the run (its time is in the trace)."""
        t0 = time.monotonic()
        self._lost = None
        session = connect(self.address)
        ray = import_ray()
        self._loop = loop = asyncio.get_running_loop()
        self._pool = pool_for(session)
        nodes = cluster_nodes(ray)
        if not nodes:
            raise BackendUnavailable("backend 'ray': the Ray cluster has no live node with a CPU")
        self._width = max(1, min(parallel, sum(n["cpus"] for n in nodes)))
        self._members = members = Members(loop)
        self._joined = members.joined
        self._tasks = Tasks(loop, self._finish, self._refuse, members.fit, self._width * THREADS)
        actors = self._pool.ensure(self._width)
        try:
            await asyncio.wait_for(
                asyncio.gather(*(members.join(a) for a in actors)), READY_TIMEOUT_S
            )
        except TimeoutError:
            raise BackendUnavailable(
                f"backend 'ray': {self._width} actor(s) did not start within "
                f"{READY_TIMEOUT_S:g} s; is the cluster reachable, with free resources?"
            ) from None
        except Exception as exc:
            raise BackendUnavailable(
                f"backend 'ray': an actor failed to start ({describe_error(exc)})"
            ) from exc
        members.setup_s = time.monotonic() - t0
        head = gcs_address()
        if head is not None:
            self._watchdog = Watchdog(head, self._head_lost)
            self._watchdog.start()

    # -- dispatch ---------------------------------------------------------------------------

    def submit(self, call: OpCall, done: Done) -> None:
        op = Op(next(self._tokens), call, done, batching.op_kind(call.op))
        call.handle = op
        self._ops[op.token] = op
        shape = shape_of(call.op)
        if self._lost is not None:
            self._refuse(op, BackendUnavailable(self._lost))
        elif shape is not None:
            assert self._tasks is not None
            self._tasks.send(op, shape)
        elif DURATIONS.batchable(op.kind, call.timeout_s):
            self._batch.append(op)
            if self._flush_handle is None:
                assert self._loop is not None
                self._flush_handle = self._loop.call_soon(self._flush)
        else:
            self._place([op])

    def _flush(self) -> None:
        """Send the held tiny ops to actors with room in their pipeline; the rest wait for
        the next chunk to come back (then they go, more of them to a call)."""
        self._flush_handle = None
        if self._lost is not None:
            batch, self._batch = self._batch, []
            self._place(batch)
            return
        while self._batch:
            room = [
                j
                for j in self._joined.values()
                if j.actor.dead is None and j.batched < PIPELINE and j.busy < THREADS
            ]
            if not room:
                return
            places = sum(PIPELINE - j.batched for j in room)
            size = DURATIONS.chunk_size([op.kind for op in self._batch])
            per = max(1, min(size, math.ceil(len(self._batch) / places)))
            joined = min(room, key=lambda j: (j.batched, j.busy, j.actor.index))
            ops, self._batch = self._batch[:per], self._batch[per:]
            self._send(joined, ops, batched=True)

    def _place(self, ops: list[Op]) -> None:
        if self._lost is not None:
            for op in ops:
                self._finish(op, BackendUnavailable(self._lost))
            return
        joined = self._least_busy()
        if joined is None:
            self._waiting.append(ops)
        else:
            self._send(joined, ops)

    def _least_busy(self) -> Joined | None:
        free = [j for j in self._joined.values() if j.busy < THREADS and j.actor.dead is None]
        return min(free, key=lambda j: (j.busy, j.actor.index)) if free else None

    def _send(self, joined: Joined, ops: list[Op], *, batched: bool = False) -> None:
        actor, info = joined.actor, joined.info
        slot = joined.slots.acquire()
        joined.busy += 1
        joined.batched += batched
        worker = actor.index + slot * self._width
        chunk = Chunk(actor, slot, worker, ops, time.monotonic_ns(), batched)
        pid, host, node = info["pid"], info["host"], info["node"]
        for op in ops:
            op.chunk = chunk
            call = op.call
            call.worker, call.pid, call.host, call.node = worker, pid, host, node
            call.started_ns = chunk.sent_ns
        data = payload.dumps(ops, self._refuse)
        chunk.ops[:] = [op for op in chunk.ops if not op.finished]
        ref = actor.handle.run_chunk.remote(worker, data)
        assert self._loop is not None
        bridge.on_loop(self._loop, ref.future(), self._chunk_done, chunk)

    def _refuse(self, op: Op, exc: BaseException) -> None:
        """Fail ``op`` from inside ``submit``: its ``done`` comes on the next loop turn."""
        assert self._loop is not None
        op.finished = True
        self._ops.pop(op.token, None)
        self._loop.call_soon(op.done, exc)

    def _chunk_done(self, chunk: Chunk, fut: concurrent.futures.Future[Any]) -> None:
        joined = self._joined.get(chunk.actor.index)
        if joined is not None and joined.actor is chunk.actor:
            joined.busy -= 1
            joined.batched -= chunk.batched
            joined.slots.release(chunk.slot)
        try:
            results, cpu_s = fut.result()
        except Exception as exc:
            self._chunk_failed(chunk, exc)
        else:
            assert self._members is not None
            self._members.cpu_seen(chunk.actor, cpu_s)
            fit = self._members.fit
            now = time.monotonic_ns()
            ops = self._ops
            for token, outcome in results:
                op = ops.get(token)
                if op is not None and not op.finished:
                    self._finish(op, fit(outcome, chunk.sent_ns, now))
            for op in chunk.ops:  # never left without an answer
                if not op.finished:
                    why = "no outcome came back from Ray"
                    self._finish(op, crashed(op.call, chunk.sent_ns, chunk.worker, why))
        self._pump()

    def _chunk_failed(self, chunk: Chunk, exc: BaseException) -> None:
        if not lost_worker(exc):
            for op in chunk.ops:  # Ray could not carry the call (e.g. a result it cannot read)
                if not op.finished:
                    self._finish(op, exc)
            return
        actor = chunk.actor
        head = self._watchdog.says() if self._watchdog is not None else ""
        why = actor.dead or f"its Ray actor died ({first_line(exc)}){head}"
        for op in chunk.ops:
            if not op.finished:
                self._finish(op, crashed(op.call, chunk.sent_ns, chunk.worker, why))
        self._replace(actor, why)

    def _replace(self, actor: Actor, why: str) -> None:
        joined = self._joined.get(actor.index)
        if joined is None or joined.actor is not actor:
            return
        del self._joined[actor.index]
        if actor.dead is None:
            actor.dead = why  # now: a run starting before it is replaced replaces it itself
        assert self._loop is not None
        task = self._loop.create_task(self._rejoin(actor, why))
        self._rejoining.add(task)
        task.add_done_callback(self._rejoining.discard)

    async def _rejoin(self, actor: Actor, why: str) -> None:
        """A fresh actor in the dead one's place. Replacing asks the head where to put it, off
        the loop: a dead head would keep that call waiting, and the loop must stay free to
        notice (the watchdog)."""
        assert self._pool is not None and self._members is not None and self._loop is not None
        try:
            fresh = await bridge.in_thread(self._loop, self._pool.replace, actor, why)
            await asyncio.wait_for(self._members.join(fresh), READY_TIMEOUT_S)
        except Exception as exc:
            why = "timed out" if isinstance(exc, TimeoutError) else describe_error(exc)
            self._cluster_lost(
                f"backend 'ray': lost the Ray cluster: a replacement actor did not start "
                f"within {READY_TIMEOUT_S:g} s ({why})"
            )
            return
        self._pump()

    def _cluster_lost(self, why: str) -> None:
        """Nothing can run any more: fail what waits, rather than hang."""
        self._lost = why
        while self._waiting:
            for op in self._waiting.popleft():
                self._finish(op, BackendUnavailable(why))

    def _head_lost(self, why: str) -> None:
        """The head is gone (the watchdog): nothing sent will come back either; fail it all."""
        self._cluster_lost(why)
        self._batch.clear()
        for op in list(self._ops.values()):
            if not op.finished:
                self._finish(op, BackendUnavailable(why))

    def _pump(self) -> None:
        """A place freed up: send what waits for one."""
        while self._waiting:
            joined = self._least_busy()
            if joined is None:
                break
            self._send(joined, self._waiting.popleft())
        if self._batch and self._flush_handle is None:
            self._flush()

    def _finish(self, op: Op, result: Outcome | BaseException) -> None:
        op.finished = True
        self._ops.pop(op.token, None)
        if op.grace is not None:
            op.grace.cancel()
            op.grace = None
        if isinstance(result, Outcome) and result.status is Status.OK:
            DURATIONS.observe(op.kind, (result.end_ns - result.start_ns) / 1e9)
        op.done(result)

    # -- stop -------------------------------------------------------------------------------

    def cancel(self, call: OpCall) -> None:
        op: Op | None = call.handle
        if op is None or op.finished:
            return
        loop = self._loop
        assert loop is not None
        if op.task is not None:  # a Ray task: Ray stops it
            assert self._tasks is not None
            self._tasks.cancel(op, force=False)
        elif op.chunk is None:  # not sent yet: it never started
            if op in self._batch:
                self._batch.remove(op)
            for group in self._waiting:
                if op in group:
                    group.remove(op)
            self._waiting = collections.deque(g for g in self._waiting if g)
            self._refuse(op, asyncio.CancelledError())
            return
        else:
            with contextlib.suppress(Exception):  # a dead actor: its chunk reports the crash
                assert self._members is not None
                self._members.control(op.chunk.actor, "cancel", [op.token])
        if op.grace is None:
            op.grace = loop.call_later(GRACE_S, self._force_stop, op)

    def _force_stop(self, op: Op) -> None:
        """The op did not stop when asked: kill its actor (and replace it), or its task."""
        op.grace = None
        if op.finished:
            return
        if op.task is not None:
            assert self._tasks is not None
            self._tasks.cancel(op, force=True)
        elif op.chunk is not None:
            why = (
                f"its Ray actor was killed to stop op {op.call.op.id!r}, which did not stop "
                f"within {GRACE_S:g} s of being asked"
            )
            assert self._pool is not None
            self._pool.kill(op.chunk.actor, why)
        else:
            return
        self._finish(op, asyncio.CancelledError())

    async def aclose(self) -> None:
        if self._watchdog is not None:
            self._watchdog.stop()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        for task in list(self._rejoining):
            task.cancel()
        # The actors stay warm in the pool for the next run of this process.

    # -- what the trace says ----------------------------------------------------------------

    def worker_cpu_s(self) -> float:
        tasks = self._tasks.cpu_s if self._tasks is not None else 0.0
        return tasks + (self._members.cpu_s() if self._members is not None else 0.0)

    def nodes(self) -> list[dict[str, Any]]:
        return self._members.nodes() if self._members is not None else []
