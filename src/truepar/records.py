"""What a run produces: plain, frozen data at the bottom of the package.

The scheduler and every backend import these, so nothing here imports anything of truepar's.
Units are in the field names: ``_ns`` monotonic nanoseconds (``time.monotonic_ns``, which is
``CLOCK_MONOTONIC`` on Linux, so spans from worker processes share one time line), ``_s`` seconds.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

#: Bytes per token of the documented token estimator (see :func:`estimate_tokens`).
BYTES_PER_TOKEN = 4


def estimate_tokens(n_bytes: int) -> int:
    """Estimated LLM tokens for ``n_bytes`` of UTF-8 output: ``ceil(n_bytes / 4)``.

    Four bytes per token is the rule of thumb OpenAI and Anthropic give for English text and code;
    it is a documented estimate, never presented as a count. Servers that report exact token counts
    (the ``llm`` tool) record those instead.
    """
    return math.ceil(n_bytes / BYTES_PER_TOKEN) if n_bytes > 0 else 0


class Status(enum.StrEnum):
    """The outcome of one op attempt (a span) or of one op (a result)."""

    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CRASHED = "crashed"
    CANCELLED = "cancelled"
    #: Only for results: the op never ran because an op it depends on did not succeed.
    SKIPPED = "skipped"


class RunStatus(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@dataclasses.dataclass(frozen=True, slots=True)
class Span:
    """One attempt of one op: when, where, what it cost, how it ended."""

    op_id: str
    attempt: int
    tool: str
    backend: str
    status: Status
    #: When the op became ready (all inputs done) — ``start_ns - ready_ns`` is its queueing wait.
    ready_ns: int
    start_ns: int
    end_ns: int
    pid: int
    thread_id: int
    host: str
    worker: int
    #: CPU seconds of this op: thread CPU time (threads, sequential, async), process CPU time
    #: (process workers), plus the rusage of any subprocess it waited for (``child_cpu_s``).
    #: ``None`` when it could not be measured (a worker that crashed takes its numbers with it).
    cpu_s: float | None
    child_cpu_s: float
    bytes_out: int
    tokens_out: int
    summary: str = ""
    error: str | None = None
    #: Why the op waited after it was ready ("workers", "resource db", ...), if it did.
    waited_for: str | None = None
    #: A thread that could not be stopped after a timeout or cancel is left running: said here.
    abandoned: bool = False
    #: For an abandoned attempt: how long it ran on after the span's end — until it returned,
    #: or until the run ended if it was still running then (its error says which).
    ran_on_s: float | None = None
    #: The context budget cut this attempt's result to its op's ``max_output_tokens``
    #: (``bytes_out`` and ``tokens_out`` still say what the op produced).
    truncated: bool = False
    #: The cluster node that ran it (its id there, e.g. Ray's node id); ``None``: this machine.
    node: str | None = None

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["status"] = self.status.value
        d["duration_s"] = self.duration_s
        return d


@dataclasses.dataclass(frozen=True, slots=True)
class OpResult:
    """The final outcome of one op, after its retries."""

    op_id: str
    status: Status
    attempts: int
    value: Any = None
    summary: str = ""
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["status"] = self.status.value
        return d


@dataclasses.dataclass(frozen=True, slots=True)
class Environment:
    """Facts about the interpreter and machine that bear on parallelism."""

    python_version: str
    implementation: str
    gil_enabled: bool
    free_threaded_build: bool
    cores_available: int
    cores_total: int
    host: str
    platform: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, slots=True)
class RunTotals:
    wall_s: float
    #: CPU seconds of this process (all threads), its reaped subprocesses and its worker processes.
    cpu_s: float
    sum_op_s: float
    ops: int
    ok: int
    #: Ended ``failed``, ``timeout`` or ``crashed`` after their last attempt.
    failed: int
    #: Never ran: an op they depend on did not succeed.
    skipped: int = 0
    #: Cancelled by fail-fast or Ctrl-C, running or not yet started.
    cancelled: int = 0

    @property
    def avg_concurrency(self) -> float:
        """Σ op time / wall: how many ops were in flight on average."""
        return self.sum_op_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def cores_used(self) -> float:
        """CPU / wall: how many cores were busy on average."""
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["avg_concurrency"] = self.avg_concurrency
        d["cores_used"] = self.cores_used
        return d


@dataclasses.dataclass(frozen=True, slots=True)
class RunTrace:
    """Everything one run of a plan recorded. ``to_json`` is the ``--json`` trace format."""

    plan_name: str
    backend: str
    workers: int
    status: RunStatus
    #: ``time.time()`` taken at the same instant as ``start_ns``: anchors the monotonic clock.
    wall_anchor_unix_s: float
    start_ns: int
    end_ns: int
    spans: tuple[Span, ...]
    results: Mapping[str, OpResult]
    totals: RunTotals
    environment: Environment
    #: Per op id: why it came after others (static ``after`` and conflict edges), in words.
    waits: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    abandoned_threads: int = 0
    #: The pre-dispatch rate-budget check (per resource: needed, available, what was done).
    budget: Mapping[str, Any] | None = None
    #: The context budget: tokens brought back, thresholds, what was done when.
    context: Mapping[str, Any] | None = None
    #: When the context budget stopped the run: what finished and what remains, for the next one.
    handoff: Mapping[str, Any] | None = None
    #: The signal that interrupted the run (``"SIGINT"``: Ctrl-C, ``"SIGTERM"``), if one did.
    interrupted_by: str | None = None
    #: Per adaptive resource: its limit's decreases and increases (429/503 seen), when and why.
    adaptive: Mapping[str, Any] | None = None
    #: A cluster backend's machines: per node its host, cores, Python, and its clock's offset
    #: against this one (with its uncertainty), applied to its spans; ``None``: only here.
    nodes: tuple[Mapping[str, Any], ...] | None = None
    #: SHA-256 of the plan that ran (:func:`truepar.plan.digest.plan_digest`): what
    #: ``run --resume`` checks before it reuses this trace's results.
    plan_sha256: str | None = None
    #: A resumed run (``run --resume``): the trace it took results from, the ops reused and run
    #: again, and the reused ops' spans (on their own runs' clocks, outside this run's measures).
    resumed_from: Mapping[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.OK

    @property
    def interrupt_exit_code(self) -> int | None:
        """The shell's code for the signal that interrupted the run: 143 for SIGTERM, 130 for
        Ctrl-C (or any other interruption); ``None`` when it was not interrupted."""
        if self.status is not RunStatus.INTERRUPTED:
            return None
        return 143 if self.interrupted_by == "SIGTERM" else 130

    def spans_of(self, op_id: str) -> list[Span]:
        return [s for s in self.spans if s.op_id == op_id]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "truepar.trace",
            "format_version": 1,
            "plan": self.plan_name,
            **({"plan_sha256": self.plan_sha256} if self.plan_sha256 is not None else {}),
            "backend": self.backend,
            "workers": self.workers,
            "status": self.status.value,
            "interrupted": self.status is RunStatus.INTERRUPTED,
            "interrupted_by": self.interrupted_by,
            "wall_anchor_unix_s": self.wall_anchor_unix_s,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "totals": self.totals.to_json(),
            "environment": self.environment.to_json(),
            "abandoned_threads": self.abandoned_threads,
            "results": {k: _jsonable_result(v) for k, v in self.results.items()},
            "waits": {k: list(v) for k, v in self.waits.items()},
            "spans": [s.to_json() for s in self.spans],
            # Written only when a budget (or an adaptive resource) was in play, so traces of
            # other runs stay as they were.
            **{
                key: jsonable(value)
                for key, value in (
                    ("budget", self.budget),
                    ("context", self.context),
                    ("handoff", self.handoff),
                    ("adaptive", self.adaptive),
                    ("nodes", self.nodes),
                    ("resumed_from", self.resumed_from),
                )
                if value is not None
            },
        }


def _jsonable_result(result: OpResult) -> dict[str, Any]:
    d = result.to_json()
    d["value"] = jsonable(d["value"])
    return d


def finite(value: Any) -> Any:
    """``value`` with every infinite or NaN float replaced by ``None``: JSON has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def jsonable(value: Any) -> Any:
    """A JSON-safe view of an op's value (bytes become text, unknown objects their repr)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    return repr(value)


def quick_factory(cls: Callable[P, T]) -> Callable[P, T]:
    """``cls(...)`` for a frozen, slotted dataclass, without paying for its frozenness.

    A frozen dataclass's ``__init__`` must store each field through ``object.__setattr__``
    (its own ``__setattr__`` raises), about 0.15 µs a field: 4 µs for a span, more than the
    scheduler's whole decision for an instant op. The factory builds the instance as a plain
    slotted twin of ``cls`` — the same slots in the same order, hence the same memory layout —
    with ordinary stores, then gives it its real class. What it returns is an ordinary
    instance of ``cls``: equal to ``cls(...)``, and frozen, hashed, printed, replaced and
    pickled as one. For the hot paths (a span, an outcome, a result per attempt); elsewhere,
    call ``cls``.
    """
    twin = dataclasses.make_dataclass(
        cls.__name__,
        [
            (
                f.name,
                f.type,
                dataclasses.field(default=f.default, default_factory=f.default_factory),
            )
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        ],
        slots=True,
        eq=False,
        repr=False,
        match_args=False,
    )

    def make(*args: P.args, **kwargs: P.kwargs) -> T:
        obj = twin(*args, **kwargs)
        obj.__class__ = cls
        return obj  # type: ignore[no-any-return]

    return make
