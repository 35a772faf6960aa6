"""``truepar swarm``: deploy N agents at once, each isolated, within budgets and caps, and bring
their work back — the orchestrator's whole job, in order:

1. **Budgets first.** :func:`~truepar.preflight.budgets.preflight` checks every budgeted resource
   before anything starts (``reduce`` / ``wait`` / ``fail``); agents get their share.
2. **Isolation.** With a repository and ``isolation = "worktree"``, every agent gets its own
   worktree on its own branch (``<repo>-worktrees/<run>-<agent>``), created in parallel,
   verified, and locked while the agents run.
3. **Run.** All agents are ``agent`` ops of one plan, run by the engine (async backend by
   default: one event loop waits for every child, so a thousand agents cost a thousand
   processes, not a thousand threads), at most ``workers`` at once.
4. **Bring back.** One agent after another (merging is never parallel): its commits and diff
   stat collected, its branch merged (or rebased) into the checkout — a conflict is aborted and
   reported, never half-applied — and its worktree removed. A branch whose work did not land
   is kept, so no work is lost; a worktree with uncommitted changes is kept and said so.
5. **One record.** Every agent's session log is its own file; then one consolidated record,
   and in git mode one commit listing every session and its outcome.
6. **Aggregation** of the agents' JSON results, when asked: merge, vote or escalate.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from truepar.agents import aggregate
from truepar.agents.merging import MergeOutcome, merge_back
from truepar.agents.session_log import SessionLog, SessionStatus, write_session
from truepar.agents.sessions import SessionRecord, consolidate, new_run_id, reported_tokens
from truepar.agents.swarm_config import Swarm
from truepar.agents.swarm_plan import build_plan, common_root, draft_plan, gets_worktree, home
from truepar.agents.worktrees import WorkResult, Worktree, collect, create, lock, remove, unlock
from truepar.engine.observer import Observer
from truepar.engine.run import run
from truepar.plan.models import Plan
from truepar.preflight.budgets import Preflight, preflight
from truepar.preflight.lint import detached_in, refuse
from truepar.records import OpResult, RunStatus, RunTrace, Span, Status, jsonable

#: Worktrees created at once: git serializes its bookkeeping, the checkouts run in parallel.
CREATE_BATCH = 8


@dataclasses.dataclass(frozen=True)
class AgentOutcome:
    name: str
    status: str
    duration_s: float
    exit_code: int | None
    last_line: str
    worktree: str | None = None
    branch: str | None = None
    work: WorkResult | None = None
    merge: MergeOutcome | None = None
    kept: str | None = None
    result: Any = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "duration_s": self.duration_s,
            "exit_code": self.exit_code,
            "last_line": self.last_line,
            "worktree": self.worktree,
            "branch": self.branch,
            "commits": len(self.work.commits) if self.work else 0,
            "diff_stat": self.work.diff_stat() if self.work else None,
            "merge": self.merge.to_dict() if self.merge else None,
            "kept": self.kept,
            "result": self.result,
        }


@dataclasses.dataclass(frozen=True)
class SwarmResult:
    run_id: str
    swarm: Swarm
    plan: Plan
    trace: RunTrace
    agents: tuple[AgentOutcome, ...]
    record: SessionRecord
    record_path: Path
    sessions_dir: Path
    budget: Mapping[str, Any] | None
    aggregation: Mapping[str, Any] | None

    @property
    def ok(self) -> bool:
        return all(a.status == "ok" for a in self.agents) and not any(
            a.merge is not None and a.merge.status in ("conflict", "failed") for a in self.agents
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "truepar.swarm",
            "run_id": self.run_id,
            "name": self.swarm.settings.name,
            "ok": self.ok,
            "agents": [a.to_json() for a in self.agents],
            "record": str(self.record_path),
            "commit": self.record.commit,
            "budget": self.budget,
            "aggregation": self.aggregation,
            "totals": self.trace.totals.to_json(),
        }


@contextlib.contextmanager
def _worktrees(
    swarm: Swarm, run_id: str, skip: set[str] | frozenset[str] = frozenset()
) -> Iterator[dict[str, Worktree]]:
    """One locked worktree per writing agent (not those in ``skip``); every one unlocked
    whatever happens."""
    repo = swarm.repo
    writers = [a for a in swarm.agents if gets_worktree(swarm, a) and a.name not in skip]
    made: dict[str, Worktree] = {}
    if repo is None or not writers:
        yield made
        return
    short = run_id.rsplit("-", maxsplit=1)[-1]
    try:
        with ThreadPoolExecutor(CREATE_BATCH) as pool:
            futures = {
                a.name: pool.submit(
                    create,
                    repo,
                    f"{short}-{a.name}",
                    swarm.settings.base,
                    f"truepar/{short}/{a.name}",
                )
                for a in writers
            }
            errors = []
            for name, future in futures.items():
                try:
                    made[name] = future.result()
                except Exception as exc:
                    errors.append(exc)
            if errors:
                raise errors[0]
        for wt in made.values():
            lock(wt)
        yield made
    except BaseException:
        for wt in made.values():
            with contextlib.suppress(Exception):
                unlock(wt)
                remove(wt, force=True, delete_branch=True)
        raise
    for wt in made.values():
        with contextlib.suppress(Exception):
            unlock(wt)


def _status(result: OpResult | None) -> SessionStatus:
    if result is None:
        return "error"
    if result.status is Status.OK:
        return "ok"
    if result.status is Status.TIMEOUT:
        return "timeout"
    if result.status in (Status.SKIPPED, Status.CANCELLED, Status.CRASHED):
        return "error"
    return "failed"


def _iso(trace: RunTrace, ns: int) -> str:
    at = datetime.fromtimestamp(trace.wall_anchor_unix_s, UTC) + timedelta(
        seconds=(ns - trace.start_ns) / 1e9
    )
    return at.isoformat(timespec="milliseconds")


def _bring_back(
    swarm: Swarm, trees: Mapping[str, Worktree], trace: RunTrace
) -> dict[str, tuple[WorkResult | None, MergeOutcome | None, str | None]]:
    """Collect, merge and remove, one agent after another, in the swarm's order."""
    out: dict[str, tuple[WorkResult | None, MergeOutcome | None, str | None]] = {}
    repo = swarm.repo
    for a in swarm.agents:
        wt = trees.get(a.name)
        if wt is None or repo is None:
            continue
        work = collect(wt)
        result = trace.results.get(a.name)
        merge: MergeOutcome | None = None
        ok = result is not None and result.status is Status.OK
        # An interrupted swarm merges nothing: whoever stopped it decides what lands; every
        # branch with commits is kept.
        strategy = "none" if trace.status is RunStatus.INTERRUPTED else swarm.settings.merge
        if ok and work.commits:
            merge = merge_back(repo, wt, strategy)
        landed = merge is not None and merge.status in ("merged", "nothing")
        kept: str | None = None
        if work.dirty:
            kept = f"worktree {wt.path} kept: uncommitted changes ({', '.join(work.dirty_files)})"
        else:
            keep_branch = bool(work.commits) and not landed
            remove(wt, force=False, delete_branch=not keep_branch)
            if keep_branch:
                kept = f"branch {wt.branch} kept: its {len(work.commits)} commit(s) did not land"
        out[a.name] = (work, merge, kept)
    if trees:
        with contextlib.suppress(OSError):  # leave no empty <repo>-worktrees/ behind
            next(iter(trees.values())).path.parent.rmdir()
    return out


