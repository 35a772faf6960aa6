"""What every tool shares: the common op fields, the context a tool runs in, its output.

A tool is a pydantic model of its op (``ReadOp``, ``BashOp`` …, all subclasses of :class:`OpBase`)
plus a sync ``run`` and, where the tool has real non-blocking I/O (subprocesses, HTTP, sleep), an
async ``arun``. A tool without ``arun`` runs on the async backend in a helper thread, as anyio and
aiofiles do for file I/O: there is no non-blocking file I/O in asyncio to use instead.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from truepar.errors import ConfinementError
from truepar.tools.bounds import MAX_COUNT, MAX_DURATION_S, MAX_RETRIES, unsafe_char
from truepar.tools.requests import Requests

#: Default cap on captured output per stream / per read, in bytes.
DEFAULT_MAX_BYTES = 1 << 20


class FakeSpec(BaseModel):
    """How an op behaves on the deterministic ``fake`` backend (virtual clock, no real work)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    duration_s: float = Field(default=0.001, ge=0, le=MAX_DURATION_S)
    #: CPU seconds the op is said to use; defaults to none (a pure wait).
    cpu_s: float = Field(default=0.0, ge=0, le=MAX_DURATION_S)
    #: Fail the first N attempts (to test retries), or every attempt with ``fail = -1``.
    fail: int = 0
    #: The op's worker "crashes" (status ``crashed``) instead of returning.
    crash: bool = False
    bytes_out: int = Field(default=0, ge=0, le=MAX_COUNT)
    value: Any = None
    #: The first N attempts fail as if their server answered 429 (to test adaptive resources).
    throttled: int = Field(default=0, ge=0, le=MAX_COUNT)


#: The ``fake`` table of an op without one (frozen, so shared: one fewer model per attempt).
_DEFAULT_FAKE = FakeSpec()


def describe_validation_error(exc: ValidationError) -> str:
    """The most useful of pydantic's errors, in one line: ``field 'x': what is wrong``.

    An unknown field (usually a typo) is reported before the "field required" it causes.
    """
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    loc = ".".join(str(part) for part in err["loc"] if not isinstance(part, int))
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field (check its spelling)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"field {loc!r}: {msg}{more}" if loc else f"{msg}{more}"


def labelled(label: str, exc: ValidationError) -> str:
    """``label field 'x': problem``, or ``label: problem`` when no one field is to blame."""
    described = describe_validation_error(exc)
    return f"{label} {described}" if described.startswith("field ") else f"{label}: {described}"


