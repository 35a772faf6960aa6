"""How runs look in a terminal: the live progress view, the ops table, the summary line."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Literal

from rich import box
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from truepar.cli.layout import INDENT, fits, joined, needed_width, record
from truepar.engine.observer import Observer
from truepar.records import OpResult, RunTrace, Span, Status
from truepar.units import fmt_bytes, fmt_s

STATUS_STYLE = {
    Status.OK: "green",
    Status.FAILED: "red",
    Status.TIMEOUT: "yellow",
    Status.CRASHED: "bold red",
    Status.CANCELLED: "magenta",
    Status.SKIPPED: "dim",
}


class LiveProgress(Observer):
    """Ops done / running / failed and elapsed time, redrawn in place while the run goes.

    Redrawn from the scheduler's own loop (a timer, and every op event), never from a thread:
    an extra thread would make the ``processes`` backend start its workers the slow way.
    """

    def __init__(self, console: Console, *, enabled: bool = True) -> None:
        self.console = console
        self.enabled = enabled and console.is_terminal
        self.total = self.done = self.running = self.failed = 0
        self.t0 = time.monotonic()
        self._live: Live | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._stopped = True

    def __enter__(self) -> LiveProgress:
        if self.enabled:
            self._live = Live(
                self._render(),
                console=self.console,
                transient=True,
                auto_refresh=False,
                get_renderable=self._render,
            )
            self._live.__enter__()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(et, e, tb)

    def _render(self) -> Text:
        bar_width = 30
        filled = int(bar_width * self.done / self.total) if self.total else 0
        return Text.assemble(
            ("━" * filled, "green"),
            ("━" * (bar_width - filled), "grey30"),
            f" {self.done}/{self.total} done · {self.running} running · ",
            (f"{self.failed} failed", "red" if self.failed else ""),
            f" · {time.monotonic() - self.t0:.1f} s",
        )

    def _tick(self) -> None:
        if self._live is None or self._stopped:
            return
        self._live.refresh()
        self._timer = asyncio.get_running_loop().call_later(0.125, self._tick)

    def run_started(self, total_ops: int) -> None:
        self.total, self.t0 = total_ops, time.monotonic()
        self._stopped = False
        self._tick()

    def run_finished(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()

    def op_started(self, op_id: str, attempt: int) -> None:
        self.running += 1

    def op_finished(self, span: Span) -> None:
        self.running -= 1
        # A failed attempt that will be retried is not done; the scheduler tells us the final
        # outcome by starting the op again, so count only what cannot be retried any more.
        if span.status is Status.OK:
            self.done += 1
        elif span.status is not Status.CANCELLED:
            self.failed += 1

    def op_skipped(self, op_id: str) -> None:
        self.done += 1


#: Column, justification, minimum width; columns marked wide-only are left out below 100 columns.
_COLUMNS: tuple[tuple[str, Literal["left", "right"], int, bool], ...] = (
    ("op", "left", 10, False),
    ("tool", "left", 4, False),
    ("status", "left", 6, False),
    ("try", "right", 3, True),
    ("start", "right", 8, True),
    ("time", "right", 8, False),
    ("worker", "right", 6, True),
    ("cpu", "right", 8, False),
    ("out", "right", 5, False),
    ("summary", "left", 12, False),
)
_SUMMARY_MAX = 60


def _op_cells(trace: RunTrace, result: OpResult, span: Span | None) -> dict[str, str | Text]:
    status = Text(result.status.value, style=STATUS_STYLE.get(result.status, ""))
    if span is None:
        reused = trace.resumed_from is not None and result.op_id in trace.resumed_from["reused"]
        if reused:  # --resume took its result from the earlier trace: it did not run here
            return {"op": result.op_id, "status": status, "summary": "reused: ok in the trace"}
        return {"op": result.op_id, "status": status, "try": "0", "summary": result.error or ""}
    failed = result.status is not Status.OK and span.error
    return {
        "op": result.op_id,
        "tool": span.tool,
        "status": status,
        "try": str(result.attempts),
        "start": fmt_s((span.start_ns - trace.start_ns) / 1e9),
        "time": fmt_s(span.duration_s),
        "worker": str(span.worker),
        "cpu": "?" if span.cpu_s is None else fmt_s(span.cpu_s),
        "out": fmt_bytes(span.bytes_out),
        "summary": (span.error or "") if failed else span.summary,
    }


def _ops_grid(
    title: str,
    columns: Sequence[tuple[str, Literal["left", "right"], int, bool]],
    rows: Sequence[dict[str, str | Text]],
    summary_width: int,
) -> Table:
    table = Table(
        title=Text(title),
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for col, justify, min_width, _ in columns:
        table.add_column(
            col,
            justify=justify,
            no_wrap=True,
            overflow="ellipsis",
            min_width=min_width,
            max_width=summary_width if col == "summary" else None,
        )
    for cells in rows:
        table.add_row(*(Text(c) if isinstance(c, str) else c for c in _values(cells, columns)))
    return table


def _values(
    cells: dict[str, str | Text], columns: Sequence[tuple[str, Literal["left", "right"], int, bool]]
) -> list[str | Text]:
    return [cells.get(col, "") for col, *_ in columns]


def _op_records(
    console: Console,
    title: str,
    columns: Sequence[tuple[str, Literal["left", "right"], int, bool]],
    rows: Sequence[dict[str, str | Text]],
) -> None:
    """Ids too long for any table at this width (a CI log): one record per op, its id whole
    on a line of its own, its numbers below, then its summary or error."""
    console.print(title, markup=False)
    names = [c[0] for c in columns[1:]]
    for cells in rows:
        facts: list[str | Text] = [
            value if col in ("tool", "status") else f"{col} {value}"
            for col, value in zip(names, _values(cells, columns[1:]), strict=True)
            if str(value)
        ]
        lines: list[str | Text] = [joined(facts, console.width - INDENT)]
        if str(cells.get("summary", "")):
            lines.append(cells["summary"])
        record(console, Text(str(cells["op"]), style="bold"), lines)


def ops_table(console: Console, trace: RunTrace, limit: int | None = 40) -> None:
    """One row per op. An op's id is never cut; the summary gets the room that is left (cut
    with "…", or left out where there is too little), and an error that did not fit is
    printed whole below the table."""
    wide = console.width >= 100
    title = f"{trace.plan_name} — {trace.backend}, {trace.workers} workers"
    last: dict[str, Span] = {s.op_id: s for s in trace.spans}
    results = list(trace.results.values())
    shown = results if limit is None else results[:limit]
    rows = [_op_cells(trace, r, last.get(r.op_id)) for r in shown]
    # Room for a summary: with every column where the width allows, else without the
    # wide-only ones; where neither leaves 12 columns for it, no summary column at all.
    narrow = [c for c in _COLUMNS if not c[3]]
    table, room = None, 0
    for columns in [[c for c in _COLUMNS if wide or not c[3]], narrow] if wide else [narrow]:
        named = [c for c in columns if c[0] != "summary"]
        base = _ops_grid(title, named, rows, 0)
        # The summary column costs its width, its padding and one divider.
        room = min(_SUMMARY_MAX, console.width - needed_width(console, base) - 3)
        if room >= 12:
            table = _ops_grid(title, columns, rows, room)
            break
    if table is None:
        table, room = base, 0
    cut: int | None = room
    if fits(console, table):
        console.print(table)
    else:
        _op_records(console, title, named, rows)
        cut = None  # a record prints its error whole
    for result in shown:
        span = last.get(result.op_id)
        error = result.error if span is None else span.error
        if cut is None or result.status is Status.OK or not error:
            continue
        if Text(error).cell_len > cut:
            console.print(
                Text.assemble(
                    (result.op_id, "bold"),
                    " ",
                    (result.status.value, STATUS_STYLE.get(result.status, "")),
                    f": {error}",
                )
            )
    if limit is not None and len(results) > limit:
        console.print(f"… and {len(results) - limit} more ops (--all shows every one)")


def summary(console: Console, trace: RunTrace) -> None:
    t = trace.totals
    env = trace.environment
    status_style = {"ok": "green", "failed": "red"}.get(trace.status.value, "magenta")
    word = "terminated" if trace.interrupted_by == "SIGTERM" else trace.status.value
    count = Text(f"{t.ok} ok of {t.ops} ops")
    for n, what, s in (
        (t.failed, "failed", Status.FAILED),
        (t.skipped, "skipped", Status.SKIPPED),
        (t.cancelled, "cancelled", Status.CANCELLED),
    ):
        if n:
            count.append(f", {n} {what}", style=STATUS_STYLE[s])
    parts: list[Text | str] = [
        Text(word.upper(), style=f"bold {status_style}"),
        f"wall {fmt_s(t.wall_s)}",
        f"Σ op time {fmt_s(t.sum_op_s)}",
        f"avg concurrency {t.avg_concurrency:.2f}",
        f"cores used {t.cores_used:.2f} of {env.cores_available}",
        count,
    ]
    console.print(joined(parts, console.width))
    if trace.abandoned_threads:
        console.print(
            f"[yellow]warning:[/] {trace.abandoned_threads} thread(s) could not be "
            "stopped after a timeout and were abandoned (still running)"
        )


def explain(console: Console, trace: RunTrace) -> None:
    console.print("[bold]Why ops waited[/]")
    any_line = False
    for op_id in trace.results:
        for reason in trace.waits.get(op_id, ()):
            console.print(f"  {reason}", markup=False)
            any_line = True
        for span in trace.spans_of(op_id):
            wait = (span.start_ns - span.ready_ns) / 1e9
            if span.waited_for and wait > 0:
                try_ = f" (try {span.attempt})" if span.attempt > 1 else ""
                console.print(
                    f"  {op_id}{try_} waited {fmt_s(wait)} for {span.waited_for}", markup=False
                )
                any_line = True
    if not any_line:
        console.print("  nothing waited: every op started as soon as the run did")
