"""``async``: every op a coroutine on one asyncio event loop, in this thread.

Subprocesses, HTTP and sleeps are truly non-blocking here. File tools run on helper threads, as
anyio does (asyncio has no non-blocking file I/O) — truepar's own daemon threads, not the loop's
default executor: a file read that never returns (a hung network mount) is abandoned after its
timeout or a Ctrl-C, visibly, instead of holding the run open at exit. A plain sync ``python``
function runs inline and blocks the loop while it runs — exactly what it does inside an agent
framework — so its "parallel" tool calls come out serialized, and truepar's measurements show
it; the loop's guard stops it at its deadline (see :mod:`truepar.backends.inline`), and ops it
kept from running are not blamed for its time.
"""

from __future__ import annotations

import asyncio
import threading

from truepar.backends.base import Backend, Done, OpCall, Slots
from truepar.backends.inline import loop_guard
from truepar.backends.invoke import ainvoke
from truepar.backends.threads import ThreadRunner
from truepar.tools import TOOLS
from truepar.tools.base import ToolContext


class AsyncBackend(Backend):
    name = "async"
    event_loop = True

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self._slots = Slots()
        #: Threads for the tools without async I/O, made on first use.
        self._threads: ThreadRunner | None = None

    @property
    def abandoned_threads(self) -> int:
        return self._threads.abandoned if self._threads is not None else 0

    def submit(self, call: OpCall, done: Done) -> None:
        worker = self._slots.acquire()

        def finished(result: object) -> None:
            self._slots.release(worker)
            done(result)  # type: ignore[arg-type]

        if TOOLS[call.op.tool].arun is None:
            if self._threads is None:
                self._threads = ThreadRunner()
            self._threads.submit(call, finished, worker)
            return
        call.worker, call.thread_id = worker, threading.get_native_id()
        task = asyncio.get_running_loop().create_task(
            ainvoke(call, ToolContext(call.root, call.plan_dir), worker, loop_guard())
        )
        call.handle = task

        def task_done(t: asyncio.Task[object]) -> None:
            if t.cancelled():
                finished(asyncio.CancelledError())
                return
            exc = t.exception()
            finished(exc if exc is not None else t.result())

        task.add_done_callback(task_done)

    def cancel(self, call: OpCall) -> None:
        if isinstance(call.handle, asyncio.Task):
            call.handle.cancel()
        elif self._threads is not None:
            self._threads.cancel(call)

    async def aclose(self) -> None:
        if self._threads is not None:
            self._threads.shutdown()