def _result_value(result: OpResult | None) -> Mapping[str, Any]:
    value = result.value if result is not None else None
    return value if isinstance(value, Mapping) else {}


def _aggregate(swarm: Swarm, outcomes: list[AgentOutcome]) -> dict[str, Any] | None:
    how = swarm.settings.aggregate
    if how == "none":
        return None
    outputs = {o.name: o.result for o in outcomes if o.status == "ok" and o.result is not None}
    if how == "merge":
        merged = aggregate.merge(outputs)
        lines = [f"agreed: {k} = {v!r}" for k, v in merged.values.items()]
        lines += [f"CONFLICT on {c.key}: {_positions(c.positions)}" for c in merged.conflicts]
        return {"strategy": "merge", "summary": lines, **_plain(merged)}
    if how == "vote":
        result = aggregate.vote(outputs)
        lines = [
            f"TIE on {d.question}: {', '.join(repr(t) for t in d.tied)}"
            if d.tie
            else f"{d.question}: {d.winner!r} ({d.votes}/{d.total}, confidence {d.confidence:.0%})"
            for d in result.decisions
        ]
        return {"strategy": "vote", "summary": lines, **_plain(result)}
    escalation = aggregate.escalate(outputs, to=swarm.settings.escalate_to)
    lines = [f"for {escalation.to}: {len(escalation.conflicts)} conflict(s) to decide"]
    lines += [f"{c.key}: {_positions(c.positions)}" for c in escalation.conflicts]
    return {"strategy": "escalate", "summary": lines, **escalation.to_dict()}


def _positions(positions: Any) -> str:
    return "; ".join(f"{p.value!r} by {', '.join(p.agents)}" for p in positions)


def _plain(value: Any) -> dict[str, Any]:
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        data = to_dict()
        return dict(data) if isinstance(data, Mapping) else {"value": data}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))  # type: ignore[no-any-return]
    return {"value": value}


