"""``resume(plan, trace)``: rerun what did not succeed, like GNU parallel's ``--resume-failed``.

The ops of ``plan`` that ended ``ok`` in an earlier run's trace keep that result; every other
op (failed, timed out, crashed, cancelled, skipped, or never recorded — an interrupted run's
ops that never started) runs again, and with it every op that comes after one of those in the
plan's graph (``after`` and conflict edges, the scheduler's one rule), however far down. Those
ops run as a plan of their own through :func:`~truepar.engine.run.run`, the ordinary engine;
the scheduler knows nothing of resuming.

The trace is only trusted for the plan it ran: its ``plan_sha256`` must be this plan's
(:func:`~truepar.plan.digest.plan_digest`), else :class:`~truepar.errors.UsageError`.

The returned trace measures this run and nothing else: ``start_ns``/``end_ns``, ``spans`` and the
totals' wall, CPU and Σ op time are this run's, so its concurrency and cores used are not
flattered by work done another day. Its ``results`` and counts cover every op of the plan, the
reused ones included (``status`` is ``ok`` when all are ok now), and ``resumed_from`` says what
was reused, from which trace, with the reused ops' spans on their own runs' clocks. A resumed
trace can be resumed in its turn.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from truepar.engine.environment import environment
from truepar.engine.observer import Observer
from truepar.engine.run import as_plan, run
from truepar.errors import UsageError
from truepar.fileio import read_bounded
from truepar.plan.digest import plan_digest
from truepar.plan.graph import build_graph
from truepar.plan.models import Plan
from truepar.records import OpResult, RunStatus, RunTotals, RunTrace, Status

#: The largest trace file read (a trace of 100,000 ops with their outputs is some hundred MiB).
MAX_TRACE_BYTES = 512 << 20

#: What a trace file may be, for :func:`resume`: a path, a trace, or a trace's JSON.
TraceSource = str | Path | RunTrace | Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Resumption:
    """What resuming ``plan`` from a trace does: the ops reused, the ops run again."""

    plan: Plan
    plan_sha256: str
    #: The trace file (absolute), or ``None`` for a trace given in memory.
    source: str | None
    #: SHA-256 of the trace file's bytes (of its canonical JSON, for one given in memory).
    source_sha256: str
    #: Op ids whose results are taken from the trace, in plan order.
    reused: tuple[str, ...]
    #: Op ids that run again, in plan order.
    rerun: tuple[str, ...]
    results: Mapping[str, OpResult]
    #: The reused ops' spans, each with its run's ``run_wall_anchor_unix_s`` and ``run_start_ns``.
    spans: tuple[Mapping[str, Any], ...]

    def reduced_plan(self) -> Plan:
        """The ops to run again, as a plan of their own: ``after`` an op that is reused is
        already satisfied, so it is dropped; everything else is the plan's."""
        again = frozenset(self.rerun)
        ops = tuple(
            op.model_copy(update={"after": tuple(d for d in op.after if d in again)})
            if any(d not in again for d in op.after)
            else op
            for op in self.plan.ops
            if op.id in again
        )
        fields = {name: getattr(self.plan, name) for name in type(self.plan).model_fields}
        reduced = type(self.plan)(**{**fields, "ops": ops})
        reduced.check()
        return reduced

    def to_json(self) -> dict[str, Any]:
        """The trace's ``resumed_from`` section."""
        return {
            "trace": self.source,
            "trace_sha256": self.source_sha256,
            "plan_sha256": self.plan_sha256,
            "reused": list(self.reused),
            "rerun": list(self.rerun),
            "spans": [dict(s) for s in self.spans],
        }

    def merge(self, trace: RunTrace | None, *, backend: str, workers: int) -> RunTrace:
        """The whole plan's trace: ``trace`` (the reduced plan's run, or ``None`` when nothing
        ran) with the reused results added, counted, and listed in ``resumed_from``."""
        results: dict[str, OpResult] = {}
        for op in self.plan.ops:
            r = self.results.get(op.id)
            if r is None and trace is not None:
                r = trace.results.get(op.id)
            if r is not None:
                results[op.id] = r
        if trace is None:
            trace = _empty_trace(self.plan, backend, workers)
        statuses = [r.status for r in results.values()]
        ok = statuses.count(Status.OK)
        failed = sum(statuses.count(s) for s in (Status.FAILED, Status.TIMEOUT, Status.CRASHED))
        totals = dataclasses.replace(
            trace.totals,
            ops=len(self.plan.ops),
            ok=ok,
            failed=failed,
            skipped=statuses.count(Status.SKIPPED),
            cancelled=statuses.count(Status.CANCELLED),
        )
        if trace.status is RunStatus.INTERRUPTED:
            status = RunStatus.INTERRUPTED
        else:
            status = RunStatus.OK if ok == len(self.plan.ops) else RunStatus.FAILED
        return dataclasses.replace(
            trace,
            plan_name=self.plan.name,
            status=status,
            results=results,
            totals=totals,
            plan_sha256=self.plan_sha256,
            resumed_from=self.to_json(),
        )


