"""``threads``: ops on a pool of worker threads, one op per thread at a time.

Our own small pool instead of ``ThreadPoolExecutor`` for two reasons: worker ids must be stable
(one Gantt row per thread), and a thread that will not stop after a timeout must be *abandoned*
visibly — replaced by a fresh thread, counted, reported — rather than joined at interpreter exit
(``ThreadPoolExecutor``'s threads are, which would hang the process on a runaway op).
Threads start lazily, so a run of four ops on a 32-worker pool starts four threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable

from truepar.backends.base import Backend, Done, OpCall
from truepar.backends.invoke import invoke
from truepar.tools.base import ToolContext

#: How long a cancelled op's thread gets to notice (subprocess killed, sleep woken) before it is
#: declared abandoned.
GRACE_S = 0.5


class _Job:
    """One op for one thread; ``state`` goes pending → done, or pending → abandoned."""

    __slots__ = ("ctx", "done", "fn", "state", "thread_ident")

    def __init__(
        self, fn: Callable[[int], Callable[[], None]], ctx: ToolContext, done: Done
    ) -> None:
        self.fn = fn
        self.ctx = ctx
        self.done = done
        self.state = "pending"
        self.thread_ident: int | None = None


class _Pool:
    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0  # live and not abandoned
        self._idle = 0
        self._next_id = 0
        self._live: list[threading.Thread] = []
        #: Threads wanted but not started yet, and threads busy starting others (see _spawn).
        self._needed = 0
        self._starting = 0

    def submit(self, job: _Job) -> None:
        start_one = False
        with self._lock:
            if self._idle > 0:
                self._idle -= 1
            else:
                self._needed += 1
                if self._starting == 0:
                    self._needed -= 1
                    self._starting += 1
                    start_one = True
        self._jobs.put(job)
        if start_one:
            self._start_thread()

    def _start_thread(self) -> None:
        with self._lock:
            worker = self._next_id
            self._next_id += 1
            self._threads += 1
            thread = threading.Thread(
                target=self._loop, args=(worker,), name=f"truepar-worker-{worker}", daemon=True
            )
            self._live.append(thread)
        thread.start()

    def _spawn(self) -> None:
        """Start up to two more threads if more are wanted: a tree, not a queue.

        Starting a thread waits until it runs (~0.1-0.3 ms here); 32 started one after another
        by the event loop would hold back the 32nd op by milliseconds. Started by the threads
        themselves, two each, they are all up after a handful of those waits.
        """
        spawned = 0
        while True:
            with self._lock:
                if self._needed == 0 or spawned == 2:
                    self._starting -= 1  # if work is still wanted, the two children go on
                    return
                self._needed -= 1
                self._starting += 1
            self._start_thread()
            spawned += 1

    def _loop(self, worker: int) -> None:
        self._spawn()
        jobs = self._jobs
        while True:
            job = jobs.get()
            if job is None:
                return
            job.thread_ident = threading.get_ident()
            deliver = job.fn(worker)
            with self._lock:
                if job.state == "abandoned":
                    return  # a replacement already took this thread's place
                job.state = "done"
                self._idle += 1
            deliver()

    def abandon(self, job: _Job) -> bool:
        """Give up on a job's thread unless it finished meanwhile. True if abandoned."""
        with self._lock:
            if job.state != "pending":
                return False
            job.state = "abandoned"
            self._threads -= 1
            self._live = [t for t in self._live if t.ident != job.thread_ident]
            return True

    def shutdown(self) -> None:
        """Stop the idle threads and wait for them: a process left with stray threads can no
        longer fork its process workers safely (see the processes backend)."""
        with self._lock:
            n, self._threads, self._idle = self._threads, 0, 0
            live, self._live = self._live, []
        for _ in range(n):
            self._jobs.put(None)
        for thread in live:
            thread.join(timeout=1.0)


class ThreadRunner:
    """Sync attempts on a pool of daemon threads; an attempt that ignores a cancel for
    ``GRACE_S`` is abandoned (its thread left to finish alone, replaced, counted, reported).

    Serves the ``threads`` backend, and the ``async`` backend for tools without async I/O.
    """

    def __init__(self) -> None:
        self._pool = _Pool()
        self.abandoned = 0

    def submit(self, call: OpCall, done: Done, worker: int | None = None) -> None:
        """Run ``call`` on a thread; its span's worker is ``worker``, or the thread's number."""
        loop = asyncio.get_running_loop()
        ctx = ToolContext(call.root, call.plan_dir)
        job: _Job

        def run(thread_worker: int) -> Callable[[], None]:
            call.worker = thread_worker if worker is None else worker
            call.thread_id = threading.get_native_id()
            outcome = invoke(call, ctx, call.worker)
            call.returned_ns = outcome.end_ns  # read only if it was abandoned meanwhile

            def deliver() -> None:
                with contextlib.suppress(RuntimeError):  # the loop is gone after an abandon
                    loop.call_soon_threadsafe(done, outcome)

            return deliver

        job = _Job(run, ctx, done)
        call.handle = job
        self._pool.submit(job)

    def cancel(self, call: OpCall) -> None:
        job: _Job = call.handle
        job.ctx.request_cancel()  # kills its subprocess, wakes its sleep
        asyncio.get_running_loop().call_later(GRACE_S, self._abandon_if_stuck, call)

    def _abandon_if_stuck(self, call: OpCall) -> None:
        job: _Job = call.handle
        if self._pool.abandon(job):
            call.abandoned = True
            self.abandoned += 1
            job.done(asyncio.CancelledError())

    def shutdown(self) -> None:
        self._pool.shutdown()


class ThreadsBackend(Backend):
    name = "threads"
    cpu_parallel = "without_gil"

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self._runner = ThreadRunner()

    @property
    def abandoned_threads(self) -> int:
        return self._runner.abandoned

    def submit(self, call: OpCall, done: Done) -> None:
        self._runner.submit(call, done)

    def cancel(self, call: OpCall) -> None:
        self._runner.cancel(call)

    async def aclose(self) -> None:
        self._runner.shutdown()
