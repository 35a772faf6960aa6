"""Run one tool call and measure it where it runs: the one place spans get their numbers.

``invoke`` (sync) serves the sequential and threads backends and the process workers; ``ainvoke``
serves the async backend. Both time the call on the monotonic clock and charge it the CPU of the
thread (or process) that ran it, plus the rusage of subprocesses it waited for.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from truepar.backends.base import OpCall, Outcome
from truepar.errors import OpError
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


def _outcome(
    out: ToolOutput | None,
    exc: BaseException | None,
    ctx: ToolContext,
    t0: int,
    t1: int,
    cpu_ns: int,
    worker: int,
) -> Outcome:
    child = ctx.child_cpu_s
    cpu = cpu_ns / 1e9 + child
    tid = threading.get_native_id()
    pid = os.getpid()
    if out is None:
        assert exc is not None
        return Outcome(
            Status.FAILED, t0, t1, pid, tid, worker, cpu, child, error=describe_error(exc)
        )
    status = Status.OK if out.error is None else Status.FAILED
    return Outcome(
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
    )


def invoke(
    call: OpCall,
    ctx: ToolContext,
    worker: int,
    cpu_clock: Callable[[], int] = time.thread_time_ns,
) -> Outcome:
    """Run ``call`` here, now, in this thread."""
    tool = TOOLS[call.op.tool]
    out: ToolOutput | None = None
    exc: BaseException | None = None
    c0 = cpu_clock()
    t0 = time.monotonic_ns()
    call.started_ns = t0
    try:
        out = tool.run(call.op, ctx)
    except Exception as e:
        exc = e
    t1 = time.monotonic_ns()
    return _outcome(out, exc, ctx, t0, t1, cpu_clock() - c0, worker)


async def ainvoke(call: OpCall, ctx: ToolContext, worker: int) -> Outcome:
    """Run ``call`` on the running event loop (a tool without async I/O: in a helper thread)."""
    tool = TOOLS[call.op.tool]
    if tool.arun is None:
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(None, invoke, call, ctx, worker)
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            ctx.request_cancel()
            raise
    out: ToolOutput | None = None
    exc: BaseException | None = None
    cpu = [0]
    t0 = time.monotonic_ns()
    call.started_ns = t0
    try:
        out = await _ThreadCpu(tool.arun(call.op, ctx), cpu)
    except asyncio.CancelledError:
        ctx.request_cancel()
        raise
    except Exception as e:
        exc = e
    t1 = time.monotonic_ns()
    return _outcome(out, exc, ctx, t0, t1, cpu[0], worker)


class _ThreadCpu:
    """Await a coroutine and add the thread CPU time of each of its steps to ``acc[0]``.

    Coroutines of one loop interleave on one thread, so the thread's CPU clock around the whole
    await would charge an op for its neighbours' work; timing each step charges only its own.
    """

    __slots__ = ("acc", "coro")

    def __init__(self, coro: Awaitable[Any], acc: list[int]) -> None:
        self.coro = coro
        self.acc = acc

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, acc, clock = self.coro.__await__(), self.acc, time.thread_time_ns
        send: Any = None
        throw: BaseException | None = None
        while True:
            c0 = clock()
            try:
                yielded = coro.throw(throw) if throw is not None else coro.send(send)
            except StopIteration as stop:
                acc[0] += clock() - c0
                return stop.value
            except BaseException:
                acc[0] += clock() - c0
                raise
            acc[0] += clock() - c0
            try:
                send, throw = (yield yielded), None
            except BaseException as e:  # cancellation and friends go into the coroutine
                send, throw = None, e
