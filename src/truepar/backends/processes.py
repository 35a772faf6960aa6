"""``processes``: ops in worker processes, one op per worker at a time, each on its own pipe.

Our own pool rather than ``ProcessPoolExecutor``: when a worker dies there, every pending future
fails with ``BrokenProcessPool`` and the pool is dead. Here each worker has its own pipe, so the
parent knows exactly which op a dead worker was running: that op is ``crashed``, the worker is
replaced, every other op carries on. A timeout kills the worker (and the subprocesses it started)
instead of waiting for it.

Starting a worker: when this process has a single thread, a plain ``fork`` (a few milliseconds,
and the worker inherits every imported module, ``__main__`` included). With other threads alive a
fork could copy a lock some thread holds, so then a fork server (``forkserver``, preloaded with
truepar) is used: safe, but its first start costs a fresh interpreter, and, as with any
``ProcessPoolExecutor`` that does not fork, a script must guard its entry point with
``if __name__ == "__main__":``. The server runs that script once for all the workers it forks
(:mod:`truepar.backends.forkserver_main`), not each worker again.

How many: never more workers than the run can use (ops that can run at once on this backend),
and never more than :func:`process_ceiling` — 8 per usable core, fewer if memory is short —
however many ``workers`` were asked for: a plan asking for more runs with the ceiling (the
engine warns), so a typo of ``workers`` cannot fork the machine to death.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import threading
import time
from typing import Any

import psutil

from truepar.backends import forkserver_main
from truepar.backends import worker as worker_module
from truepar.backends.base import Backend, Done, OpCall, Outcome
from truepar.errors import BackendUnavailable, NotPicklableError
from truepar.lifeline import release as lifeline_release
from truepar.lifeline import watch as lifeline_watch
from truepar.records import Status

#: Seconds to wait for a worker to exit after it was asked to (or killed) before giving up.
JOIN_S = 1.0
#: Worker processes per usable core at most, and the memory each is budgeted (a forked worker
#: shares most of its pages with us; a fork server's is a fresh interpreter of ~30-60 MiB).
PER_CORE = 8
MEMORY_PER_WORKER = 64 << 20


def process_ceiling() -> int:
    """The most worker processes truepar starts at once on this machine.

    ``8 × usable cores`` (the CPU affinity mask, not the machine's count), and no more than
    available memory holds at 64 MiB a worker; never below 2. Ops that wait rather than compute
    go further on ``threads`` or ``async``, which have no such ceiling.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    by_memory = psutil.virtual_memory().available // MEMORY_PER_WORKER
    return max(2, min(PER_CORE * cores, int(by_memory)))


def _mp_context() -> multiprocessing.context.BaseContext:
    """``fork`` while it is safe (one thread), else ``forkserver``; ``spawn`` off Linux."""
    if not sys.platform.startswith("linux"):
        return multiprocessing.get_context("spawn")
    if threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["truepar.backends.forkserver_main", "truepar.backends.worker"])
    return ctx


