"""``truepar swarm AGENTS.toml``: deploy the agents, watch them live, then the results table,
the merge outcomes, the consolidated session record, and evidence.

Exit 0 when every agent succeeded and every branch landed, 1 when one did not (a failure, a
timeout, a merge conflict), 2 for bad input, 130 when interrupted.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from truepar.agents.sessions import SessionRecord
from truepar.agents.swarm import AgentOutcome, SwarmResult, run_swarm
from truepar.agents.swarm_config import load_swarm
from truepar.cli import evidence_opts
from truepar.cli.layout import fits, record
from truepar.cli.render import LiveProgress
from truepar.evidence import record_in_ledger, run_evidence, run_summary
from truepar.evidence.metadata import utc_now
from truepar.fileio import atomic_write_json, check_writable
from truepar.preflight.budgets import Preflight
from truepar.records import Span
from truepar.tools.agent import live_last_line
from truepar.units import fmt_s

#: Agents shown in the live view at once: the running ones first, then the latest to finish.
LIVE_ROWS = 12
STATE_STYLE = {"running": "cyan", "ok": "green", "queued": "dim"}


class SwarmView(LiveProgress):
    """The progress line plus one row per agent: state, elapsed, last output line."""

    def __init__(self, console: Console, *, enabled: bool = True) -> None:
        super().__init__(console, enabled=enabled)
        self.started: dict[str, float] = {}
        self.finished: dict[str, tuple[str, float, str]] = {}

    def op_started(self, op_id: str, attempt: int) -> None:
        super().op_started(op_id, attempt)
        self.started[op_id] = time.monotonic()

    def op_finished(self, span: Span) -> None:
        super().op_finished(span)
        self.finished[span.op_id] = (span.status.value, span.duration_s, span.summary)

    def _render(self) -> Any:
        head: RenderableType = super()._render()
        now = time.monotonic()
        table = Table(box=None, show_header=True, header_style="dim", pad_edge=False)
        for col in ("agent", "state", "elapsed", "last output"):
            table.add_column(col, no_wrap=True, overflow="ellipsis", max_width=60)
        running = [k for k in self.started if k not in self.finished]
        done = list(self.finished)[::-1]
        for op_id in (running + done)[:LIVE_ROWS]:
            if op_id in self.finished:
                state, took, last = self.finished[op_id]
            else:
                state, took = "running", now - self.started[op_id]
                last = live_last_line(op_id)
            table.add_row(
                op_id, Text(state, style=STATE_STYLE.get(state, "red")), fmt_s(took), last
            )
        return Group(head, table)


def swarm_command(
    agents_file: Annotated[
        Path, typer.Argument(help="The swarm file (AGENTS.toml).", show_default=False)
    ],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write what every agent did here (JSON).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live view.")] = False,
    evidence: evidence_opts.EvidenceOpt = None,
    no_evidence: evidence_opts.NoEvidenceOpt = False,
    ledger: evidence_opts.LedgerOpt = None,
    keys: evidence_opts.KeysOpt = None,
) -> int:
    """Deploy the agents of AGENTS_FILE, isolated and within budget, and bring their work back."""
    if json_out is not None:
        check_writable(json_out, "--json")
    swarm = load_swarm(agents_file)
    out = Console(highlight=False)
    writer = evidence_opts.EvidenceOutput.optional(
        evidence,
        off=no_evidence,
        kind="swarm",
        name=swarm.settings.name,
        keys=keys,
        ledger=ledger,
        console=out,
    )
    book = writer.ledger_path if writer is not None else None  # --no-evidence: no record
    started = utc_now()
    out.print(
        f"swarm {swarm.settings.name}: {len(swarm.agents)} agents, at most "
        f"{swarm.settings.workers} at once"
        + (f", one worktree each in {swarm.repo}" if swarm.uses_worktrees else ""),
        markup=False,
    )
    view = SwarmView(Console(stderr=True), enabled=not quiet)

    def said_budget(pre: Preflight) -> None:
        for check in pre.check.resources:
            if check.message:
                out.print(f"budget: {check.message}", markup=False)

    def recorded(record: SessionRecord, path: Path) -> None:
        if book is not None:
            record_in_ledger(
                book,
                record.to_dict(),
                kind="swarm",
                plan=swarm.settings.name,
                signer=None,
                summary=record.summary(),
                file=path,
            )

    with view:
        result = run_swarm(swarm, observer=view, on_record=recorded, on_budget=said_budget)
    show(out, result)
    if json_out is not None:
        atomic_write_json(json_out, result.to_json())
        out.print(f"results written to {json_out}", markup=False)
    if writer is not None:
        doc = run_evidence(result.trace, result.plan, started_utc=started, ended_utc=utc_now())
        writer.write(doc)
        writer.finish(run_summary(result.trace))
    if result.trace.interrupt_exit_code is not None:
        return result.trace.interrupt_exit_code
    return 0 if result.ok else 1


def _cells(a: AgentOutcome) -> tuple[Text, str, str, str, str, Text, str]:
    """An agent's name, status, time, exit code, commits, diff, merge outcome and last output."""
    work = a.work
    conflict = a.merge is not None and a.merge.status == "conflict"
    return (
        Text(a.status, style="green" if a.status == "ok" else "bold red"),
        fmt_s(a.duration_s),
        "" if a.exit_code is None else str(a.exit_code),
        str(len(work.commits)) if work else "",
        f"{work.files_changed} file(s) +{work.insertions} −{work.deletions}" if work else "",
        Text(a.merge.summary() if a.merge else "", style="bold red" if conflict else ""),
        a.last_line,
    )


