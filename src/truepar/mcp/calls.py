"""An MCP call, run: arguments checked against truepar's op models, the op run by the engine.

Every call — a plain ``read`` as much as a ``batch`` of twenty ops — becomes a plan and runs
through :func:`truepar.arun` on one ``async`` backend the session keeps (its threads stay warm
between calls), so a call gets exactly what a plan's op gets: the tool's confinement to the
root, its output caps, the op's timeout (the call's ``timeout``, else the server's), one span
on the session's timeline. At most ``workers`` ops run at once across all calls in flight.

Nothing a client sends raises: bad arguments are a :class:`CallResult` with ``is_error`` and one
line naming what to fix (the call is recorded as ``rejected``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from truepar.backends import Backend, backend_class
from truepar.engine.observer import Observer
from truepar.engine.run import arun
from truepar.errors import BadInput, PlanError
from truepar.mcp.render import batch_text, op_text
from truepar.mcp.session import CallRecord, Session
from truepar.plan.graph import build_graph
from truepar.plan.load import plan_from_dict
from truepar.plan.models import Defaults, Plan
from truepar.records import RunTrace, Span, Status, jsonable
from truepar.tools import TOOLS, OpBase
from truepar.tools.base import describe_validation_error

#: The tools the server serves one op at a time, and what a ``batch`` op may use.
SERVED = ("read", "ls", "grep", "bash", "http")
#: Op fields that are the plan's business, not a call's: ordering, budgets, backends.
_PLAN_FIELDS = frozenset(
    {
        "id",
        "tool",
        "after",
        "resource",
        "backend",
        "fake",
        "cost",
        "tokens",
        "max_output_tokens",
        "tags",
        "retries",
        "num_cpus",
        "num_gpus",
        "custom_resources",
    }
)
#: Only ``bash`` takes ``reads``/``writes``: the others' paths follow from their arguments.
_DECLARES_PATHS = frozenset({"bash"})
#: The server's per-op timeout when neither the call nor ``--timeout`` gives one.
DEFAULT_TIMEOUT_S = 600.0


@dataclasses.dataclass(frozen=True, slots=True)
class CallResult:
    """What a call answers: text for the model, structured content, whether it is an error."""

    text: str
    structured: dict[str, Any]
    is_error: bool = False


def call_fields(tool: str) -> frozenset[str]:
    """The argument names ``tool`` takes: its op's fields, less the plan's."""
    fields = TOOLS[tool].spec.model_fields
    names = {f.alias or name for name, f in fields.items()} - _PLAN_FIELDS
    if tool not in _DECLARES_PATHS:
        names -= {"reads", "writes"}
    return frozenset(names)


def input_schema(tool: str) -> dict[str, Any]:
    """The JSON schema of ``tool``'s arguments, from its op model (one source of truth)."""
    schema = TOOLS[tool].spec.model_json_schema(by_alias=True)
    keep = call_fields(tool)
    props = {k: v for k, v in schema.get("properties", {}).items() if k in keep}
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    required = [k for k in schema.get("required", ()) if k in keep]
    if required:
        out["required"] = required
    return out