def plan_resume(plan: Plan | str | Path | Mapping[str, Any], trace: TraceSource) -> Resumption:
    """Check that ``trace`` ran ``plan`` and split the plan's ops into reused and run again.

    Raises :class:`UsageError` (one line) when the trace cannot be read, is not a run trace,
    records no plan digest, or ran another plan.
    """
    checked = as_plan(plan)
    data, source, source_sha = _read(trace)
    label = f"cannot resume from {source!r}" if source else "cannot resume from that trace"
    theirs = data.get("plan_sha256")
    if not isinstance(theirs, str):
        raise UsageError(
            f"{label}: it records no plan digest (written by an older truepar?); "
            "run the plan again without --resume"
        )
    ours = plan_digest(checked)
    if theirs != ours:
        raise UsageError(
            f"{label}: it is the trace of another plan, or of another version of this one "
            f"(plan sha256 {theirs[:12]}… there, {ours[:12]}… here); give this plan's trace, "
            "or run without --resume"
        )
    if isinstance(trace, RunTrace):
        previous = {k: r for k, r in trace.results.items() if r.status is Status.OK}
    else:
        previous = _ok_results(data, label)
    rerun = _rerun(checked, previous)
    reused = tuple(op.id for op in checked.ops if op.id not in rerun)
    return Resumption(
        plan=checked,
        plan_sha256=ours,
        source=source,
        source_sha256=source_sha,
        reused=reused,
        rerun=tuple(op.id for op in checked.ops if op.id in rerun),
        results={op_id: previous[op_id] for op_id in reused},
        spans=_reused_spans(data, frozenset(reused)),
    )


def resume(
    plan: Plan | str | Path | Mapping[str, Any],
    trace: TraceSource,
    *,
    backend: str | None = None,
    workers: int | None = None,
    observer: Observer | None = None,
    checks: bool = True,
) -> RunTrace:
    """Run again the ops of ``plan`` that did not end ``ok`` in ``trace`` (a trace file, the
    evidence file of a run, a :class:`RunTrace` or its JSON), and those after them; take the
    others' results from the trace. The arguments after ``trace`` are :func:`run`'s.

    Returns the whole plan's trace (see the module's docstring). When every op ended ``ok``
    there is nothing to run: the trace says so, all ops reused, no time measured.
    """
    return resume_planned(
        plan_resume(plan, trace), backend=backend, workers=workers, observer=observer, checks=checks
    )


def resume_planned(
    resumption: Resumption,
    *,
    backend: str | None = None,
    workers: int | None = None,
    observer: Observer | None = None,
    checks: bool = True,
) -> RunTrace:
    """:func:`resume`, from a :class:`Resumption` already made by :func:`plan_resume`."""
    plan = resumption.plan
    name = backend or plan.defaults.backend
    width = workers if workers is not None else plan.defaults.workers
    if not resumption.rerun:
        return resumption.merge(None, backend=name, workers=width)
    trace = run(
        resumption.reduced_plan(),
        backend=backend,
        workers=workers,
        observer=observer,
        checks=checks,
    )
    return resumption.merge(trace, backend=trace.backend, workers=trace.workers)


