"""``sequential``: one op at a time, inline on the calling thread — the honest baseline.

No pool, no hand-off, nothing between ops but the scheduler. A timeout cannot interrupt Python
code running inline, so a watchdog thread cancels the op's context instead: a subprocess is
killed and a sleep wakes at once; a pure-Python op runs to its end and is then reported
``timeout`` all the same.
"""

from __future__ import annotations

import asyncio
import threading

from truepar.backends.base import Backend, Done, OpCall
from truepar.backends.invoke import invoke
from truepar.tools.base import ToolContext


class SequentialBackend(Backend):
    name = "sequential"

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self._current: ToolContext | None = None

    @property
    def max_workers(self) -> int:
        return 1

    def interrupt(self) -> None:
        current = self._current
        if current is not None:
            current.request_cancel()

    def submit(self, call: OpCall, done: Done) -> None:
        ctx = ToolContext(call.root, call.plan_dir)
        call.handle = ctx
        # Next loop turn, not now: the scheduler is still inside its dispatch loop.
        asyncio.get_running_loop().call_soon(self._run, call, ctx, done)

    def cancel(self, call: OpCall) -> None:
        ctx: ToolContext = call.handle
        ctx.request_cancel()

    def _run(self, call: OpCall, ctx: ToolContext, done: Done) -> None:
        if ctx.cancelled:  # cancelled before its turn came
            done(asyncio.CancelledError())
            return
        fired: list[bool] = []  # set by the watchdog; no Event per op when there is no timeout

        def expire() -> None:
            fired.append(True)
            ctx.request_cancel()

        watchdog = None
        if call.timeout_s is not None:
            watchdog = threading.Timer(call.timeout_s, expire)
            watchdog.daemon = True
            watchdog.start()
        self._current = ctx
        call.worker, call.thread_id = 0, threading.get_native_id()
        try:
            outcome = invoke(call, ctx, worker=0)
        finally:
            self._current = None
            if watchdog is not None:
                watchdog.cancel()
        if fired:
            # The loop was blocked, so the scheduler's own deadline could not fire: say it here.
            done(TimeoutError())
        elif ctx.cancelled:  # Ctrl-C reached the op through interrupt()
            done(asyncio.CancelledError())
        else:
            done(outcome)
