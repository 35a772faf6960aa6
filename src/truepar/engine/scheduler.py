"""The scheduler: the one engine core that decides when each op runs.

A ready queue, not waves: an op is dispatched the moment its last input is done and a worker
slot (and a slot of its resource, if it has one) is free — a slow op never holds back unrelated
fast ones. Ready ops start in plan order, but an op blocked by its resource's cap does not block
the ops behind it. Failed attempts are retried after an exponential backoff, with the slot given
back in between. ``continue`` runs everything that does not depend on a failure; ``fail-fast``
cancels the rest. Everything happens on one asyncio loop; callbacks, not polling.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import heapq
import os
import socket
from collections.abc import Mapping

from truepar.backends.base import Backend, OpCall, Outcome
from truepar.backends.invoke import describe_error
from truepar.engine.observer import Observer
from truepar.errors import InternalError
from truepar.plan.graph import Graph
from truepar.plan.models import Plan
from truepar.records import OpResult, Span, Status, estimate_tokens
from truepar.tools.base import OpBase

_HOST = socket.gethostname()
_RETRYABLE = frozenset({Status.FAILED, Status.TIMEOUT, Status.CRASHED})


@dataclasses.dataclass
class _OpState:
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


class Scheduler:
    """Runs one plan once. Use :meth:`run`; then read ``spans`` and ``results``."""

    def __init__(
        self,
        plan: Plan,
        graph: Graph,
        backends: Mapping[str, Backend],
        default_backend: str,
        workers: int,
        observer: Observer,
    ) -> None:
        self.plan = plan
        self.graph = graph
        self.observer = observer
        self.workers = workers
        defaults = plan.defaults
        self.clock_ns = backends[default_backend].clock_ns
        self.states = [
            _OpState(
                op=op,
                backend=backends[op.backend or default_backend],
                timeout_s=op.timeout if op.timeout is not None else defaults.timeout,
                retries=op.retries if op.retries is not None else defaults.retries,
                waiting_on=len(graph.preds[i]),
            )
            for i, op in enumerate(plan.ops)
        ]
        self.caps = {name: r.max_concurrent for name, r in plan.resources.items()}
        self.in_use: dict[str, int] = dict.fromkeys(self.caps, 0)
        self.running = 0
        self.ready: list[int] = []
        #: Ready ops waiting for a slot of their resource, per resource.
        self.parked: dict[str, list[int]] = {}
        self._pumps = 0
        self.spans: list[Span] = []
        self.results: dict[str, OpResult] = {}
        self.stopping = False
        self.interrupted = False
        self._unfinished = len(self.states)
        self._done: asyncio.Future[None] | None = None
        self._backoff: set[asyncio.TimerHandle] = set()
        self._root = plan.root
        self._plan_dir = plan.base_dir
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._done = self._loop.create_future()
        for i, st in enumerate(self.states):
            if st.waiting_on == 0:
                self._make_ready(i)
        self._pump()
        if self._unfinished:
            await self._done

    def _pump(self) -> None:
        if self.stopping:
            return
        self._pumps += 1
        while self.ready and self.running < self.workers:
            i = heapq.heappop(self.ready)
            st = self.states[i]
            res = st.op.resource
            cap = self.caps.get(res) if res else None
            if res is not None and cap is not None and self.in_use[res] >= cap:
                # Parked until its resource frees a slot (see _release): it does not hold back
                # the ops behind it, and costs nothing while it waits.
                if st.waited_for is None:
                    st.waited_for = f"resource {res} (max_concurrent {cap})"
                heapq.heappush(self.parked.setdefault(res, []), i)
                continue
            if st.waited_for is None and st.ready_pump < self._pumps - 1:
                st.waited_for = f"workers (all {self.workers} busy)"
            self._launch(i)

    def _make_ready(self, i: int) -> None:
        st = self.states[i]
        st.ready_ns = self.clock_ns()
        st.ready_pump = self._pumps
        heapq.heappush(self.ready, i)

    def _launch(self, i: int) -> None:
        st = self.states[i]
        st.attempt += 1
        self.running += 1
        if st.op.resource is not None and st.op.resource in self.in_use:
            self.in_use[st.op.resource] += 1
        self.observer.op_started(st.op.id, st.attempt)
        call = OpCall(st.op, st.attempt, self._root, self._plan_dir, st.timeout_s)
        st.call, st.stopped_for = call, None
        st.dispatched_ns = self.clock_ns()
        loop = self._loop
        assert loop is not None
        if st.timeout_s is not None:
            st.timer = loop.call_later(st.timeout_s, self._stop_attempt, i, "timeout")
        try:
            st.backend.submit(call, functools.partial(self._on_done, i, call))
        except Exception as exc:  # refused at the door (not picklable, ...): fail this attempt
            loop.call_soon(self._on_done, i, call, exc)

    def _stop_attempt(self, i: int, why: str) -> None:
        """Timeout or cancel: ask the backend to stop the attempt; it still reports back."""
        st = self.states[i]
        if st.call is None or st.stopped_for is not None:
            return
        st.stopped_for = why
        st.backend.cancel(st.call)

    def _on_done(self, i: int, call: OpCall, result: Outcome | BaseException) -> None:
        """A backend reports an attempt's end (on the loop's thread, exactly once per attempt)."""
        st = self.states[i]
        if st.call is not call:
            return
        try:
            self._record(i, st, call, result)
        except Exception as exc:  # our bug: fail the run loudly rather than hang it
            if self._done is not None and not self._done.done():
                bug = InternalError(f"recording op {st.op.id!r} failed: {describe_error(exc)}")
                bug.__cause__ = exc
                self._done.set_exception(bug)

    def _record(self, i: int, st: _OpState, call: OpCall, result: Outcome | BaseException) -> None:
        st.call = None
        if st.timer is not None:
            st.timer.cancel()
            st.timer = None
        outcome = result if isinstance(result, Outcome) else None
        error: str | None = None
        if st.stopped_for == "timeout" or isinstance(result, TimeoutError):
            status, error = Status.TIMEOUT, f"timed out after {st.timeout_s:g} s"
        elif st.stopped_for == "cancel" or isinstance(result, asyncio.CancelledError):
            status = Status.CANCELLED
            error = "cancelled" + (" (interrupted)" if self.interrupted else " (fail-fast)")
        elif outcome is not None:
            status = outcome.status
            if st.timeout_s is not None and outcome.end_ns - outcome.start_ns > st.timeout_s * 1e9:
                # It blocked the loop (a sync function on ``async``), so no deadline could fire.
                status = Status.TIMEOUT
                error = (
                    f"timed out after {st.timeout_s:g} s (it blocked the event loop, so it ran on)"
                )
        else:
            assert isinstance(result, BaseException)
            status, error = Status.FAILED, describe_error(result)
        if call.abandoned:
            error = f"{error}; its thread could not be stopped and was abandoned"
        span = self._span(st, call, outcome, status, error, st.dispatched_ns)
        self.spans.append(span)
        self._release(st)
        self.observer.op_finished(span)
        self._after_attempt(i, span, outcome)

    def _release(self, st: _OpState) -> None:
        self.running -= 1
        res = st.op.resource
        if res is not None and res in self.in_use:
            self.in_use[res] -= 1
            parked = self.parked.get(res)
            if parked:
                heapq.heappush(self.ready, heapq.heappop(parked))

    def _span(
        self,
        st: _OpState,
        call: OpCall,
        outcome: Outcome | None,
        status: Status,
        error: str | None,
        dispatched: int,
    ) -> Span:
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
                tokens_out=estimate_tokens(outcome.bytes_out),
                summary=outcome.summary,
                error=error or outcome.error,
                waited_for=st.waited_for,
            )
        start = call.started_ns or dispatched
        end = max(start, self.clock_ns())
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

    def _after_attempt(self, i: int, span: Span, outcome: Outcome | None) -> None:
        st = self.states[i]
        if span.status is Status.OK:
            value = outcome.value if outcome is not None else None
            self._finish(i, OpResult(st.op.id, Status.OK, st.attempt, value, span.summary))
            for s in self.graph.succs[i]:
                succ = self.states[s]
                succ.waiting_on -= 1
                if succ.waiting_on == 0 and not succ.finished:
                    self._make_ready(s)
        elif span.status in _RETRYABLE and st.attempt <= st.retries and not self.stopping:
            delay = self.plan.defaults.retry_backoff_s * 2 ** (st.attempt - 1)
            loop = asyncio.get_running_loop()
            handle: asyncio.TimerHandle

            def requeue() -> None:
                self._backoff.discard(handle)
                self._make_ready(i)
                self._pump()

            handle = loop.call_later(delay, requeue)
            self._backoff.add(handle)
        else:
            value = outcome.value if outcome is not None else None
            result = OpResult(st.op.id, span.status, st.attempt, value, span.summary, span.error)
            self._finish(i, result)
            if span.status is not Status.CANCELLED:
                if self.plan.defaults.on_error == "fail-fast":
                    self.stop(f"fail-fast: {st.op.id} {span.status.value}")
                else:
                    self._skip_dependents(i)
        self._pump()

    def _finish(self, i: int, result: OpResult) -> None:
        st = self.states[i]
        if st.finished:
            return
        st.finished = True
        self.results[st.op.id] = result
        self._unfinished -= 1
        if self._unfinished == 0 and self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _skip_dependents(self, failed: int) -> None:
        failed_id = self.states[failed].op.id
        stack = list(self.graph.succs[failed])
        while stack:
            s = stack.pop()
            st = self.states[s]
            if st.finished:
                continue
            self._finish(
                s,
                OpResult(
                    st.op.id,
                    Status.SKIPPED,
                    0,
                    error=f"skipped: depends on {failed_id!r}, which did not succeed",
                ),
            )
            self.observer.op_skipped(st.op.id)
            stack.extend(self.graph.succs[s])

    def stop(self, reason: str, *, interrupted: bool = False) -> None:
        """Cancel everything still running or waiting (fail-fast, Ctrl-C)."""
        if interrupted:
            self.interrupted = True
        if self.stopping:
            return
        self.stopping = True
        for handle in self._backoff:
            handle.cancel()
        self._backoff.clear()
        for i, st in enumerate(self.states):
            if st.call is not None:
                self._stop_attempt(i, "cancel")
            elif not st.finished:
                self._finish(
                    i,
                    OpResult(st.op.id, Status.CANCELLED, st.attempt, error=f"not run: {reason}"),
                )