def _rerun(plan: Plan, ok: Mapping[str, OpResult]) -> set[str]:
    """The ops that did not end ok, and every op after one of them in the graph."""
    graph = build_graph(plan)
    todo = [i for i, op_id in enumerate(graph.ids) if op_id not in ok]
    seen = set(todo)
    while todo:
        for j in graph.succs[todo.pop()]:
            if j not in seen:
                seen.add(j)
                todo.append(j)
    return {graph.ids[i] for i in seen}


def _read(trace: TraceSource) -> tuple[Mapping[str, Any], str | None, str]:
    """The trace's JSON, where it came from, and the SHA-256 of its bytes."""
    if isinstance(trace, RunTrace):
        data = trace.to_json()
        return data, None, _sha_of_json(data)
    if isinstance(trace, Mapping):
        return _trace_part(trace, "cannot resume from that trace"), None, _sha_of_json(trace)
    path = Path(trace)
    label = f"cannot resume from {str(path)!r}"
    raw = read_bounded(
        path,
        MAX_TRACE_BYTES,
        lambda why: UsageError(f"{label}: {why}"),
        missing="no such file; give the --json trace of a run",
        unreadable="cannot read it",
        not_this="not a run trace",
    )
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise UsageError(f"{label}: not JSON; give the --json trace of a run") from None
    source = str(path.resolve())
    return _trace_part(doc, f"cannot resume from {source!r}"), source, _sha(raw)


def _trace_part(doc: Any, label: str) -> Mapping[str, Any]:
    """The run trace in ``doc``: ``doc`` itself, or the data of a run's evidence."""
    if isinstance(doc, Mapping) and doc.get("kind") == "run" and isinstance(doc.get("data"), dict):
        doc = doc["data"]
    if not isinstance(doc, Mapping) or doc.get("format") != "truepar.trace":
        raise UsageError(f"{label}: not a run trace (give what `truepar run --json` wrote)")
    if not isinstance(doc.get("results"), Mapping) or not isinstance(doc.get("spans"), list):
        raise UsageError(f"{label}: a run trace without its results and spans")
    return doc


def _ok_results(data: Mapping[str, Any], label: str) -> dict[str, OpResult]:
    out: dict[str, OpResult] = {}
    for op_id, raw in data["results"].items():
        if not isinstance(raw, Mapping) or raw.get("status") != Status.OK.value:
            continue
        try:
            out[str(op_id)] = OpResult(
                str(op_id),
                Status.OK,
                int(raw.get("attempts", 1)),
                raw.get("value"),
                str(raw.get("summary") or ""),
                None,
            )
        except (TypeError, ValueError):
            raise UsageError(f"{label}: op {op_id!r}'s result is malformed") from None
    return out


def _reused_spans(data: Mapping[str, Any], reused: frozenset[str]) -> tuple[dict[str, Any], ...]:
    """The reused ops' spans: this trace's own, with its run's clock anchor added, and those it
    had reused itself (which carry their own)."""
    anchor = {
        "run_wall_anchor_unix_s": data.get("wall_anchor_unix_s"),
        "run_start_ns": data.get("start_ns"),
    }
    before = data.get("resumed_from")
    older: Iterable[Any] = before.get("spans", ()) if isinstance(before, Mapping) else ()
    spans = [{**s, **anchor} for s in data["spans"] if _op_of(s) in reused]
    spans += [dict(s) for s in older if _op_of(s) in reused]
    return tuple(spans)


def _op_of(span: Any) -> str | None:
    return str(span.get("op_id")) if isinstance(span, Mapping) else None


def _empty_trace(plan: Plan, backend: str, workers: int) -> RunTrace:
    """The trace of a run that ran nothing: no time, no spans."""
    now = time.monotonic_ns()
    return RunTrace(
        plan_name=plan.name,
        backend=backend,
        workers=workers,
        status=RunStatus.OK,
        wall_anchor_unix_s=time.time(),
        start_ns=now,
        end_ns=now,
        spans=(),
        results={},
        totals=RunTotals(wall_s=0.0, cpu_s=0.0, sum_op_s=0.0, ops=0, ok=0, failed=0),
        environment=environment(),
    )


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha_of_json(data: Mapping[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=repr)
    return _sha(text.encode("utf-8", "surrogatepass"))