def _refuse_detached(swarm: Swarm) -> None:
    """TP005, enforced: no agent starts in a repository with a worktree on a detached HEAD."""
    if swarm.repo is not None:
        names = tuple(a.name for a in swarm.agents)
        refuse(str(swarm.source), list(detached_in(swarm.repo, names)))


def run_swarm(
    swarm: Swarm,
    *,
    observer: Observer | None = None,
    on_record: Callable[[SessionRecord, Path], object] | None = None,
    on_budget: Callable[[Preflight], None] | None = None,
) -> SwarmResult:
    """Run every agent of ``swarm`` (see the module docstring); return what each did."""
    _refuse_detached(swarm)
    run_id = new_run_id()
    sessions = (swarm.base_dir / swarm.settings.sessions).resolve() / run_id
    # Budgets first: an agent the budget drops gets no worktree.
    pre = preflight(draft_plan(swarm, sessions))
    if on_budget is not None:
        on_budget(pre)
    dropped = set(pre.decision.skip) if pre.decision is not None else set()
    shares = {op.id: getattr(op, "budget_share", {}) for op in pre.plan.ops}
    sessions.mkdir(parents=True, exist_ok=True)  # after the budget check: a refusal leaves none
    with _worktrees(swarm, run_id, skip=dropped) as trees:
        cwd = {a.name: trees[a.name].path if a.name in trees else home(swarm) for a in swarm.agents}
        root = common_root([*cwd.values(), swarm.base_dir])
        in_place = [a.name for a in swarm.agents if a.name not in trees]
        plan = build_plan(swarm, root, cwd, sessions, in_place=in_place, shares=shares)
        trace = run(plan, observer=observer, checks=False, budget=pre.decision)
    brought = _bring_back(swarm, trees, trace)
    outcomes: list[AgentOutcome] = []
    for a in swarm.agents:
        result = trace.results.get(a.name)
        spans = trace.spans_of(a.name)
        value = _result_value(result)
        work, merge, kept = brought.get(a.name, (None, None, None))
        wt = trees.get(a.name)
        duration = sum(s.duration_s for s in spans)
        status = _status(result)
        outcome = AgentOutcome(
            name=a.name,
            status=status,
            duration_s=duration,
            exit_code=value.get("exit_code"),
            last_line=str(value.get("last_line") or (result.error if result else "") or ""),
            worktree=str(wt.path) if wt else None,
            branch=wt.branch if wt else None,
            work=work,
            merge=merge,
            kept=kept,
            result=value.get("result"),
        )
        outcomes.append(outcome)
        meta = sessions / f".session-{a.name}.meta.json"
        tokens = reported_tokens(meta)
        meta.unlink(missing_ok=True)
        log = _session(a.name, a.task, a.argv, cwd[a.name], spans, trace, outcome)
        write_session(sessions, dataclasses.replace(log, tokens=tokens))
    # An interrupted swarm commits nothing to the repository either (SIGTERM, Ctrl-C): whoever
    # stopped it decides what lands; its record stays in the sessions folder.
    interrupted = trace.status is RunStatus.INTERRUPTED
    commit_to = swarm.repo if not swarm.settings.read_only and not interrupted else None
    git_repo = commit_to if swarm.repo is not None else None
    record = consolidate(
        sessions,
        run_id=run_id,
        repo=git_repo,
        expected=[a.name for a in swarm.agents],
        on_record=on_record,
    )
    budget = dict(trace.budget) if trace.budget is not None else None
    return SwarmResult(
        run_id=run_id,
        swarm=swarm,
        plan=plan,
        trace=trace,
        agents=tuple(outcomes),
        record=record,
        record_path=sessions / f"record-{run_id}.json",
        sessions_dir=sessions,
        budget=budget,
        aggregation=_aggregate(swarm, outcomes),
    )


def _session(
    name: str,
    task: str,
    argv: tuple[str, ...],
    cwd: Path,
    spans: list[Span],
    trace: RunTrace,
    o: AgentOutcome,
) -> SessionLog:
    start_ns = min((s.start_ns for s in spans), default=trace.start_ns)
    end_ns = max((s.end_ns for s in spans), default=trace.start_ns)
    work = o.work
    return SessionLog(
        agent=name,
        task=task,
        command=argv,
        cwd=str(cwd),
        start_utc=_iso(trace, start_ns),
        end_utc=_iso(trace, end_ns),
        duration_s=o.duration_s,
        status=o.status,  # type: ignore[arg-type]
        exit_code=o.exit_code,
        output_tail=(o.last_line,) if o.last_line else (),
        worktree=o.worktree,
        branch=o.branch,
        base=work.base if work is not None else None,
        commits=work.commits if work is not None else (),
        diff_stat=work.diff_stat() if work is not None else None,
        dirty_files=work.dirty_files if work is not None else (),
        merge=o.merge,
        detail=o.kept or "",
    )