class _Worker:
    def __init__(self, ctx: multiprocessing.context.BaseContext, worker_id: int) -> None:
        parent, child = ctx.Pipe(duplex=True)
        self.id = worker_id
        self.conn: multiprocessing.connection.Connection = parent
        method = ctx.get_start_method()
        forks = method == "fork"
        self.proc = ctx.Process(  # type: ignore[attr-defined]
            target=worker_module.main,
            args=(child, worker_id, os.getpid() if forks else None),
            daemon=True,
            name=f"truepar-worker-{worker_id}",
        )
        with forkserver_main.exported() if method == "forkserver" else contextlib.nullcontext():
            self.proc.start()
        child.close()
        self.pid: int = self.proc.pid
        lifeline_watch(self.pid)  # the worker leads its own process group
        #: A forked or spawned worker is our child: once reaped, ``getrusage(RUSAGE_CHILDREN)``
        #: counts its CPU. A fork server's worker is not, so we keep counting it ourselves.
        self.is_child = method != "forkserver"
        #: Cumulative CPU seconds the worker reported last (process + its reaped children).
        self.cpu_s = 0.0
        self.ready = False
        #: The attempt this worker runs now, and whom to tell when it ends.
        self.current: tuple[OpCall, Done] | None = None

    def recv(self) -> Any:
        msg = pickle.loads(self.conn.recv_bytes())
        self.cpu_s = msg[-1]
        return msg

    def cpu_now(self) -> float:
        """Best current CPU figure, for a worker about to be killed (clock-tick resolution)."""
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(self.pid).cpu_times()
            self.cpu_s = max(self.cpu_s, t.user + t.system + t.children_user + t.children_system)
        return self.cpu_s

    def exit_description(self) -> str:
        self.proc.join(timeout=1.0)
        code = self.proc.exitcode
        if code is None:
            return f"worker process {self.pid} stopped answering"
        if code < 0:
            return f"worker process {self.pid} was killed by {signal.Signals(-code).name}"
        return f"worker process {self.pid} died (exit code {code})"

    def stop(self, *, kill: bool) -> None:
        self.cpu_now()
        with contextlib.suppress(OSError):
            self.conn.close()
        if kill:
            # The worker leads a process group holding every subprocess its op started:
            # one SIGKILL to the group ends them all, with no grace period to wait out.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        self.proc.join(JOIN_S)
        if self.proc.exitcode is not None:
            lifeline_release(self.pid)


