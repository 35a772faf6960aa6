"""``sequential``: one op at a time, inline on the calling thread — the honest baseline.

No pool, no hand-off, nothing between ops but the scheduler. A timeout cannot interrupt Python
code running inline, so a watchdog thread cancels the op's context instead: a subprocess is
killed and a sleep wakes at once; a pure-Python op runs to its end and is then reported
``timeout`` all the same.
"""

from __future__ import annotations

import asyncio
import threading

from truepar.backends.base import Backend, OpCall, Outcome
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

    async def execute(self, call: OpCall) -> Outcome:
        ctx = ToolContext(call.root, call.plan_dir)
        timeout = call.timeout_s
        watchdog = None
        fired = threading.Event()

        def expire() -> None:
            fired.set()
            ctx.request_cancel()

        if timeout is not None:
            watchdog = threading.Timer(timeout, expire)
            watchdog.daemon = True
            watchdog.start()
        self._current = ctx
        call.worker = 0
        try:
            outcome = invoke(call, ctx, worker=0)
        finally:
            self._current = None
            if watchdog is not None:
                watchdog.cancel()
        if fired.is_set():
            # The loop was blocked, so the scheduler's own deadline could not fire: say it here.
            raise TimeoutError
        if ctx.cancelled:  # Ctrl-C reached the op through interrupt()
            raise asyncio.CancelledError
        return outcome
