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
from truepar.backends.invoke import describe_error
from truepar.records import Span, Status, quick_factory
from truepar.tools.base import OpBase

_HOST = socket.gethostname()
_span = quick_factory(Span)


@dataclasses.dataclass(slots=True)
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
        op = st.op
        # Span's fields in order, by position: this runs once per attempt, and matching two
        # dozen keywords would cost more than building the span.
        return _span(
            op.id,
            call.attempt,
            op.tool,
            st.backend.name,
            status,
            st.ready_ns,
            outcome.start_ns,
            outcome.end_ns,
            outcome.pid,
            outcome.thread_id,
            outcome.host or _HOST,
            outcome.worker,
            outcome.cpu_s,
            outcome.child_cpu_s,
            outcome.bytes_out,
            result_tokens(outcome),
            outcome.summary,
            error or outcome.error,
            st.waited_for,
            False,  # abandoned, ran_on_s: an attempt given up on reports no outcome
            None,
            truncated,
            outcome.node,
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
        host=call.host or _HOST,
        worker=call.worker,
        cpu_s=None,
        child_cpu_s=0.0,
        bytes_out=0,
        tokens_out=0,
        error=error,
        waited_for=st.waited_for,
        abandoned=call.abandoned,
        node=call.node,
    )


#: Past its timeout by more than this, an op "ran on": it did not stop when asked.
RAN_ON_S = 0.1
#: Outcome statuses that say the attempt was stopped, not that it ran its course.
_STOPPED = frozenset({Status.TIMEOUT, Status.CANCELLED})


def attempt_status(
    st: OpState, call: OpCall, result: Outcome | BaseException, *, interrupted: bool
) -> tuple[Status, str | None]:
    """How an attempt ended, and why in words when it did not end well.

    A timeout or cancel the scheduler asked for, or the backend reported (its outcome's status,
    with real times), wins over what the op returned; an op that returned after its timeout
    (it held the loop, so no deadline could fire) timed out all the same.

    ``Scheduler._record`` decides the most common case — ``ok``, not stopped, in time, not
    abandoned — inline, without this call (once per op); a change to that rule changes both.
    """
    outcome = result if isinstance(result, Outcome) else None
    stopped = outcome.status if outcome is not None else None
    error: str | None = None
    if outcome is not None and st.stopped_for is None and outcome.status not in _STOPPED:
        # Most attempts: it ran its course and says how it went — unless it overran.
        status = outcome.status
        if st.timeout_s is not None and outcome.end_ns - outcome.start_ns > st.timeout_s * 1e9:
            status, error = Status.TIMEOUT, timeout_error(st, outcome)
    elif (
        st.stopped_for == "timeout" or isinstance(result, TimeoutError) or stopped is Status.TIMEOUT
    ):
        status, error = Status.TIMEOUT, timeout_error(st, outcome)
    elif (
        st.stopped_for == "cancel"
        or isinstance(result, asyncio.CancelledError)
        or stopped is Status.CANCELLED
    ):
        status = Status.CANCELLED
        error = "cancelled" + (" (interrupted)" if interrupted else " (fail-fast)")
    else:
        assert isinstance(result, BaseException)
        status, error = Status.FAILED, describe_error(result)
    if call.abandoned:
        error = f"{error}; its thread could not be stopped and was abandoned"
    return status, error


def timeout_error(st: OpState, outcome: Outcome | None) -> str:
    """``timed out after T s``, and, when the op did not stop when asked, how long it ran on
    past that: its span ends when it really stopped, never at the deadline."""
    text = f"timed out after {st.timeout_s:g} s"
    if outcome is None or st.timeout_s is None:
        return text
    over = (outcome.end_ns - outcome.start_ns) / 1e9 - st.timeout_s
    if over > RAN_ON_S:
        text += f"; it did not stop when asked and ran on for {over:.2f} s"
    return text


def with_ran_on(span: Span, call: OpCall, end_ns: int) -> Span:
    """An abandoned attempt's span, saying how long it ran on after it was given up: until it
    returned, or, still running, until ``end_ns`` (the run's end)."""
    returned = call.returned_ns
    until = returned if returned is not None else end_ns
    ran_on = max(0.0, (until - span.end_ns) / 1e9)
    note = (
        f"; it returned {ran_on:.2f} s later"
        if returned is not None
        else f"; still running when the run ended, {ran_on:.2f} s later"
    )
    return dataclasses.replace(span, ran_on_s=ran_on, error=(span.error or "abandoned") + note)