class ProcessesBackend(Backend):
    name = "processes"
    cpu_parallel = "yes"

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._retired_cpu_s = 0.0
        self._next_id = 0
        self._free_ids: list[int] = []
        self._ceiling = min(workers, process_ceiling())
        #: Calls submitted while every allowed worker was busy (only when another backend's
        #: plan sends ops here with more workers than this backend's ceiling).
        self._queued: list[tuple[OpCall, Done]] = []

    @property
    def max_workers(self) -> int:
        return self._ceiling

    @property
    def ceiling_note(self) -> str | None:
        if self._ceiling >= self.workers:
            return None
        return (
            f"workers {self.workers} is more worker processes than this machine takes: the "
            f"processes backend runs at most {self._ceiling} at once here ({PER_CORE} per "
            "usable core, memory permitting)"
        )

    def worker_cpu_s(self) -> float:
        return self._retired_cpu_s + sum(w.cpu_s for w in self._all)

    def _get_worker(self) -> _Worker:
        if self._idle:
            return self._idle.pop()
        worker_id = min(self._free_ids) if self._free_ids else self._next_id
        if self._free_ids:
            self._free_ids.remove(worker_id)
        else:
            self._next_id += 1
        # Started from the loop's thread, synchronously: an executor thread would make the
        # process multi-threaded and rule out the fast, safe fork.
        worker = _Worker(_mp_context(), worker_id)
        self._all.append(worker)
        return worker

    def _retire(self, worker: _Worker, *, kill: bool) -> None:
        worker.stop(kill=kill)
        self._all.remove(worker)
        if not worker.is_child:
            self._retired_cpu_s += worker.cpu_s
        self._free_ids.append(worker.id)

    async def start(self, parallel: int) -> None:
        """Start the workers the run can use now (all at once), not one by one as ops arrive."""
        loop = asyncio.get_running_loop()
        missing = min(parallel, self._ceiling) - len(self._all)
        if missing <= 0:
            return
        fresh = [self._get_worker() for _ in range(missing)]
        waiting = {w: loop.create_future() for w in fresh}

        def on_ready(worker: _Worker) -> None:
            loop.remove_reader(worker.conn.fileno())
            fut = waiting[worker]
            try:
                worker.recv()
                worker.ready = True
                fut.set_result(None)
            except (EOFError, OSError):
                fut.set_exception(self._start_failure(worker))

        for worker in fresh:
            loop.add_reader(worker.conn.fileno(), on_ready, worker)
        try:
            await asyncio.gather(*waiting.values())
        finally:
            for worker in fresh:
                if not worker.conn.closed:
                    loop.remove_reader(worker.conn.fileno())
        self._idle.extend(fresh)

    def _start_failure(self, worker: _Worker) -> BackendUnavailable:
        why = worker.exit_description()
        self._retire(worker, kill=True)
        return BackendUnavailable(
            f"processes backend: a {why} while starting; in a script, start runs under "
            "`if __name__ == '__main__':` (worker processes may import the main module)"
        )

    def submit(self, call: OpCall, done: Done) -> None:
        try:
            payload = pickle.dumps(call)
        except Exception as exc:  # pickle raises several types for unpicklable objects
            err = NotPicklableError(
                f"op {call.op.id!r} cannot run on the processes backend: it cannot be pickled"
                f" ({exc}); use a module-level function and plain arguments, or another backend"
            )
            raise err from exc
        if not self._idle and len(self._all) >= self._ceiling:
            call.handle = None
            self._queued.append((call, done))
            return
        self._send(call, done, payload)

    def _send(self, call: OpCall, done: Done, payload: bytes) -> None:
        worker = self._get_worker()
        # Ops run on the worker's main thread, whose thread id on Linux is its pid.
        call.worker, call.pid, call.thread_id, call.handle = (
            worker.id,
            worker.pid,
            worker.pid,
            worker,
        )
        worker.current = (call, done)
        call.started_ns = time.monotonic_ns()
        # A worker still starting reads this after sending "ready"; the pipe holds it meanwhile.
        worker.conn.send_bytes(payload)
        asyncio.get_running_loop().add_reader(worker.conn.fileno(), self._on_readable, worker)

    def _on_readable(self, worker: _Worker) -> None:
        loop = asyncio.get_running_loop()
        assert worker.current is not None
        call, done = worker.current
        try:
            msg = worker.recv()
        except (EOFError, OSError):  # the worker died under its op
            loop.remove_reader(worker.conn.fileno())
            worker.current = None
            if not worker.ready:
                done(self._start_failure(worker))
                self._next_queued()
                return
            why = worker.exit_description()
            self._retire(worker, kill=True)
            self._next_queued()
            now = self.clock_ns()
            start = call.started_ns or now
            done(Outcome(Status.CRASHED, start, now, worker.pid, 0, worker.id, None, error=why))
            return
        if msg[0] == "ready":
            worker.ready = True
            return
        loop.remove_reader(worker.conn.fileno())
        worker.current = None
        self._idle.append(worker)
        self._next_queued()
        done(msg[1])

    def _next_queued(self) -> None:
        """A worker is free (or may be started again): give it the oldest queued call."""
        if self._queued and (self._idle or len(self._all) < self._ceiling):
            call, done = self._queued.pop(0)
            self._send(call, done, pickle.dumps(call))

    def cancel(self, call: OpCall) -> None:
        """Kill the worker (and, with its process group, every subprocess the op started)."""
        worker: _Worker | None = call.handle
        if worker is None:  # still queued: it never started
            for i, (queued, done) in enumerate(self._queued):
                if queued is call:
                    del self._queued[i]
                    asyncio.get_running_loop().call_soon(done, asyncio.CancelledError())
            return
        if worker.current is None or worker.current[0] is not call:
            return
        _, done = worker.current
        worker.current = None
        loop = asyncio.get_running_loop()
        loop.remove_reader(worker.conn.fileno())
        self._retire(worker, kill=True)
        self._next_queued()
        loop.call_soon(done, asyncio.CancelledError())

    async def aclose(self) -> None:
        for worker in list(self._all):
            with contextlib.suppress(OSError):
                worker.conn.send_bytes(pickle.dumps(None))
        for worker in list(self._all):
            self._retire(worker, kill=False)
        self._idle.clear()
