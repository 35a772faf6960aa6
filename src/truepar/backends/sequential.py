"""``sequential``: one op at a time, inline on the calling thread — the honest baseline.

No pool, no hand-off, nothing between ops but the scheduler. While an op runs inline the event
loop is blocked, so its deadline and Ctrl-C reach it through the loop's guard (see
:mod:`truepar.backends.inline`): asked to stop at its deadline (a subprocess is killed, a sleep
wakes), and interrupted ``GRACE_S`` later if it still runs (pure Python, a blocked read). Its
span ends when it really stopped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading

from truepar.backends.base import Backend, Done, OpCall
from truepar.backends.inline import loop_guard
from truepar.backends.invoke import invoke
from truepar.records import Status
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
        self._current = ctx
        call.worker, call.thread_id = 0, threading.get_native_id()
        try:
            outcome = invoke(call, ctx, worker=0, guard=loop_guard())
        finally:
            self._current = None
        if ctx.cancelled and outcome.status not in (Status.TIMEOUT, Status.CANCELLED):
            # Cancelled while it ran (Ctrl-C off the main thread): it stopped, not failed.
            outcome = dataclasses.replace(outcome, status=Status.CANCELLED, error=None)
        done(outcome)
