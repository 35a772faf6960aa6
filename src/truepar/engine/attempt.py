"""One op's state inside the scheduler, and the span each of its attempts becomes.

Kept apart from the scheduler's loop so that the loop reads as the decisions it makes; both are
private to the engine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket

from truepar.backends.base import Backend, OpCall, Outcome, result_tokens
from truepar.records import Span, Status
from truepar.tools.base import OpBase

_HOST = socket.gethostname()


@dataclasses.dataclass
class OpState:
    op: OpBase
    backend: Backend
    timeout_s: float | None
    retries: int
    waiting_on: int
    attempt: int = 0
    ready_ns: int = 0
    #: How many times the scheduler had pumped when this op became ready.
    ready_pump: int = 0
    waited_for: str | None = None
    finished: bool = False
    #: The attempt in flight, when it was dispatched, its deadline timer, and why it was
    #: stopped ("timeout" or "cancel") if the scheduler stopped it.
    call: OpCall | None = None
    dispatched_ns: int = 0
    timer: asyncio.TimerHandle | None = None
    stopped_for: str | None = None


def attempt_span(
    st: OpState,
    call: OpCall,
    outcome: Outcome | None,
    status: Status,
    error: str | None,
    now_ns: int,
    truncated: bool = False,
) -> Span:
    """The span of one attempt: measured where it ran, or (no outcome) what the scheduler saw."""
    if outcome is not None:
        return Span(
            op_id=st.op.id,
            attempt=call.attempt,
            tool=st.op.tool,
            backend=st.backend.name,
            status=status,
            ready_ns=st.ready_ns,
            start_ns=outcome.start_ns,
            end_ns=outcome.end_ns,
            pid=outcome.pid,
            thread_id=outcome.thread_id,
            host=_HOST,
            worker=outcome.worker,
            cpu_s=outcome.cpu_s,
            child_cpu_s=outcome.child_cpu_s,
            bytes_out=outcome.bytes_out,
            tokens_out=result_tokens(outcome),
            summary=outcome.summary,
            error=error or outcome.error,
            waited_for=st.waited_for,
            truncated=truncated,
        )
    start = call.started_ns or st.dispatched_ns
    end = max(start, now_ns)
    if status is Status.TIMEOUT and st.timeout_s is not None:
        end = min(end, start + int(st.timeout_s * 1e9))  # not the clean-up after it
    return Span(
        op_id=st.op.id,
        attempt=call.attempt,
        tool=st.op.tool,
        backend=st.backend.name,
        status=status,
        ready_ns=st.ready_ns,
        start_ns=start,
        end_ns=end,
        pid=call.pid or os.getpid(),
        thread_id=call.thread_id,
        host=_HOST,
        worker=call.worker,
        cpu_s=None,
        child_cpu_s=0.0,
        bytes_out=0,
        tokens_out=0,
        error=error,
        waited_for=st.waited_for,
        abandoned=call.abandoned,
    )
