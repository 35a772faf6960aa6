"""One MCP session, recorded: every call the server received, every op it ran, as run evidence.

Each call is a :class:`CallRecord` — received, started, finished, tool, the paths it read and
wrote, bytes and tokens out, status. Each op a call ran (one for a plain call, one per op of a
``batch``) is a span on one timeline, so the session is an ordinary run trace: ``truepar
report`` renders it, ``truepar verify`` checks it. The calls and their summary (overlap, missed
parallelism: :mod:`truepar.mcp.analysis`) ride along in the trace's ``session`` section.

The evidence is rewritten (signed when a key exists) at most once a second while the session
runs, marked ``interrupted`` — what a killed server leaves behind — and once more at the end,
when it is also recorded in the ledger.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from truepar.engine.environment import environment, own_cpu_s
from truepar.evidence.build import document
from truepar.evidence.summaries import run_summary
from truepar.evidence.writer import EvidenceWriter, Recorded
from truepar.mcp.analysis import Call, SessionSummary, summarize
from truepar.plan.graph import build_graph, path_key
from truepar.plan.models import Defaults, Plan
from truepar.records import (
    OpResult,
    RunStatus,
    RunTotals,
    RunTrace,
    Span,
    Status,
)
from truepar.tools.base import OpBase

#: The plan name a session's evidence and ledger record carry.
SESSION_PLAN = "mcp-session"
#: Seconds between two snapshots of a running session.
SNAPSHOT_EVERY_S = 1.0


@dataclasses.dataclass
class CallRecord:
    """One call the server received: when, what, and how it ended.

    ``status`` is ``running`` until it ends; then an op status (``ok``, ``failed``, ``timeout``,
    ``cancelled`` ...), or ``rejected`` for a call whose arguments were refused before any op ran.
    """

    n: int
    tool: str
    received_ns: int
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    started_ns: int | None = None
    finished_ns: int | None = None
    status: str = "running"
    bytes_out: int = 0
    tokens_out: int = 0
    error: str | None = None
    #: The ids of the ops it ran, as the session trace names them.
    ops: list[str] = dataclasses.field(default_factory=list)

    def to_json(self, origin_ns: int) -> dict[str, Any]:
        def rel(ns: int | None) -> float | None:
            return None if ns is None else (ns - origin_ns) / 1e9

        return {
            "n": self.n,
            "tool": self.tool,
            "received_s": rel(self.received_ns),
            "started_s": rel(self.started_ns),
            "finished_s": rel(self.finished_ns),
            "reads": list(self.reads),
            "writes": list(self.writes),
            "status": self.status,
            "bytes_out": self.bytes_out,
            "tokens_out": self.tokens_out,
            "error": self.error,
            "ops": list(self.ops),
        }


class Session:
    """The calls and ops of one server's life, and the evidence they make."""

    def __init__(self, root: Path, workers: int) -> None:
        self.root = root
        self.workers = workers
        self.anchor_unix_s = time.time()
        self.start_ns = time.monotonic_ns()
        self._cpu0 = own_cpu_s()
        self.calls: list[CallRecord] = []
        self.spans: list[Span] = []
        self.results: dict[str, OpResult] = {}
        self.waits: dict[str, tuple[str, ...]] = {}
        #: The ops run, as the session's plan lists them (ids prefixed by their call).
        self.ops: list[OpBase] = []
        self.abandoned_threads = 0
        #: Bumped on every change: a snapshot is written only when something changed.
        self.version = 0
        self.ended_ns: int | None = None

    # -- recording ------------------------------------------------------------------------

    def receive(self, tool: str) -> CallRecord:
        call = CallRecord(n=len(self.calls) + 1, tool=tool, received_ns=time.monotonic_ns())
        self.calls.append(call)
        self.version += 1
        return call

    def declare(self, call: CallRecord, reads: Sequence[str], writes: Sequence[str]) -> None:
        """The paths ``call`` reads and writes (as given; stored as the plan graph keys them)."""
        root = str(self.root)
        call.reads = tuple(dict.fromkeys(path_key(p, root) for p in reads))
        call.writes = tuple(dict.fromkeys(path_key(p, root) for p in writes))

    def add_ops(self, call: CallRecord, plan: Plan) -> dict[str, str]:
        """Take ``plan``'s ops into the session's plan, renamed ``<call>.<op>``; the renaming.

        Within a batch the graph's order (``after`` and conflict edges) is kept as ``after``;
        across calls nothing orders ops — the client decided what ran when.
        """
        prefix = f"c{call.n}"
        names = {op.id: f"{prefix}.{op.id}" if len(plan.ops) > 1 else prefix for op in plan.ops}
        preds = build_graph(plan).preds if len(plan.ops) > 1 else ((),)
        for i, op in enumerate(plan.ops):
            after = tuple(names[plan.ops[p].id] for p in preds[i])
            self.ops.append(
                op.model_copy(
                    update={"id": names[op.id], "after": after, "reads": (), "writes": ()}
                )
            )
            call.ops.append(names[op.id])
        self.version += 1
        return names

    def add_span(self, span: Span, name: str, call: CallRecord) -> None:
        if call.started_ns is None or span.start_ns < call.started_ns:
            call.started_ns = span.start_ns
        self.spans.append(dataclasses.replace(span, op_id=name))
        call.bytes_out += span.bytes_out
        call.tokens_out += span.tokens_out
        self.version += 1

    def finish_call(
        self,
        call: CallRecord,
        status: str,
        *,
        results: Mapping[str, OpResult] | None = None,
        names: Mapping[str, str] | None = None,
        waits: Mapping[str, tuple[str, ...]] | None = None,
        error: str | None = None,
    ) -> None:
        call.finished_ns = time.monotonic_ns()
        call.status = status
        call.error = error
        names = names or {}
        for op_id, result in (results or {}).items():
            name = names.get(op_id, op_id)
            self.results[name] = dataclasses.replace(result, op_id=name)
        for op_id, why in (waits or {}).items():
            self.waits[names.get(op_id, op_id)] = why
        for name in call.ops:  # ops a cancelled call never got to: cancelled, like a run's
            if name not in self.results:
                self.results[name] = OpResult(name, Status.CANCELLED, 0, error=error)
        self.version += 1

    def copy(self) -> Session:
        """A copy that later calls do not change: what a snapshot writes from another thread."""
        twin = Session.__new__(Session)
        twin.__dict__.update(self.__dict__)
        twin.calls = [dataclasses.replace(c, ops=list(c.ops)) for c in self.calls]
        twin.spans, twin.ops = list(self.spans), list(self.ops)
        twin.results, twin.waits = dict(self.results), dict(self.waits)
        return twin

    # -- reading --------------------------------------------------------------------------

    def analysis_calls(self, end_ns: int | None = None) -> list[Call]:
        """The calls that ran (not those refused), as :func:`summarize` takes them."""
        end = end_ns if end_ns is not None else time.monotonic_ns()
        return [
            Call(
                n=c.n,
                tool=c.tool,
                received_s=(c.received_ns - self.start_ns) / 1e9,
                finished_s=((c.finished_ns or end) - self.start_ns) / 1e9,
                reads=c.reads,
                writes=c.writes,
            )
            for c in self.calls
            if c.status != "rejected"
        ]

    def summary(self) -> SessionSummary:
        return summarize(self.analysis_calls())

    def plan(self) -> Plan:
        """The session as a plan: every op it ran (see :meth:`add_ops`)."""
        return Plan(
            name=SESSION_PLAN,
            defaults=Defaults(root=str(self.root), backend="async", workers=self.workers),
            ops=tuple(self.ops),
            source="<mcp>",
            base_dir=self.root,
        )

    def trace(self, status: RunStatus, interrupted_by: str | None, end_ns: int) -> RunTrace:
        spans = tuple(sorted(self.spans, key=lambda s: (s.start_ns, s.op_id)))
        statuses = [r.status for r in self.results.values()]
        wall = (end_ns - self.start_ns) / 1e9
        totals = RunTotals(
            wall_s=wall,
            cpu_s=max(0.0, own_cpu_s() - self._cpu0),
            sum_op_s=sum(s.duration_s for s in spans),
            ops=len(self.ops),
            ok=statuses.count(Status.OK),
            failed=sum(statuses.count(s) for s in (Status.FAILED, Status.TIMEOUT, Status.CRASHED)),
            skipped=statuses.count(Status.SKIPPED),
            cancelled=statuses.count(Status.CANCELLED),
        )
        return RunTrace(
            plan_name=SESSION_PLAN,
            backend="async",
            workers=self.workers,
            status=status,
            wall_anchor_unix_s=self.anchor_unix_s,
            start_ns=self.start_ns,
            end_ns=end_ns,
            spans=spans,
            results={op.id: self.results[op.id] for op in self.ops if op.id in self.results},
            totals=totals,
            environment=environment(),
            waits=dict(self.waits),
            abandoned_threads=self.abandoned_threads,
            interrupted_by=interrupted_by,
        )

    def section(self, end_ns: int, *, final: bool) -> dict[str, Any]:
        """The trace's ``session`` section: the server, every call, the summary."""
        return {
            "server": "truepar mcp",
            "root": str(self.root),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "final": final,
            "calls": [c.to_json(self.start_ns) for c in self.calls],
            "summary": summarize(self.analysis_calls(end_ns)).to_json(),
        }

    def document(
        self, status: RunStatus, *, interrupted_by: str | None = None, final: bool
    ) -> tuple[dict[str, Any], RunTrace]:
        """The session as run evidence (its ``data`` a trace with a ``session`` section)."""
        end_ns = self.ended_ns if self.ended_ns is not None else time.monotonic_ns()
        trace = self.trace(status, interrupted_by, end_ns)
        data = trace.to_json() | {"session": self.section(end_ns, final=final)}
        started = _iso(self.anchor_unix_s)
        ended = _iso(self.anchor_unix_s + (end_ns - self.start_ns) / 1e9)
        return document("run", self.plan(), data, started, ended), trace

    def final_status(self) -> RunStatus:
        if any(c.status == "running" for c in self.calls):
            return RunStatus.INTERRUPTED
        failed = any(r.status is not Status.OK for r in self.results.values())
        return RunStatus.FAILED if failed else RunStatus.OK