def paths_of(op: OpBase) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What ``op`` reads and writes, for the session's analysis: the paths it names, and for
    a shell command that declares neither, the whole root (it may change anything)."""
    reads = (*op.reads, *op.implied_reads())
    writes: tuple[str, ...] = (*op.writes, *op.implied_writes())
    if op.tool == "bash" and not op.reads and not op.writes:
        writes = (".",)
    return reads, writes


class _Slots:
    """At most ``n`` ops at once over every call in flight; a batch takes several slots at once,
    first come first served (so a big batch is not starved by a stream of small calls)."""

    def __init__(self, n: int) -> None:
        self.free = n
        self._waiting: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    @contextlib.asynccontextmanager
    async def hold(self, k: int) -> AsyncIterator[None]:
        if self._waiting or self.free < k:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry = (k, fut)
            self._waiting.append(entry)
            try:
                await fut
            except BaseException:
                if entry in self._waiting:
                    self._waiting.remove(entry)
                elif fut.done() and not fut.cancelled():
                    self._release(k)  # granted as it was cancelled: give the slots back
                raise
        else:
            self.free -= k
        try:
            yield
        finally:
            self._release(k)

    def _release(self, k: int) -> None:
        self.free += k
        while self._waiting and self._waiting[0][0] <= self.free:
            k0, fut = self._waiting.popleft()
            if not fut.done():
                self.free -= k0
                fut.set_result(None)


class _Forward(Observer):
    """Puts a call's spans on the session's timeline as they finish (a cancelled call's too)."""

    def __init__(self, session: Session, call: CallRecord, names: Mapping[str, str]) -> None:
        self.session, self.call, self.names = session, call, names

    def op_started(self, op_id: str, attempt: int) -> None:
        if self.call.started_ns is None:
            self.call.started_ns = time.monotonic_ns()

    def op_finished(self, span: Span) -> None:
        self.session.add_span(span, self.names.get(span.op_id, span.op_id), self.call)


class Runner:
    """Runs a session's calls: one warm ``async`` backend, at most ``workers`` ops at once."""

    def __init__(self, session: Session, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.session = session
        self.timeout_s = timeout_s
        self._slots = _Slots(session.workers)
        self._backend: Backend | None = None
        self._defaults = Defaults(
            root=str(session.root), backend="async", workers=session.workers, timeout=timeout_s
        )

    async def start(self) -> None:
        self._backend = backend_class("async")(self.session.workers)
        await self._backend.start(self.session.workers)

    async def aclose(self) -> None:
        if self._backend is not None:
            self.session.abandoned_threads = self._backend.abandoned_threads
            await self._backend.aclose()
            self._backend = None

    async def call(self, tool: str, arguments: Mapping[str, Any] | None) -> CallResult:
        """Run one call of ``tool`` (one of :data:`SERVED`, or ``batch``)."""
        record = self.session.receive(tool)
        try:
            plan = self._plan(record, tool, dict(arguments or {}))
        except BadInput as exc:
            self.session.finish_call(record, "rejected", error=str(exc))
            return CallResult(f"{tool}: {exc}", {"status": "rejected", "error": str(exc)}, True)
        names = self.session.add_ops(record, plan)
        reads: list[str] = []
        writes: list[str] = []
        for op in plan.ops:
            r, w = paths_of(op)
            reads += r
            writes += w
        self.session.declare(record, reads, writes)
        assert self._backend is not None, "Runner.start() first"
        try:
            async with self._slots.hold(min(len(plan.ops), self.session.workers)):
                trace = await arun(
                    plan,
                    backend_instance=self._backend,
                    observer=_Forward(self.session, record, names),
                    checks=False,
                )
        except asyncio.CancelledError:
            reason = "cancelled: the client cancelled the call or went away"
            self.session.finish_call(record, Status.CANCELLED.value, names=names, error=reason)
            raise
        status = _call_status(trace)
        self.session.finish_call(
            record,
            status,
            results=trace.results,
            names=names,
            waits=trace.waits,
            error=next((r.error for r in trace.results.values() if r.error), None),
        )
        if tool == "batch":
            return _batch_result(plan, trace)
        return _single_result(plan.ops[0], trace)

    def _plan(self, record: CallRecord, tool: str, args: dict[str, Any]) -> Plan:
        defaults = self._defaults
        if tool == "batch":
            return _batch_plan(args, defaults, self.session)
        if tool not in SERVED:
            raise BadInput(f"unknown tool {tool!r} (one of: {', '.join((*SERVED, 'batch'))})")
        op = _op(tool, args, f"c{record.n}", where="")
        return Plan(
            name=f"mcp call {record.n}",
            defaults=defaults,
            ops=(op,),
            source="<mcp>",
            base_dir=self.session.root,
        )


def _op(tool: str, args: Mapping[str, Any], op_id: str, *, where: str) -> OpBase:
    if not isinstance(args, Mapping):
        raise BadInput(f"{where}arguments must be an object of fields")
    taken = call_fields(tool)
    for name in args:
        if name in _PLAN_FIELDS or name not in taken:
            if name in ("reads", "writes"):
                why = "its paths follow from its arguments"
            elif name in _PLAN_FIELDS:
                why = "use batch for ops that need ordering, retries or resources"
            else:
                why = f"it takes: {', '.join(sorted(taken))}"
            raise BadInput(f"{where}{tool} takes no argument {name!r} ({why})")
    try:
        return TOOLS[tool].spec.model_validate({**args, "id": op_id, "tool": tool})
    except ValidationError as exc:
        raise BadInput(f"{where}{describe_validation_error(exc)}") from None


def _batch_plan(args: Mapping[str, Any], defaults: Defaults, session: Session) -> Plan:
    extra = sorted(set(args) - {"ops"})
    if extra:
        raise BadInput(f"batch takes only 'ops', not {extra[0]!r}")
    ops = args.get("ops")
    if not isinstance(ops, Sequence) or isinstance(ops, str | bytes) or not ops:
        raise BadInput("batch needs 'ops': a non-empty list of ops ({id, tool, ...})")
    for i, raw in enumerate(ops):
        if not isinstance(raw, Mapping):
            raise BadInput(f"ops[{i}]: an op must be an object of fields")
        tool = raw.get("tool")
        if tool not in SERVED:
            raise BadInput(f"ops[{i}]: tool must be one of {', '.join(SERVED)}, not {tool!r}")
        if "fake" in raw or "backend" in raw:
            raise BadInput(f"ops[{i}]: fake and backend are not taken by batch ops")
    raw_plan = {"name": "mcp batch", "defaults": defaults.model_dump(), "ops": list(ops)}
    try:
        return plan_from_dict(raw_plan, source="batch", base_dir=session.root)
    except PlanError as exc:
        raise BadInput(str(exc).removeprefix("batch: ")) from None


def _call_status(trace: RunTrace) -> str:
    statuses = [r.status for r in trace.results.values()]
    if all(s is Status.OK for s in statuses):
        return Status.OK.value
    bad = next(s for s in statuses if s is not Status.OK)
    return bad.value


def _last_spans(trace: RunTrace) -> dict[str, Span]:
    last: dict[str, Span] = {}
    for span in trace.spans:
        last[span.op_id] = span
    return last


def _single_result(op: OpBase, trace: RunTrace) -> CallResult:
    result = trace.results[op.id]
    span = _last_spans(trace).get(op.id)
    structured: dict[str, Any] = {
        "status": result.status.value,
        "summary": result.summary,
        "value": jsonable(result.value),
        "error": result.error,
        "duration_s": span.duration_s if span is not None else 0.0,
    }
    text = op_text(op.tool, result.value, result.error, result.summary)
    return CallResult(text, structured, result.status is not Status.OK)


def _batch_result(plan: Plan, trace: RunTrace) -> CallResult:
    spans = _last_spans(trace)
    first = {s.op_id: s for s in reversed(trace.spans)}
    results = []
    for op in plan.ops:
        result = trace.results[op.id]
        entry: dict[str, Any] = {"id": op.id, "tool": op.tool, "status": result.status.value}
        if result.status is Status.OK:
            entry["value"] = jsonable(result.value)
        else:
            entry["error"] = result.error
            if result.value is not None:
                entry["value"] = jsonable(result.value)
        start, end = first.get(op.id), spans.get(op.id)
        entry["start_s"] = (start.start_ns - trace.start_ns) / 1e9 if start else None
        entry["end_s"] = (end.end_ns - trace.start_ns) / 1e9 if end else None
        entry["summary"] = result.summary
        results.append(entry)
    op_s: dict[str, float] = {}
    for span in trace.spans:
        op_s[span.op_id] = op_s.get(span.op_id, 0.0) + span.duration_s
    wall = trace.totals.wall_s
    cpu = sum((s.cpu_s or 0.0) for s in trace.spans)
    measured = {
        "wall_s": wall,
        "sum_op_s": trace.totals.sum_op_s,
        "avg_concurrency": trace.totals.avg_concurrency,
        "cores_used": cpu / wall if wall > 0 else 0.0,
        "critical_path_s": build_graph(plan).critical_path(op_s)[0],
    }
    # A batch that ran is not an error, whatever its ops did: each op's status says that,
    # and an error result would hide the others' values from many clients.
    return CallResult(batch_text(results, measured), {"results": results, "measured": measured})
