"""``main``: the one place where errors become exit codes.

0 ok · 1 the run (or a required threshold) failed, or a runtime failure (a busy ledger, a
backend that cannot start) said in one line · 2 bad input, one line naming what to fix ·
130 interrupted (Ctrl-C) · 143 terminated (SIGTERM). No traceback reaches a user for bad
input; an unexpected exception is shown in full, as the bug it is.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any, TextIO

import typer
from rich.console import Console

from truepar.cli import (
    bench_cmd,
    budget_cmd,
    compare_cmd,
    demo_cmd,
    fit_cmd,
    history_cmd,
    keys_cmd,
    lint_cmd,
    mcp_cmd,
    prove_cmd,
    report_cmd,
    run_cmd,
    swarm_cmd,
    verify_cmd,
    worktrees_cmd,
)
from truepar.errors import (
    BackendUnavailable,
    BadInput,
    BudgetError,
    LedgerBusy,
    OpError,
    Terminated,
    TrueparWarning,
)

app = typer.Typer(
    name="truepar",
    help="Run it in parallel, and prove it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("run")(run_cmd.run_command)
app.command("bench")(bench_cmd.bench_command)
app.command("prove")(prove_cmd.prove_command)
app.command("fit")(fit_cmd.fit_command)
app.command("demo")(demo_cmd.demo_command)
app.add_typer(keys_cmd.keys_app, name="keys")
app.command("verify")(verify_cmd.verify_command)
app.command("history")(history_cmd.history_command)
app.command("compare")(compare_cmd.compare_command)
app.command("report")(report_cmd.report_command)
app.command("lint")(lint_cmd.lint_command)
app.add_typer(worktrees_cmd.worktrees_app, name="worktrees")
app.command("budget")(budget_cmd.budget_command)
app.command("swarm")(swarm_cmd.swarm_command)
app.add_typer(mcp_cmd.mcp_app, name="mcp")


@app.callback()
def _root() -> None:
    """Run a plan's independent operations at the same time, and measure every run honestly."""


def _warnings_as_lines(err: Console) -> None:
    """The library's own warnings as one ``truepar: warning:`` line, not Python's file:line."""
    previous = warnings.showwarning

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> Any:
        if issubclass(category, TrueparWarning):
            err.print(f"truepar: warning: {message}", markup=False)
            return None
        return previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def _no_flag_metavars(command: Any) -> None:
    """Flags take no value: their help shows none (Typer would print ``<bool>`` beside each)."""
    context = type(command).context_class(command, info_name=command.name)
    help_option = command.get_help_option(context)
    for param in [*command.params, *([help_option] if help_option is not None else [])]:
        if getattr(param, "is_flag", False) and not getattr(param, "count", False):
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _no_flag_metavars(sub)


def main(argv: list[str] | None = None) -> None:
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    _warnings_as_lines(err)
    command = typer.main.get_command(app)
    _no_flag_metavars(command)
    try:
        code = command.main(args=argv, prog_name="truepar", standalone_mode=False)
    except BadInput as exc:
        err.print(f"truepar: error: {exc}", markup=False)
        sys.exit(2)
    except (LedgerBusy, BackendUnavailable, BudgetError, OpError) as exc:  # runtime failures
        err.print(f"truepar: error: {exc}", markup=False)
        sys.exit(1)
    except Terminated:
        err.print("truepar: terminated")
        sys.exit(143)
    except KeyboardInterrupt:
        err.print("truepar: interrupted")
        sys.exit(130)
    except Exception as exc:
        # Typer vendors click, so its exceptions are matched by shape, not imported by name.
        kind = type(exc).__name__
        if kind == "Abort":
            err.print("truepar: interrupted")
            sys.exit(130)
        exit_code = getattr(exc, "exit_code", None)
        if not isinstance(exit_code, int):
            raise
        if hasattr(exc, "format_message") and kind != "NoArgsIsHelpError":
            err.print(f"truepar: error: {exc.format_message()}", markup=False)
        elif hasattr(exc, "format_message"):
            err.print(exc.format_message(), markup=False)
        sys.exit(exit_code)
    sys.exit(code if isinstance(code, int) else 0)
