"""Where a bench is while it runs, on stderr: a progress bar on a terminal, a line a trial else.

The bar shows the trial, the configuration running and the time the runs still planned are
expected to take. It is redrawn at each run rather than by rich's refresh thread: a thread alive
in this process would make the ``processes`` backend start its workers through a fork server
instead of ``fork``, and so change what the bench measures. In a CI log or a pipe there is no bar,
only one plain line when each trial starts.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from truepar.measure.early_stop import BenchProgress
from truepar.units import fmt_duration


def eta_text(p: BenchProgress) -> str:
    return "estimating time left" if p.eta_s is None else f"about {fmt_duration(p.eta_s)} left"


def trial_text(p: BenchProgress) -> str:
    if p.trial < 0:
        return "first run (not measured)"
    kind = " (warmup)" if p.warmup else ""
    return f"trial {p.trial + 1}/{p.trials_planned}{kind}"


class ProgressView:
    """A context manager; :meth:`update` is the bench's ``on_progress``."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._trial: int | None = None

    def __enter__(self) -> ProgressView:
        if self._console.is_terminal and not self._console.is_dumb_terminal:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=12),
                MofNCompleteColumn(),
                TextColumn("runs · {task.fields[eta]}"),
                console=self._console,
                auto_refresh=False,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._bar.start()
            self._task = self._bar.add_task("starting", total=None, eta="")
        return self

    def update(self, p: BenchProgress) -> None:
        backend, workers = p.config
        if self._bar is not None and self._task is not None:
            self._bar.update(
                self._task,
                description=f"{trial_text(p)} {backend} ×{workers}",
                completed=p.runs_done,
                total=p.runs_planned,
                eta=eta_text(p),
            )
            self._bar.refresh()
        elif p.trial != self._trial:
            self._console.print(f"{trial_text(p)}: {eta_text(p)}", style="dim", markup=False)
        self._trial = p.trial

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
