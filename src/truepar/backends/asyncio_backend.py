"""``async``: every op a coroutine on one asyncio event loop, in this thread.

Subprocesses, HTTP and sleeps are truly non-blocking here; file tools run in a helper thread, as
anyio does (asyncio has no non-blocking file I/O). A plain sync ``python`` function runs inline
and blocks the loop while it runs — exactly what it does inside an agent framework — so its
"parallel" tool calls come out serialized, and truepar's measurements show it.
"""

from __future__ import annotations

from truepar.backends.base import Backend, OpCall, Outcome, Slots
from truepar.backends.invoke import ainvoke
from truepar.tools.base import ToolContext


class AsyncBackend(Backend):
    name = "async"

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self._slots = Slots()

    async def execute(self, call: OpCall) -> Outcome:
        worker = self._slots.acquire()
        call.worker = worker
        try:
            return await ainvoke(call, ToolContext(call.root, call.plan_dir), worker)
        finally:
            self._slots.release(worker)