def _table(result: SwarmResult, rows: list[AgentOutcome]) -> Table:
    table = Table(
        title=f"swarm {result.run_id}",
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
    )
    for col in ("agent", "status", "time", "exit", "commits", "diff", "merge", "last output"):
        free = col in ("merge", "last output")
        table.add_column(
            col,
            no_wrap=not free,  # the free text wraps in its cell; names and numbers never do
            max_width=36 if free else None,
        )
    for a in rows:
        table.add_row(a.name, *_cells(a))
    return table


def _record(console: Console, a: AgentOutcome) -> None:
    status, took, exit_code, commits, diff, merge, last = _cells(a)
    head = Text.assemble((a.name, "bold"), "  ", status, f"  {took}")
    if exit_code:
        head.append(f"  exit {exit_code}")
    if commits:
        head.append(f"  {commits} commit(s)  {diff}")
    lines: list[Text | str] = []
    if merge.plain:
        lines.append(Text.assemble(("merge: ", "dim"), merge))
    if last:
        lines.append(Text.assemble(("last output: ", "dim"), last))
    record(console, head, lines)


def show(console: Console, result: SwarmResult) -> None:
    """The results table, the kept branches, the aggregation and where the record went.

    At a width the table does not fit whole (a CI log), one short record per agent instead:
    its name, status and numbers on one line, its merge outcome and last output below."""
    many = len(result.agents) > 40
    rows = [a for a in result.agents if not many or a.status != "ok" or a.merge is not None]
    table = _table(result, rows)
    if fits(console, table, free={"merge": 24, "last output": 24}):
        console.print(table)
    else:
        console.print(f"swarm {result.run_id}", style="bold", markup=False)
        for a in rows:
            _record(console, a)
    ok = sum(a.status == "ok" for a in result.agents)
    if many:
        console.print(f"({len(result.agents) - len(rows)} more agents ok, not listed)")
    totals = result.trace.totals
    console.print(
        f"{ok}/{len(result.agents)} agents ok · wall {fmt_s(totals.wall_s)} · "
        f"agent time {fmt_s(totals.sum_op_s)} · average concurrency {totals.avg_concurrency:.1f}",
        markup=False,
    )
    for a in result.agents:
        if a.merge is not None and a.merge.status == "conflict":
            console.print(
                f"[bold red]conflict[/]: {a.name} ({a.branch}) in "
                f"{', '.join(a.merge.conflict_files) or 'its files'}; aborted, the checkout is as "
                "it was",
            )
        if a.kept:
            console.print(f"kept: {a.name}: {a.kept}", markup=False)
    if result.aggregation is not None:
        console.print(f"aggregation ({result.aggregation.get('strategy')}):", markup=False)
        for line in result.aggregation.get("summary") or ["nothing to aggregate"]:
            console.print(f"  {line}", markup=False)
    commit = f" and committed as {result.record.commit[:12]}" if result.record.commit else ""
    # Paths whole, for copy and grep, however narrow the terminal.
    console.print(f"session logs in {result.sessions_dir}", markup=False, soft_wrap=True)
    console.print(f"record {result.record_path}{commit}", markup=False, soft_wrap=True)
