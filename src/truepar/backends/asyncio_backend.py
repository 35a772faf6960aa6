"""``async``: every op a coroutine on one asyncio event loop, in this thread.

Subprocesses, HTTP and sleeps are truly non-blocking here; file tools run in a helper thread, as
anyio does (asyncio has no non-blocking file I/O). A plain sync ``python`` function runs inline
and blocks the loop while it runs — exactly what it does inside an agent framework — so its
"parallel" tool calls come out serialized, and truepar's measurements show it.
"""

from __future__ import annotations

import asyncio
import threading

from truepar.backends.base import Backend, Done, OpCall, Slots
from truepar.backends.invoke import ainvoke
from truepar.tools.base import ToolContext


class AsyncBackend(Backend):
    name = "async"

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self._slots = Slots()

    def submit(self, call: OpCall, done: Done) -> None:
        worker = self._slots.acquire()
        call.worker, call.thread_id = worker, threading.get_native_id()
        task = asyncio.get_running_loop().create_task(
            ainvoke(call, ToolContext(call.root, call.plan_dir), worker)
        )
        call.handle = task

        def finished(t: asyncio.Task[object]) -> None:
            self._slots.release(worker)
            if t.cancelled():
                done(asyncio.CancelledError())
                return
            exc = t.exception()
            done(exc if exc is not None else t.result())  # type: ignore[arg-type]

        task.add_done_callback(finished)

    def cancel(self, call: OpCall) -> None:
        task: asyncio.Task[object] = call.handle
        task.cancel()
