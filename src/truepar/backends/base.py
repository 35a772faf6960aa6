"""The one small interface every backend implements, and what crosses it.

The scheduler (``truepar.engine``) decides *when* an op runs; a backend decides *where*: inline,
on the event loop, in a thread, in a worker process, or on a virtual clock. ``submit`` starts an
:class:`OpCall` and returns at once; the backend later calls ``done`` — on the event loop's
thread, exactly once — with the :class:`Outcome`, or with the exception that kept the op from
producing one. ``cancel`` (a timeout, fail-fast, Ctrl-C) asks the backend to stop the op its own
way: kill the subprocess, kill the worker process, or, for a thread that cannot be stopped, say
so with ``call.abandoned``; ``done`` is still called. Callbacks, not a task per op: dispatching
an op costs a few microseconds, and a completion can start the next op in the same loop turn.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import heapq
import operator
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from truepar.records import Status, estimate_tokens, quick_factory
from truepar.tools.base import OpBase


@dataclasses.dataclass
class OpCall:
    """One attempt of one op, as a backend receives it (pickled to process workers)."""

    op: OpBase
    attempt: int
    root: Path
    plan_dir: Path
    #: The op's effective timeout (its own, else the plan's default).
    timeout_s: float | None = None
    #: Filled in by the backend once known, so a timed-out span still says where it ran.
    started_ns: int | None = None
    pid: int = 0
    thread_id: int = 0
    worker: int = -1
    #: Set by a backend that had to leave a thread running after a timeout or cancel.
    abandoned: bool = False
    #: When an abandoned attempt finally returned (monotonic ns); ``None`` while it still runs.
    returned_ns: int | None = None
    #: The host and cluster node it was sent to (a cluster backend); ``None``: this machine.
    host: str | None = None
    node: str | None = None
    #: The backend's own handle on the running attempt (a task, a job, a worker); never pickled.
    handle: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "attempt": self.attempt,
            "root": self.root,
            "plan_dir": self.plan_dir,
            "timeout_s": self.timeout_s,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt produced, measured where it ran."""

    status: Status
    start_ns: int
    end_ns: int
    pid: int
    thread_id: int
    worker: int
    cpu_s: float | None
    child_cpu_s: float = 0.0
    value: Any = None
    summary: str = ""
    bytes_out: int = 0
    error: str | None = None
    #: Exact result tokens, when the tool reported them (else estimated from ``bytes_out``).
    tokens_out: int | None = None
    #: Times its server answered 429/503 during the attempt: an ``adaptive`` resource's signal.
    throttled: int = 0
    #: Where it ran, when not on this machine (a cluster backend): the host's name and the
    #: cluster's id of its node. ``None``: here.
    host: str | None = None
    node: str | None = None


def result_tokens(outcome: Outcome) -> int:
    """The tokens of an attempt's result: exact where its tool reported them, else the
    documented estimate (:func:`truepar.records.estimate_tokens`)."""
    if outcome.tokens_out is not None:
        return outcome.tokens_out
    return estimate_tokens(outcome.bytes_out)


#: :class:`Outcome`, made for a fraction of the cost (positional arguments; see
#: :func:`~truepar.records.quick_factory`): what backends use, once per attempt.
make_outcome = quick_factory(Outcome)
_OUTCOME_FIELDS = tuple(f.name for f in dataclasses.fields(Outcome))
_outcome_values = operator.attrgetter(*_OUTCOME_FIELDS)
_OUTCOME_INDEX = {name: i for i, name in enumerate(_OUTCOME_FIELDS)}


def replace_outcome(outcome: Outcome, **changes: Any) -> Outcome:
    """``dataclasses.replace(outcome, **changes)`` in about a sixth of its time (~1 µs, not
    ~6): Ray's actors and driver change every op's outcome (where it ran, its times on the
    driver's clock), and a chunk of tiny ops feels every microsecond."""
    values = list(_outcome_values(outcome))
    for name, value in changes.items():
        values[_OUTCOME_INDEX[name]] = value
    return make_outcome(*values)


Done = Callable[[Outcome | BaseException], None]