class OpBase(Requests):
    """Fields every op has, whatever its tool (with ``num_cpus``, ``num_gpus`` and
    ``custom_resources`` from :class:`~truepar.tools.requests.Requests`)."""

    #: ``allow_inf_nan=False``: every float of every tool's op is finite (subclasses inherit it).
    model_config = ConfigDict(
        extra="forbid", frozen=True, arbitrary_types_allowed=True, allow_inf_nan=False
    )

    #: Subclasses narrow this to ``Literal["read"]`` etc.; it selects the tool.
    tool: str
    id: str = Field(min_length=1)
    after: tuple[str, ...] = ()
    #: Paths (relative to the root) or resource names this op reads / writes: conflict edges.
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    #: A named resource (``[resources.X]``) whose ``max_concurrent`` caps this op.
    resource: str | None = None
    timeout: float | None = Field(default=None, gt=0, le=MAX_DURATION_S)
    retries: int | None = Field(default=None, ge=0, le=MAX_RETRIES)
    #: Run this op on another backend than the plan's default.
    backend: str | None = None
    fake: FakeSpec | None = None
    #: Requests of its resource's rate budget this op uses (a GitHub search: 1; an agent: its
    #: expected calls). The limiter counts whole requests, so a fraction rounds up there.
    cost: float = Field(default=1, ge=0, le=MAX_COUNT)
    #: LLM tokens it is expected to use, counted against its resource's ``tokens_per_minute``.
    tokens: int = Field(default=0, ge=0, le=MAX_COUNT)
    #: Past the context budget's ``truncate_at``, its result is cut to this many tokens.
    max_output_tokens: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    #: Free labels; ``github`` or ``llm`` mark an op as using a rate-limited service.
    tags: tuple[str, ...] = ()

    @field_validator("after", "reads", "writes", "tags", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v

    @field_validator("id", "after")
    @classmethod
    def _plain_names(cls, v: Any) -> Any:
        for name in (v,) if isinstance(v, str) else v:
            bad = unsafe_char(name)
            if bad is not None:
                raise ValueError(f"{name!r} holds {bad}: ids are printable text, one line")
        return v

    def implied_reads(self) -> tuple[str, ...]:
        """Paths the tool reads by its nature (a ``read`` reads its file), added to ``reads``."""
        return ()

    def implied_writes(self) -> tuple[str, ...]:
        """Paths the tool writes by its nature (an agent changing its checkout in place)."""
        return ()

    def fake_spec(self) -> FakeSpec:
        return self.fake or _DEFAULT_FAKE


#: Guards every context's cancellation state: contention is rare, and one lock per attempt
#: would cost more (contexts are made per op attempt, on the scheduler's hot path).
_CANCEL_LOCK = threading.Lock()


class ToolContext:
    """Where and how a tool runs. Created by the backend for each attempt, never pickled."""

    __slots__ = ("_callbacks", "_cancelled", "_event", "child_cpu_s", "plan_dir", "root")

    def __init__(self, root: Path, plan_dir: Path) -> None:
        self.root = root
        self.plan_dir = plan_dir
        #: CPU seconds of subprocesses this op waited for (their rusage), added by the tool.
        self.child_cpu_s = 0.0
        self._cancelled = False
        self._event: threading.Event | None = None
        self._callbacks: list[Callable[[], None]] | None = None

    def resolve(self, path: str) -> Path:
        return resolve_in_root(self.root, path)

    @property
    def cancelled(self) -> bool:
        event = self._event
        return self._cancelled or (event is not None and event.is_set())

    @property
    def cancel(self) -> threading.Event:
        """Set when the op is cancelled or timed out: tools that wait use it to stop early.

        Made on first use: most ops never wait on it.
        """
        event = self._event
        if event is None:
            with _CANCEL_LOCK:
                if self._event is None:
                    self._event = threading.Event()
                    if self._cancelled:
                        self._event.set()
                event = self._event
        return event

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` (from any thread) when the op is cancelled; at once if it already is."""
        with _CANCEL_LOCK:
            if not self._cancelled:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(callback)
                return
        callback()

    def request_cancel(self) -> None:
        """Cancel the op: set the event and run the callbacks (kill its subprocess, ...)."""
        with _CANCEL_LOCK:
            if self._cancelled:
                return
            self._cancelled = True
            event, callbacks, self._callbacks = self._event, self._callbacks or [], None
        if event is not None:
            event.set()
        for callback in callbacks:
            callback()


@dataclasses.dataclass(frozen=True, slots=True)
class ToolOutput:
    """A tool's result: the value, a one-line summary, the size of what it produced.

    ``error`` set means the op failed but still has a value worth keeping (a command's output
    with a non-zero exit code, an HTTP 500 body). ``tokens_out``: the exact tokens of the result
    where the tool knows them (an ``llm`` call's completion tokens, as its server reports them);
    otherwise they are estimated from ``bytes_out``. ``throttled``: how many times its server
    answered 429 or 503 (Too Many Requests, Service Unavailable), waited for or not — the signal
    an ``adaptive`` resource lowers its concurrency on.
    """

    value: Any
    summary: str
    bytes_out: int = 0
    error: str | None = None
    tokens_out: int | None = None
    throttled: int = 0


SyncRun = Callable[[Any, ToolContext], ToolOutput]
AsyncRun = Callable[[Any, ToolContext], Awaitable[ToolOutput]]


@dataclasses.dataclass(frozen=True, slots=True)
class Tool:
    """One registered tool: its op model and its implementations."""

    name: str
    spec: type[OpBase]
    run: SyncRun
    arun: AsyncRun | None = None


@functools.lru_cache(maxsize=64)
def _real(root: Path) -> Path:
    return root.resolve()


def resolve_in_root(root: Path, path: str) -> Path:
    """``path`` (relative to ``root``, or absolute inside it) resolved, symlinks included.

    Raises :class:`ConfinementError` when the result lies outside ``root`` — through ``..``,
    an absolute path elsewhere, or a symlink that points out.
    """
    base = _real(root)
    if path in (".", ""):
        return base
    candidate = Path(path)
    full = candidate if candidate.is_absolute() else base / candidate
    resolved = Path(os.path.realpath(full))
    if resolved != base and not resolved.is_relative_to(base):
        raise ConfinementError(f"path {path!r} leaves the plan root {str(base)!r}")
    return resolved
