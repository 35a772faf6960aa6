"""``truepar mcp``: serve truepar's tools to an MCP client over stdio; ``truepar mcp report``.

Serving writes nothing to stdout but the protocol: every word for a person goes to stderr.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from truepar.cli import evidence_opts
from truepar.cli.layout import record
from truepar.engine.run import check_workers
from truepar.errors import UsageError
from truepar.mcp.report import load_session, session_report
from truepar.tools.bounds import MAX_DURATION_S

mcp_app = typer.Typer(
    help="Serve truepar's tools to an MCP client (Claude Code, Codex, ...) over stdio.",
    no_args_is_help=False,
)

_INSTALL = "truepar mcp needs the MCP Python SDK: pip install 'truepar[mcp]'"


@mcp_app.callback(invoke_without_command=True)
def mcp_command(
    ctx: typer.Context,
    root: Annotated[
        Path, typer.Option("--root", help="The folder file tools and commands are confined to.")
    ] = Path("."),
    session: Annotated[
        Path | None,
        typer.Option(
            "--session",
            help="Write the session's evidence here (default: a new file in the evidence "
            "folder); rewritten as the session runs, recorded in the ledger at its end.",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", "-w", help="Ops at once, over all calls in flight.")
    ] = 8,
    timeout: Annotated[
        float,
        typer.Option("--timeout", help="Seconds an op may run unless its call gives timeout."),
    ] = 600.0,
    ledger: evidence_opts.LedgerOpt = None,
    keys: evidence_opts.KeysOpt = None,
) -> int:
    """Serve read, ls, grep, bash, http, batch and session over stdio until the client leaves.

    Register it with Claude Code: claude mcp add truepar -- truepar mcp --root .
    """
    if ctx.invoked_subcommand is not None:
        return 0
    check_workers(workers)
    if not math.isfinite(timeout) or not 0 < timeout <= MAX_DURATION_S:
        raise UsageError(f"--timeout must be above 0 and at most {MAX_DURATION_S:g} seconds")
    if not root.is_dir():
        raise UsageError(f"--root {str(root)!r} is not a directory")
    try:
        from truepar.mcp import server  # noqa: PLC0415 - the SDK loads only when serving
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] == "mcp":
            raise UsageError(_INSTALL) from None
        raise
    config = server.ServeConfig(
        root=root.resolve(),
        workers=workers,
        timeout_s=timeout,
        session_out=session,
        keys=keys,
        ledger=ledger if ledger is not None else evidence_opts.ledger_path(None),
    )
    recorder = server.prepare(config)  # bad --session, keys or ledger: exit 2 before serving
    served = asyncio.run(server.serve(config, recorder))
    evidence_opts.say_created_key(recorder.writer)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    trace = served.trace
    signed = "signed" if served.recorded.signer else "unsigned"
    err.print(
        f"truepar mcp: session {trace.status.value}: {len(recorder.session.calls)} calls, "
        f"{trace.totals.ops} ops; evidence ({signed}) {served.recorded.path}",
        markup=False,
    )
    if served.interrupted_by in ("SIGTERM", "SIGINT"):
        return 143 if served.interrupted_by == "SIGTERM" else 130
    return 0


@mcp_app.command("report")
def report_command(
    session: Annotated[
        Path, typer.Argument(help="A session's evidence (from truepar mcp).", show_default=False)
    ],
) -> int:
    """Print a recorded session: calls, overlap, and missed parallelism."""
    # The title names the root, printed whole; the findings wrap at words under it, at 80
    # columns as at 200 (a CI log, a pipe), each sentence's continuation hanging beneath it.
    title, findings = session_report(load_session(session))
    record(Console(highlight=False), Text(title, style="bold"), findings, hang=4)
    return 0
