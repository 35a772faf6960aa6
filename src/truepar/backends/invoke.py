"""Run one tool call and measure it where it runs: the one place spans get their numbers.

``invoke`` (sync) serves the sequential and threads backends and the process workers; ``ainvoke``
serves the async backend. Both time the call on the monotonic clock and charge it the CPU of the
thread (or process) that ran it, plus the rusage of subprocesses it waited for.

Code that runs on the event loop's own thread (every op of ``sequential``, each step of an
``async`` op) is watched by the loop's :class:`~truepar.backends.inline.LoopGuard`: asked to
stop at its deadline or on Ctrl-C and interrupted if it does not, its outcome then says
``timeout`` or ``cancelled`` — with the real end, never the deadline's.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from truepar.backends.base import OpCall, Outcome, make_outcome
from truepar.backends.inline import LoopGuard, OpInterrupted, deadline_ns
from truepar.errors import OpError, ThrottledError
from truepar.records import Status
from truepar.tools import TOOLS
from truepar.tools.base import ToolContext, ToolOutput


def describe_error(exc: BaseException) -> str:
    """One line: our own errors as they are, anything else with its type and where it came from."""
    if isinstance(exc, OpError):
        return str(exc)
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        text += f" (at {os.path.basename(last.filename)}:{last.lineno} in {last.name})"
    return text


#: The status of an attempt the loop's guard stopped, by the reason it gives.
_STOPPED = {"timeout": Status.TIMEOUT, "interrupted": Status.CANCELLED}


def _outcome(
    out: ToolOutput | None,
    exc: BaseException | None,
    ctx: ToolContext,
    t0: int,
    t1: int,
    cpu_ns: int,
    worker: int,
    stopped: str | None = None,
) -> Outcome:
    child = ctx.child_cpu_s
    cpu = cpu_ns / 1e9 + child
    tid = threading.get_native_id()
    pid = os.getpid()
    if out is not None:
        throttled = out.throttled
    else:
        throttled = exc.throttled if isinstance(exc, ThrottledError) else 0
    if stopped is not None:
        # Asked to stop (deadline, Ctrl-C) while it held the loop: whatever it returned then,
        # the attempt is a timeout or cancelled; the scheduler words the error.
        value = out.value if out is not None else None
        summary = out.summary if out is not None else ""
        size = out.bytes_out if out is not None else 0
        return Outcome(
            _STOPPED[stopped],
            t0,
            t1,
            pid,
            tid,
            worker,
            cpu,
            child,
            value,
            summary,
            size,
            throttled=throttled,
        )
    if out is None:
        assert exc is not None
        return Outcome(
            Status.FAILED,
            t0,
            t1,
            pid,
            tid,
            worker,
            cpu,
            child,
            error=describe_error(exc),
            throttled=throttled,
        )
    status = Status.OK if out.error is None else Status.FAILED
    return make_outcome(
        status,
        t0,
        t1,
        pid,
        tid,
        worker,
        cpu,
        child,
        out.value,
        out.summary,
        out.bytes_out,
        out.error,
        out.tokens_out,
        throttled,
    )


def invoke(
    call: OpCall,
    ctx: ToolContext,
    worker: int,
    cpu_clock: Callable[[], int] = time.thread_time_ns,
    guard: LoopGuard | None = None,
) -> Outcome:
    """Run ``call`` here, now, in this thread; ``guard`` when this thread runs the loop."""
    tool = TOOLS[call.op.tool]
    out: ToolOutput | None = None
    exc: BaseException | None = None
    stopped: str | None = None
    c0 = cpu_clock()
    t0 = time.monotonic_ns()
    call.started_ns = t0
    try:
        if guard is None:
            out = tool.run(call.op, ctx)
        else:
            guard.enter(call, ctx, deadline_ns(t0, call.timeout_s))
            try:
                out = tool.run(call.op, ctx)
            finally:
                stopped = guard.leave()
    except OpInterrupted as e:
        if guard is not None:
            guard.leave()  # in case the interrupt landed before the first leave() finished
        stopped = e.reason
    except Exception as e:
        exc = e
    t1 = time.monotonic_ns()
    return _outcome(out, exc, ctx, t0, t1, cpu_clock() - c0, worker, stopped)


async def ainvoke(
    call: OpCall, ctx: ToolContext, worker: int, guard: LoopGuard | None = None
) -> Outcome:
    """Run ``call``, a tool with async I/O (``arun``), on the running event loop.

    ``guard``: the loop's guard, told of each step of the op (see :class:`_Steps`).
    """
    arun = TOOLS[call.op.tool].arun
    assert arun is not None, f"{call.op.tool} has no async implementation"
    out: ToolOutput | None = None
    exc: BaseException | None = None
    t0 = time.monotonic_ns()
    call.started_ns = t0
    steps = _Steps(arun(call.op, ctx), call, ctx, guard)
    try:
        out = await steps
    except asyncio.CancelledError:
        ctx.request_cancel()
        raise
    except OpInterrupted as e:
        if guard is not None:
            guard.leave()  # in case the interrupt landed before the step's leave() finished
        steps.stopped = e.reason
    except Exception as e:
        exc = e
    t1 = time.monotonic_ns()
    return _outcome(out, exc, ctx, t0, t1, steps.cpu_ns, worker, steps.stopped)


class _Steps:
    """Await a coroutine one step at a time: charge it each step's thread CPU, and tell the
    loop's guard that it holds the loop during each step.

    Coroutines of one loop interleave on one thread, so the thread's CPU clock around the whole
    await would charge an op for its neighbours' work; timing each step charges only its own.
    A step that does not give the loop back (a sync call inside the coroutine) is what the
    guard can stop at the op's deadline and what it records as blocking the loop.
    """

    __slots__ = ("call", "coro", "cpu_ns", "ctx", "guard", "stopped")

    def __init__(
        self, coro: Awaitable[Any], call: OpCall, ctx: ToolContext, guard: LoopGuard | None
    ) -> None:
        self.coro = coro
        self.call = call
        self.ctx = ctx
        self.guard = guard
        self.cpu_ns = 0
        #: Why the guard asked it to stop while a step held the loop, if it did.
        self.stopped: str | None = None

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, clock, guard = self.coro.__await__(), time.thread_time_ns, self.guard
        call = self.call
        deadline = None if call.started_ns is None else deadline_ns(call.started_ns, call.timeout_s)
        send: Any = None
        throw: BaseException | None = None
        while True:
            c0 = clock()
            if guard is not None:
                guard.enter(call, self.ctx, deadline)
            try:
                yielded = coro.throw(throw) if throw is not None else coro.send(send)
            except StopIteration as stop:
                self._step_done(clock() - c0)
                return stop.value
            except BaseException:
                self._step_done(clock() - c0)
                raise
            self._step_done(clock() - c0)
            try:
                send, throw = (yield yielded), None
            except BaseException as e:  # cancellation and friends go into the coroutine
                send, throw = None, e

    def _step_done(self, cpu_ns: int) -> None:
        self.cpu_ns += cpu_ns
        if self.guard is not None:
            stopped = self.guard.leave()
            if stopped is not None and self.stopped is None:
                self.stopped = stopped
