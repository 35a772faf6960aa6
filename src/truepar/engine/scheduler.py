"""The scheduler: the one engine core that decides when each op runs.

A ready queue, not waves: an op is dispatched the moment its last input is done and a worker
slot (and a slot of its resource, if it has one) is free — a slow op never holds back unrelated
fast ones. Ready ops start in plan order, but an op blocked by its resource's cap does not block
the ops behind it. Failed attempts are retried after an exponential backoff, with the slot given
back in between. ``continue`` runs everything that does not depend on a failure; ``fail-fast``
cancels the rest. Everything happens on one asyncio loop; callbacks, not polling.

Budgets hook in at two points and cost nothing to plans without them: an op of a rate-limited
resource asks its :class:`~truepar.engine.ratelimit.RateGate` right before launch and, told to
wait, is parked behind one timer per resource; a final result is counted against the
:class:`~truepar.engine.context_budget.ContextBudget`, whose thresholds lower the worker cap,
cut later results, and stop the run with a handoff.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
from collections.abc import Mapping
from typing import TYPE_CHECKING

from truepar.backends.base import Backend, OpCall, Outcome
from truepar.backends.inline import loop_guard
from truepar.backends.invoke import describe_error
from truepar.engine.adaptive import AdaptiveLimits
from truepar.engine.attempt import OpState, attempt_span, attempt_status, with_ran_on
from truepar.engine.context_budget import LOWER, STOP, ContextBudget
from truepar.engine.observer import Observer, listening
from truepar.errors import InternalError, UsageError
from truepar.plan.graph import Graph
from truepar.plan.models import Plan
from truepar.records import OpResult, Span, Status, quick_factory

if TYPE_CHECKING:
    from truepar.engine.ratelimit import RateGate

_RETRYABLE = frozenset({Status.FAILED, Status.TIMEOUT, Status.CRASHED})
#: The longest wait between two attempts, whatever the backoff doubling reaches.
MAX_BACKOFF_S = 3600.0
#: An op's result, made once per op (see :func:`~truepar.records.quick_factory`).
_result = quick_factory(OpResult)


@functools.lru_cache(maxsize=64)
def _all_busy(workers: int) -> str:
    """Why a ready op waited for a worker: one string per worker count, not one per op."""
    return f"workers (all {workers} busy)"


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
        *,
        gates: Mapping[str, RateGate] | None = None,
        context: ContextBudget | None = None,
        skip: Mapping[str, str] | None = None,
    ) -> None:
        self.plan = plan
        self.graph = graph
        self.observer = observer
        #: The per-op hooks, ``None`` where the observer keeps the no-op (most runs).
        self._op_started = listening(observer, "op_started")
        self._op_finished = listening(observer, "op_finished")
        self.workers = workers
        defaults = plan.defaults
        self.clock_ns = backends[default_backend].clock_ns
        timeout, retries, preds = defaults.timeout, defaults.retries, graph.preds
        self.states = [
            OpState(  # op, backend, timeout_s, retries, waiting_on: by position, as it is per op
                op,
                backends[op.backend or default_backend],
                op.timeout if op.timeout is not None else timeout,
                op.retries if op.retries is not None else retries,
                len(preds[i]),
            )
            for i, op in enumerate(plan.ops)
        ]
        self.caps = {name: r.max_concurrent for name, r in plan.resources.items()}
        #: Resources whose cap follows the server (``adaptive = true``); ``None``: none do.
        self.adaptive = AdaptiveLimits.from_plan(plan)
        self.in_use: dict[str, int] = dict.fromkeys(self.caps, 0)
        self.running = 0
        self.ready: list[int] = []
        #: Ready ops waiting for a slot of their resource, per resource.
        self.parked: dict[str, list[int]] = {}
        self.gates = dict(gates or {})
        #: Ready ops waiting for their resource's rate limit, and the one timer that wakes them.
        self.rate_parked: dict[str, list[int]] = {}
        self._rate_timers: dict[str, asyncio.TimerHandle] = {}
        self.context = context
        self._skip = dict(skip or {})
        #: Ops the context budget stopped before they ran (the handoff's "remaining").
        self.not_run: set[str] = set()
        self._pumps = 0
        self.spans: list[Span] = []
        self.results: dict[str, OpResult] = {}
        #: No more dispatches or retries (fail-fast, Ctrl-C, or the context budget's stop).
        self.stopping = False
        self._cancelled = False
        self.interrupted = False
        self._unfinished = len(self.states)
        self._done: asyncio.Future[None] | None = None
        self._backoff: set[asyncio.TimerHandle] = set()
        self._root = plan.root
        self._plan_dir = plan.base_dir
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Ops on the loop's thread (sequential, async) may keep others from running: a
        #: deadline counts only the time an op was not kept from the loop (virtual clocks: no).
        self._guard = None if backends[default_backend].virtual_clock else loop_guard()
        #: Attempts abandoned on a thread, and the index of their span: see :meth:`ran_on`.
        self._abandoned: list[tuple[int, OpCall]] = []

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._done = self._loop.create_future()
        if self._skip:
            self._skip_at_start()
        now, pumps, ready = self.clock_ns(), self._pumps, self.ready
        for i, st in enumerate(self.states):
            if st.waiting_on == 0 and not st.finished:
                # _make_ready for all at once: they became ready together, now (one reading)
                st.ready_ns, st.ready_pump = now, pumps
                heapq.heappush(ready, i)
        self._pump()
        if self._unfinished:
            await self._done

    def _pump(self) -> None:
        if self.stopping:
            return
        self._pumps += 1
        ready, states = self.ready, self.states
        while ready and self.running < self.workers:
            i = heapq.heappop(ready)
            st = states[i]
            res = st.op.resource
            if res is not None:
                cap = self.caps.get(res)
                if cap is not None and self.in_use[res] >= cap:
                    # Parked until its resource frees a slot (see _release): it does not hold
                    # back the ops behind it, and costs nothing while it waits.
                    if st.waited_for is None:
                        st.waited_for = f"resource {res} (max_concurrent {cap})"
                        if self.adaptive is not None:
                            st.waited_for = self.adaptive.waiting(res, st.waited_for)
                    heapq.heappush(self.parked.setdefault(res, []), i)
                    continue
                gate = self.gates.get(res)
                if gate is not None and not self._rate_admits(i, st, res, gate):
                    continue
            if st.waited_for is None and st.ready_pump < self._pumps - 1:
                st.waited_for = _all_busy(self.workers)
            self._launch(i)

    def _rate_admits(self, i: int, st: OpState, res: str, gate: RateGate) -> bool:
        """Ask the limiter right before launch; told to wait, park the op behind the timer.

        While a resource's timer runs, its ops park without asking (the limiter said no to
        the one before them), except those it does not count at all (cost and tokens 0); the
        timer lets one back in, and each op admitted lets the next parked one try, so a burst
        the limit allows goes out at once.
        """
        parked = self.rate_parked.setdefault(res, [])
        if res not in self._rate_timers or not gate.counts(st.op):
            wait_s = gate.acquire(st.op)
            if not wait_s:
                if parked:
                    heapq.heappush(self.ready, heapq.heappop(parked))
                return True
            assert self._loop is not None
            self._rate_timers[res] = self._loop.call_later(wait_s, self._rate_wake, res)
        if st.waited_for is None:
            st.waited_for = f"rate limit {res} ({gate.description})"
        heapq.heappush(parked, i)
        return False

    def _rate_wake(self, res: str) -> None:
        del self._rate_timers[res]
        parked = self.rate_parked.get(res)
        if parked:
            heapq.heappush(self.ready, heapq.heappop(parked))
            self._pump()

    def _make_ready(self, i: int) -> None:
        st = self.states[i]
        st.ready_ns = self.clock_ns()
        st.ready_pump = self._pumps
        heapq.heappush(self.ready, i)

    def _launch(self, i: int) -> None:
        st = self.states[i]
        op = st.op
        st.attempt = attempt = st.attempt + 1
        self.running += 1
        res = op.resource
        if res is not None and res in self.in_use:
            self.in_use[res] += 1
        if self._op_started is not None:
            self._op_started(op.id, attempt)
        timeout_s = st.timeout_s
        call = OpCall(op, attempt, self._root, self._plan_dir, timeout_s)
        st.call, st.stopped_for = call, None
        st.dispatched_ns = self.clock_ns()
        loop = self._loop
        assert loop is not None
        if timeout_s is not None:
            st.timer = loop.call_later(timeout_s, self._deadline, i, call)
        try:
            st.backend.submit(call, functools.partial(self._on_done, i, call))
        except Exception as exc:  # refused at the door (not picklable, ...): fail this attempt
            loop.call_soon(self._on_done, i, call, exc)

    def _deadline(self, i: int, call: OpCall) -> None:
        """An attempt's timeout is up — unless other ops held the loop meanwhile: the time they
        kept it from running is given back (once per block), so it is not blamed for them."""
        st = self.states[i]
        if st.call is not call:
            return
        st.timer = None
        if self._guard is not None and st.timeout_s is not None:
            now = self.clock_ns()
            kept = self._guard.blocked_ns(st.dispatched_ns, now, other_than=call)
            owed = st.timeout_s * 1e9 - (now - st.dispatched_ns - kept)
            if owed > 1e6:  # more than a millisecond still owed
                assert self._loop is not None
                st.timer = self._loop.call_later(owed / 1e9, self._deadline, i, call)
                return
        self._stop_attempt(i, "timeout")

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

    def _record(self, i: int, st: OpState, call: OpCall, result: Outcome | BaseException) -> None:
        st.call = None
        if st.timer is not None:
            st.timer.cancel()
            st.timer = None
        outcome = result if isinstance(result, Outcome) else None
        if (
            outcome is not None
            and outcome.status is Status.OK
            and st.stopped_for is None
            and (st.timeout_s is None or outcome.end_ns - outcome.start_ns <= st.timeout_s * 1e9)
            and not call.abandoned
        ):
            # Most attempts: ran their course, in time (what attempt_status says of them, without
            # the call: this runs once per op, and a 10,000-op plan feels every microsecond).
            status, error = Status.OK, None
        else:
            status, error = attempt_status(st, call, result, interrupted=self.interrupted)
        truncated, crossed = False, None
        if self.context is not None and outcome is not None and not self._will_retry(st, status):
            outcome, truncated, crossed = self.context.account(st.op, outcome)
        now = self.clock_ns() if outcome is None else 0  # a span without an outcome ends now
        span = attempt_span(st, call, outcome, status, error, now, truncated)
        if call.abandoned:
            self._abandoned.append((len(self.spans), call))
        self.spans.append(span)
        self.running -= 1
        if st.op.resource is not None:
            self._release(st.op.resource)
        if self.adaptive is not None:
            self._adapt(st, call, outcome, status)
        if self._op_finished is not None:
            self._op_finished(span)
        if crossed:
            halt = self._on_thresholds(st.op.id, crossed)
            self._after_attempt(i, span, outcome)
            if halt is not None:
                self._halt(halt)
        else:
            self._after_attempt(i, span, outcome)

    def _release(self, res: str) -> None:
        """An attempt holding a slot of ``res`` ended: the next op parked for it may go."""
        if res in self.in_use:
            self.in_use[res] -= 1
            parked = self.parked.get(res)
            if parked:
                heapq.heappush(self.ready, heapq.heappop(parked))

    def _after_attempt(self, i: int, span: Span, outcome: Outcome | None) -> None:
        st = self.states[i]
        if span.status is Status.OK:
            value = outcome.value if outcome is not None else None
            self._finish(i, _result(st.op.id, Status.OK, st.attempt, value, span.summary))
            states = self.states
            for s in self.graph.succs[i]:
                succ = states[s]
                succ.waiting_on -= 1
                if succ.waiting_on == 0 and not succ.finished:
                    self._make_ready(s)
        elif self._will_retry(st, span.status):
            delay = min(
                MAX_BACKOFF_S, self.plan.defaults.retry_backoff_s * 2.0 ** min(st.attempt - 1, 60)
            )
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

    def _will_retry(self, st: OpState, status: Status) -> bool:
        return status in _RETRYABLE and st.attempt <= st.retries and not self.stopping

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
        if self._cancelled:
            return
        self._cancelled = self.stopping = True
        self._cancel_timers()
        for i, st in enumerate(self.states):
            if st.call is not None:
                self._stop_attempt(i, "cancel")
            elif not st.finished:
                self._finish(
                    i,
                    OpResult(st.op.id, Status.CANCELLED, st.attempt, error=f"not run: {reason}"),
                )

    def settle_abandoned(self, end_ns: int) -> None:
        """At the run's end: each abandoned attempt's span says how long it ran on after it
        was given up — until it returned, or, still running, until ``end_ns``."""
        for index, call in self._abandoned:
            self.spans[index] = with_ran_on(self.spans[index], call, end_ns)

    def _cancel_timers(self) -> None:
        for handle in (*self._backoff, *self._rate_timers.values()):
            handle.cancel()
        self._backoff.clear()
        self._rate_timers.clear()

    # -- adaptive resources -------------------------------------------------------------------

    def _adapt(self, st: OpState, call: OpCall, outcome: Outcome | None, status: Status) -> None:
        """Halve or raise an adaptive resource's cap after an attempt on it (see
        :mod:`truepar.engine.adaptive`); a raised cap lets as many parked ops in at once."""
        assert self.adaptive is not None
        res, now = st.op.resource, self.clock_ns()
        new = self.adaptive.observe(st.op, call.attempt, outcome, status, st.dispatched_ns, now)
        if new is not None and res is not None:
            raised, self.caps[res] = new - (self.caps[res] or new), new
            parked = self.parked.get(res) or []
            for _ in range(min(raised, len(parked))):
                heapq.heappush(self.ready, heapq.heappop(parked))

    # -- budgets ------------------------------------------------------------------------------

    def _skip_at_start(self) -> None:
        """Ops the pre-dispatch budget check dropped: ``skipped``, and so is what needs them."""
        index = {op.id: i for i, op in enumerate(self.plan.ops)}
        unknown = sorted(set(self._skip) - set(index))
        if unknown:
            raise UsageError(f"the budget skips op {unknown[0]!r}, which the plan does not have")
        for op_id, reason in self._skip.items():
            self._finish(index[op_id], OpResult(op_id, Status.SKIPPED, 0, error=reason))
            self.observer.op_skipped(op_id)
        for op_id in self._skip:  # after the others: their own reasons come first
            self._skip_dependents(index[op_id])

    def _on_thresholds(self, op_id: str, crossed: list[str]) -> str | None:
        """Act on context thresholds just crossed; the stop's reason if the run must stop."""
        ctx = self.context
        assert ctx is not None
        for name in crossed:
            if name == LOWER:
                before, self.workers = self.workers, max(1, self.workers // 2)
                ctx.event(name, op_id, workers_before=before, workers=self.workers)
            elif name == STOP:
                self.stopping = True  # the op's own successors must not start
                ctx.event(name, op_id)
                return (
                    f"the context budget is spent ({ctx.used} of {ctx.tokens} tokens, "
                    f"stop_at {self.plan.defaults.stop_at:.0%})"
                )
            else:
                ctx.event(name, op_id)
        return None

    def _halt(self, reason: str) -> None:
        """Stop dispatching: ops running finish; every other unfinished op is ``skipped``."""
        self.stopping = True
        self._cancel_timers()
        for i, st in enumerate(self.states):
            if st.call is None and not st.finished:
                self.not_run.add(st.op.id)
                self._finish(
                    i, OpResult(st.op.id, Status.SKIPPED, st.attempt, error=f"not run: {reason}")
                )
                self.observer.op_skipped(st.op.id)