class Backend(abc.ABC):
    """Where ops run. One instance serves one run (or several, if the caller reuses it)."""

    name: ClassVar[str]

    # -- capabilities: what the rest of truepar asks of a backend, instead of its name --------

    #: Its CPU figures are measured (False: declared, as on the fake backend).
    measures_real_cpu: ClassVar[bool] = True
    #: ``clock_ns`` is virtual: the backend brings its own event loop (``new_event_loop``),
    #: cannot run inside another loop (``arun``), and cannot be mixed with real backends.
    virtual_clock: ClassVar[bool] = False
    #: The backend whose one-worker run is this one's speedup baseline; ``None``: itself (a
    #: virtual clock is only comparable with itself).
    baseline: ClassVar[str | None] = "sequential"
    #: Whether pure-Python CPU work of several ops runs at the same time here: ``"yes"``
    #: (processes), ``"without_gil"`` (threads: only on a free-threaded interpreter) or
    #: ``"no"`` (one thread: sequential, async). What ``prove`` expects of it.
    cpu_parallel: ClassVar[str] = "no"
    #: Ops run as coroutines on one event loop, where a sync function blocks every other op.
    event_loop: ClassVar[bool] = False
    #: Runs real functions, files and commands (False for a backend that only simulates them).
    runs_real_ops: ClassVar[bool] = True
    #: Starting it leaves threads alive in this process for good (a cluster's client), which
    #: turns later ``processes`` workers from ``fork`` to a fork server and slows them:
    #: ``prove`` leaves such a backend out rather than skew the others' results.
    leaves_threads: ClassVar[bool] = False

    def __init__(self, workers: int) -> None:
        self.workers = workers

    @property
    def max_workers(self) -> int:
        """How many ops this backend can run at once (the sequential backend: one)."""
        return self.workers

    @property
    def ceiling_note(self) -> str | None:
        """Why ``max_workers`` is below ``workers`` when a machine limit (not the backend's
        nature) caps it, in words for a warning; ``None`` when nothing was capped."""
        return None

    def clock_ns(self) -> int:
        return time.monotonic_ns()

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.new_event_loop()

    async def prepare(self, parallel: int) -> None:  # noqa: B027 - optional hook
        """Set up what outlives the run — connect to a cluster, start warm workers kept for
        later runs — before its clock starts: not counted in its wall time or CPU. Called on
        the scheduler's loop before :meth:`start`; most backends need nothing here."""

    async def start(self, parallel: int) -> None:  # noqa: B027 - optional hook
        """Prepare workers for at most ``parallel`` ops at once (never start more: the run
        cannot use them). Called on the scheduler's loop before the first op."""

    @abc.abstractmethod
    def submit(self, call: OpCall, done: Done) -> None:
        """Start one attempt; call ``done(outcome or exception)`` on the loop when it ends.

        May raise at once if the op cannot be started here at all (e.g. not picklable).
        """

    @abc.abstractmethod
    def cancel(self, call: OpCall) -> None:
        """Stop a submitted attempt as soon as possible; ``done`` must still be called."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release workers. The backend may not be used afterwards."""

    def interrupt(self) -> None:  # noqa: B027 - optional hook
        """Ctrl-C, called from the signal handler: stop what cannot wait for the event loop."""

    def worker_cpu_s(self) -> float:
        """CPU seconds of worker processes that ``getrusage`` of this process cannot see."""
        return 0.0

    def nodes(self) -> list[dict[str, Any]]:
        """The machines of a cluster backend that ran this run's ops (host, cores, Python, each
        clock's offset against this one and its uncertainty), for the trace; ``[]``: only here."""
        return []

    @property
    def abandoned_threads(self) -> int:
        return 0


class Slots:
    """Worker ids for backends without a thread or process per worker: the lowest free id."""

    def __init__(self) -> None:
        self._free: list[int] = []
        self._next = 0

    def acquire(self) -> int:
        if self._free:
            return heapq.heappop(self._free)
        self._next += 1
        return self._next - 1

    def release(self, slot: int) -> None:
        heapq.heappush(self._free, slot)


BackendFactory = Callable[[int], Backend]
