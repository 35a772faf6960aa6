"""``ray``: ops on warm Ray actors across a cluster, small ones batched, every one its own span.

How a run goes. ``prepare`` — before the run's clock starts, since all of it outlives the run
— connects (:mod:`~truepar.backends.ray.session`), takes one warm actor per worker slot the run
can use (at most the cluster's CPUs) from the pool, measures each node's clock against this one
(:mod:`~truepar.backends.ray.clocks`) and each actor's CPU so far. ``submit`` sends an op at
once on the least busy actor, or, when its kind is known to be tiny, holds it to the end of the
loop turn and sends the turn's tiny ops as a few chunks (:mod:`~truepar.backends.ray.batching`).
Each chunk runs on one of its actor's threads (a worker slot: ``worker`` = actor index + thread
× actors) and comes back as one outcome per op, measured there, moved onto this machine's
timeline. ``worker_cpu_s`` is the actors' CPU since the run started, so cores used counts the
CPU of every node that worked.

Failures. A dead actor (process or node lost) crashes the ops of its chunks — the scheduler
retries them per their ``retries`` — and is replaced by a fresh one. A timeout or Ctrl-C asks
the actor to stop the op its own way (its subprocess killed, its sleep woken); an op still
running :data:`GRACE_S` later has its actor killed (and replaced), which also crashes the ops
that shared it, each saying why. An actor that cannot be (re)started within
:data:`READY_TIMEOUT_S` — a lost cluster — fails the ops waiting for it with one clear error.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import functools
import itertools
import math
import pickle
import time
from typing import Any

from truepar.backends.base import Backend, Done, OpCall, Outcome, Slots
from truepar.backends.invoke import describe_error
from truepar.backends.ray import batching, clocks
from truepar.backends.ray.actor import CONTROL, THREADS, boot_id
from truepar.backends.ray.pool import Actor, Pool, pool_for
from truepar.backends.ray.session import cluster_nodes, connect, import_ray
from truepar.errors import BackendUnavailable, NotPicklableError
from truepar.records import Status

#: After asking an op to stop, how long before its actor is killed instead.
GRACE_S = 0.5
#: How long an actor may take to start (or to be replaced) before the cluster counts as lost.
READY_TIMEOUT_S = 60.0
#: Round trips per node when measuring its clock.
CLOCK_ROUNDS = 5
#: Chunks of batched ops in flight per actor: one running, one on its way. Tiny ops wait
#: for a place (a round trip at most) and so travel in ever fuller chunks.
PIPELINE = 2

#: Durations by op kind, for the whole process (see :mod:`truepar.backends.ray.batching`).
DURATIONS = batching.Durations()


@dataclasses.dataclass(eq=False)
class _Op:
    token: int
    call: OpCall
    done: Done
    kind: str
    chunk: _Chunk | None = None
    finished: bool = False
    grace: asyncio.TimerHandle | None = None


@dataclasses.dataclass(eq=False)
class _Chunk:
    actor: Actor
    slot: int
    worker: int
    ops: list[_Op]
    sent_ns: int
    #: A chunk of batched (tiny) ops, counted against its actor's :data:`PIPELINE`.
    batched: bool = False


@dataclasses.dataclass(eq=False)
class _Joined:
    """An actor this backend sends work to: its identity and its load."""

    actor: Actor
    info: dict[str, Any]
    slots: Slots = dataclasses.field(default_factory=Slots)
    busy: int = 0
    #: Chunks of batched ops in flight on it.
    batched: int = 0


class RayBackend(Backend):
    name = "ray"
    cpu_parallel = "yes"
    leaves_threads = True

    def __init__(self, workers: int, *, address: str | None = None) -> None:
        super().__init__(workers)
        #: The cluster (``auto``, ``ray://HOST:PORT``); ``None``: ``$TRUEPAR_RAY_ADDRESS``, else
        #: a local instance.
        self.address = address
        self._pool: Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._width = 1
        self._joined: dict[int, _Joined] = {}
        self._ops: dict[int, _Op] = {}
        self._tokens = itertools.count()
        self._batch: list[_Op] = []
        self._flush_handle: asyncio.Handle | None = None
        self._waiting: collections.deque[list[_Op]] = collections.deque()
        self._clocks: dict[str, clocks.NodeClock] = {}
        self._node_info: dict[str, dict[str, Any]] = {}
        self._cpu_base: dict[int, float] = {}
        self._cpu_last: dict[int, float] = {}
        self._rejoining: set[asyncio.Task[None]] = set()
        self._lost: str | None = None
        self._setup_s = 0.0

    # -- start ------------------------------------------------------------------------------

    async def prepare(self, parallel: int) -> None:
        """Connect, take warm actors (starting those missing), measure clocks: before the
        run's clock starts, since all of it outlives the run (its time is in the trace)."""
        t0 = time.monotonic()
        session = connect(self.address)
        ray = import_ray()
        self._loop = asyncio.get_running_loop()
        self._pool = pool_for(session)
        nodes = cluster_nodes(ray)
        if not nodes:
            raise BackendUnavailable("backend 'ray': the Ray cluster has no live node with a CPU")
        self._width = max(1, min(parallel, sum(n["cpus"] for n in nodes)))
        actors = self._pool.ensure(self._width)
        try:
            await asyncio.wait_for(
                asyncio.gather(*(self._join(a) for a in actors)), READY_TIMEOUT_S
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
        self._setup_s = time.monotonic() - t0

    async def _join(self, actor: Actor) -> None:
        """Wait for ``actor`` to be up, measure its node's clock if new, and take its CPU."""
        loop = self._loop
        assert loop is not None
        info = await self._watch(actor.ready)
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
        cpu = await self._control(actor, "cpu")
        self._cpu_base[id(actor)] = self._cpu_last[id(actor)] = cpu
        self._joined[actor.index] = _Joined(actor, info)

    async def _measure(self, actor: Actor, *, shared: bool) -> clocks.NodeClock:
        samples = []
        for _ in range(CLOCK_ROUNDS):
            sent = time.monotonic_ns()
            remote = await self._control(actor, "clock")
            samples.append((sent, int(remote), time.monotonic_ns()))
        return clocks.estimate(actor.ready.result()["node"], samples, shared=shared)

    def _control(self, actor: Actor, method: str, *args: Any) -> asyncio.Future[Any]:
        ref = getattr(actor.handle, method).options(concurrency_group=CONTROL).remote(*args)
        return self._watch(ref.future())

    def _watch(self, source: concurrent.futures.Future[Any]) -> asyncio.Future[Any]:
        """``source``'s result on the loop. Unlike ``asyncio.wrap_future``, cancelling what is
        returned leaves ``source`` alone: an actor's ``ready`` is shared by every run."""
        loop = self._loop
        assert loop is not None
        fut: asyncio.Future[Any] = loop.create_future()

        def copy(done: concurrent.futures.Future[Any]) -> None:
            if fut.done():
                return
            if done.cancelled():
                fut.cancel()
            elif (exc := done.exception()) is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(done.result())

        def on_done(done: concurrent.futures.Future[Any]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
                loop.call_soon_threadsafe(copy, done)

        source.add_done_callback(on_done)
        return fut

    # -- dispatch ---------------------------------------------------------------------------

    def submit(self, call: OpCall, done: Done) -> None:
        op = _Op(next(self._tokens), call, done, batching.op_kind(call.op))
        call.handle = op
        self._ops[op.token] = op
        if DURATIONS.batchable(op.kind, call.timeout_s):
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

    def _place(self, ops: list[_Op]) -> None:
        if self._lost is not None:
            for op in ops:
                self._finish(op, BackendUnavailable(self._lost))
            return
        joined = self._least_busy()
        if joined is None:
            self._waiting.append(ops)
        else:
            self._send(joined, ops)

    def _least_busy(self) -> _Joined | None:
        free = [j for j in self._joined.values() if j.busy < THREADS and j.actor.dead is None]
        return min(free, key=lambda j: (j.busy, j.actor.index)) if free else None

    def _send(self, joined: _Joined, ops: list[_Op], *, batched: bool = False) -> None:
        actor, info = joined.actor, joined.info
        slot = joined.slots.acquire()
        joined.busy += 1
        joined.batched += batched
        worker = actor.index + slot * self._width
        chunk = _Chunk(actor, slot, worker, ops, time.monotonic_ns(), batched)
        for op in ops:
            op.chunk = chunk
            call = op.call
            call.worker, call.pid, call.host, call.node = (
                worker,
                info["pid"],
                info["host"],
                info["node"],
            )
            call.started_ns = chunk.sent_ns
        ref = actor.handle.run_chunk.remote(worker, self._payload(chunk))
        ref.future().add_done_callback(functools.partial(self._from_ray, chunk))

    def _payload(self, chunk: _Chunk) -> bytes:
        """The chunk's calls, pickled here (plain pickle is twice as fast as Ray's
        cloudpickle; a function defined in ``__main__`` or a lambda needs the latter). An op
        that cannot be pickled at all fails alone, at once, as on ``processes``."""
        items = [(op.token, op.call) for op in chunk.ops]
        try:
            return pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # pickle raises several types for what it cannot pickle
            pass
        dumps = import_ray().cloudpickle.dumps
        kept = []
        for op in chunk.ops:
            try:
                dumps(op.call)
            except Exception as exc:
                err = NotPicklableError(
                    f"op {op.call.op.id!r} cannot run on the ray backend: it cannot be pickled "
                    f"({exc}); use a module-level function and plain arguments, or another backend"
                )
                assert self._loop is not None
                op.finished = True
                self._ops.pop(op.token, None)
                self._loop.call_soon(op.done, err)
            else:
                kept.append((op.token, op.call))
        chunk.ops[:] = [op for op in chunk.ops if not op.finished]
        return bytes(dumps(kept))

    def _from_ray(self, chunk: _Chunk, fut: concurrent.futures.Future[Any]) -> None:
        """On a Ray thread: hand the chunk's end to the loop."""
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop closed: the run is over
            self._loop.call_soon_threadsafe(self._chunk_done, chunk, fut)

    def _chunk_done(self, chunk: _Chunk, fut: concurrent.futures.Future[Any]) -> None:
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
            key = id(chunk.actor)
            self._cpu_last[key] = max(self._cpu_last.get(key, cpu_s), cpu_s)
            now = time.monotonic_ns()
            for token, outcome in results:
                op = self._ops.get(token)
                if op is not None and not op.finished:
                    self._finish(op, self._aligned(outcome, chunk, now))
            for op in chunk.ops:  # never left without an answer
                if not op.finished:
                    self._finish(op, self._crashed(op, chunk, "no outcome came back from Ray"))
        self._pump()

    def _aligned(self, outcome: Outcome, chunk: _Chunk, now: int) -> Outcome:
        """The outcome on this machine's clock, inside what this machine saw of its chunk."""
        clock = self._clocks.get(outcome.node or "")
        start, end = clocks.fit(clock, outcome.start_ns, outcome.end_ns, chunk.sent_ns, now)
        return dataclasses.replace(outcome, start_ns=start, end_ns=end)

    def _chunk_failed(self, chunk: _Chunk, exc: BaseException) -> None:
        exceptions = import_ray().exceptions
        lost = (exceptions.RayActorError, exceptions.WorkerCrashedError, exceptions.NodeDiedError)
        if not isinstance(exc, lost):
            for op in chunk.ops:  # Ray could not carry the call (e.g. a result it cannot read)
                if not op.finished:
                    self._finish(op, exc)
            return
        actor = chunk.actor
        why = actor.dead or f"its Ray actor died ({_first_line(exc)})"
        for op in chunk.ops:
            if not op.finished:
                self._finish(op, self._crashed(op, chunk, why))
        self._replace(actor, why)

    def _crashed(self, op: _Op, chunk: _Chunk, why: str) -> Outcome:
        call, now = op.call, time.monotonic_ns()
        start = call.started_ns or chunk.sent_ns
        return Outcome(
            Status.CRASHED,
            start,
            now,
            call.pid,
            0,
            chunk.worker,
            None,
            error=why,
            host=call.host,
            node=call.node,
        )

    def _replace(self, actor: Actor, why: str) -> None:
        joined = self._joined.get(actor.index)
        if joined is None or joined.actor is not actor:
            return
        del self._joined[actor.index]
        assert self._pool is not None and self._loop is not None
        fresh = self._pool.replace(actor, why)
        task = self._loop.create_task(self._rejoin(fresh))
        self._rejoining.add(task)
        task.add_done_callback(self._rejoining.discard)

    async def _rejoin(self, actor: Actor) -> None:
        try:
            await asyncio.wait_for(self._join(actor), READY_TIMEOUT_S)
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

    def _pump(self) -> None:
        """A place freed up: send what waits for one."""
        while self._waiting:
            joined = self._least_busy()
            if joined is None:
                break
            self._send(joined, self._waiting.popleft())
        if self._batch and self._flush_handle is None:
            self._flush()

    def _finish(self, op: _Op, result: Outcome | BaseException) -> None:
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
        op: _Op | None = call.handle
        if op is None or op.finished:
            return
        loop = self._loop
        assert loop is not None
        if op.chunk is None:  # not sent yet: it never started
            if op in self._batch:
                self._batch.remove(op)
            for group in self._waiting:
                if op in group:
                    group.remove(op)
            self._waiting = collections.deque(g for g in self._waiting if g)
            op.finished = True
            self._ops.pop(op.token, None)
            loop.call_soon(op.done, asyncio.CancelledError())
            return
        with contextlib.suppress(Exception):  # a dead actor: its chunk reports the crash
            self._control(op.chunk.actor, "cancel", [op.token])
        if op.grace is None:
            op.grace = loop.call_later(GRACE_S, self._force_stop, op)

    def _force_stop(self, op: _Op) -> None:
        """The op did not stop when asked: kill its actor (and replace it)."""
        op.grace = None
        if op.finished or op.chunk is None:
            return
        actor = op.chunk.actor
        why = (
            f"its Ray actor was killed to stop op {op.call.op.id!r}, which did not stop within "
            f"{GRACE_S:g} s of being asked"
        )
        assert self._pool is not None
        self._pool.kill(actor, why)
        self._finish(op, asyncio.CancelledError())

    async def aclose(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        for task in list(self._rejoining):
            task.cancel()
        # The actors stay warm in the pool for the next run of this process.

    # -- what the trace says ----------------------------------------------------------------

    def worker_cpu_s(self) -> float:
        return sum(self._cpu_last[k] - base for k, base in self._cpu_base.items())

    def nodes(self) -> list[dict[str, Any]]:
        out = []
        for node, info in self._node_info.items():
            actors = [j for j in self._joined.values() if j.info["node"] == node]
            out.append(
                {
                    **info,
                    "actors": len(actors),
                    "pids": sorted({j.info["pid"] for j in actors}),
                    "clock": self._clocks[node].to_json(),
                    "setup_s": self._setup_s,
                }
            )
        return out


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
