"""``fake``: ops that only *say* how long they take, on a virtual clock. For tests.

Every op's behaviour comes from its ``fake`` table (``duration_s``, ``cpu_s``, ``fail``,
``throttled``, ``crash``; a ``sleep`` op defaults to its ``seconds``). The scheduler runs
unchanged on an event loop whose clock jumps straight to the next timer instead of waiting for
it, so a plan of minutes runs in milliseconds and gives exactly the same trace every time: the
subject under test is the scheduling and the arithmetic, not the machine's speed.
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Any

from truepar.backends.base import Backend, Done, OpCall, Outcome, Slots, make_outcome
from truepar.records import Status
from truepar.tools.base import FakeSpec

#: Where the virtual clock starts, in nanoseconds: far from zero so a mix-up with a real clock
#: is noticed at once.
VIRTUAL_EPOCH_NS = 1_000_000_000_000
FAKE_PID = 4242


class _VirtualSelector(selectors.BaseSelector):
    """A selector that, with nothing ready, advances the virtual clock instead of sleeping."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._real = selectors.DefaultSelector()
        self._loop = loop

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or (timeout is not None and timeout <= 0):
            return ready
        if timeout is None:  # no timers at all: only another thread can wake us
            return self._real.select(None)
        self._loop.advance(timeout)
        return []

    def close(self) -> None:
        self._real.close()

    def get_map(self) -> Any:
        return self._real.get_map()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio loop whose ``time()`` is virtual and only moves when everything waits."""

    def __init__(self) -> None:
        self._now_ns = VIRTUAL_EPOCH_NS
        super().__init__(_VirtualSelector(self))

    def time(self) -> float:
        return self._now_ns / 1e9

    def now_ns(self) -> int:
        return self._now_ns

    def advance(self, seconds: float) -> None:
        # Rounded, not ceiled: asyncio fires timers within one clock resolution (1 ns) of now,
        # and ceil would add a nanosecond of float noise per timer.
        self._now_ns += max(1, round(seconds * 1e9))


class FakeBackend(Backend):
    name = "fake"
    measures_real_cpu = False
    virtual_clock = True
    baseline = None
    runs_real_ops = False

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self._slots = Slots()
        self._loop: VirtualTimeLoop | None = None

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        self._loop = VirtualTimeLoop()
        return self._loop

    def clock_ns(self) -> int:
        loop = self._loop
        if loop is None:
            raise RuntimeError("the fake backend's clock runs only inside its own event loop")
        return loop._now_ns  # the scheduler reads it a few times per op: no second call

    def submit(self, call: OpCall, done: Done) -> None:
        loop = self._loop
        assert loop is not None
        spec = call.op.fake_spec()
        worker = self._slots.acquire()
        call.worker, call.pid = worker, FAKE_PID
        call.started_ns = start = loop._now_ns
        when = loop.time() + spec.duration_s  # what call_later computes, one call fewer
        timer = loop.call_at(when, self._finish, call, spec, worker, start, done)
        call.handle = (timer, worker, done)

    def _finish(self, call: OpCall, spec: FakeSpec, worker: int, start: int, done: Done) -> None:
        call.handle = None  # ends the cycle call → timer → call: nothing left for the GC to find
        self._slots.release(worker)
        done(self._outcome(call, spec, worker, start))

    def cancel(self, call: OpCall) -> None:
        if call.handle is None:  # it has finished
            return
        timer, worker, done = call.handle
        if not timer.cancelled():
            timer.cancel()
            self._slots.release(worker)
            assert self._loop is not None
            self._loop.call_soon(done, asyncio.CancelledError())

    def _outcome(self, call: OpCall, spec: FakeSpec, worker: int, start: int) -> Outcome:
        end = self.clock_ns()
        if spec.crash:
            error = f"worker process {FAKE_PID} died (exit code 1)"
            return Outcome(Status.CRASHED, start, end, FAKE_PID, worker, worker, None, error=error)
        if call.attempt <= spec.throttled:
            error = f"fake HTTP 429 Too Many Requests on attempt {call.attempt}"
            return Outcome(
                Status.FAILED,
                start,
                end,
                FAKE_PID,
                worker,
                worker,
                spec.cpu_s,
                error=error,
                throttled=1,
            )
        if spec.fail < 0 or call.attempt <= spec.fail:
            error = f"fake failure on attempt {call.attempt}"
            return Outcome(
                Status.FAILED, start, end, FAKE_PID, worker, worker, spec.cpu_s, error=error
            )
        summary = f"fake {spec.duration_s:g} s"
        return make_outcome(
            Status.OK,
            start,
            end,
            FAKE_PID,
            worker,
            worker,
            spec.cpu_s,
            0.0,
            spec.value,
            summary,
            spec.bytes_out,
        )