def _iso(unix_s: float) -> str:
    when = datetime.datetime.fromtimestamp(unix_s, datetime.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SessionRecorder:
    """Writes a :class:`Session` as evidence: snapshots while it runs, the last one at the end.

    Made before the server serves, so that an unwritable ``out``, a key with loose permissions
    or an unusable ledger is an error before the first call, not after the last.
    """

    def __init__(
        self,
        session: Session,
        out: Path | None = None,
        *,
        keys: Path | None = None,
        ledger: Path | None = None,
    ) -> None:
        self.session = session
        self.writer = EvidenceWriter(
            out,
            kind="run",
            name=SESSION_PLAN,
            keys=keys,
            ledger=ledger,
            label="--session",
            ledger_hint="give --ledger",
        )
        self._written_version = -1
        #: Held while a document is written: a late snapshot never overwrites the final one.
        self._lock = threading.Lock()
        self._finished = False

    @property
    def path(self) -> Path:
        return self.writer.out

    def changed(self) -> bool:
        return self.session.version != self._written_version

    def snapshot(self, frozen: Session | None = None) -> None:
        """Rewrite the evidence as it stands (marked interrupted: if the server dies now, that
        is what it was). ``frozen``: a :meth:`Session.copy`, to write from another thread."""
        session = frozen if frozen is not None else self.session
        doc, _ = session.document(RunStatus.INTERRUPTED, final=False)
        with self._lock:
            if self._finished:
                return
            self.writer.write(doc)
            self._written_version = session.version

    def finish(self, *, interrupted_by: str | None = None) -> tuple[Recorded, RunTrace]:
        """Write the final evidence and record it in the ledger."""
        session = self.session
        session.ended_ns = time.monotonic_ns()
        status = session.final_status()
        if interrupted_by is not None:
            status = RunStatus.INTERRUPTED
        doc, trace = session.document(status, interrupted_by=interrupted_by, final=True)
        with self._lock:
            self._finished = True
            self.writer.write(doc)
        recorded = self.writer.finish(run_summary(trace) | {"calls": len(session.calls)})
        assert recorded is not None
        return recorded, trace
