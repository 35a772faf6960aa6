"""``truepar report EVIDENCE``: evidence as Markdown (stdout or ``--md``) and a Chrome trace."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from truepar.errors import UsageError
from truepar.evidence import load_evidence
from truepar.fileio import atomic_write_text, check_writable
from truepar.report import chrome_trace, markdown

TRACE_NEEDS_RUN = "the Chrome trace needs run evidence (truepar run --evidence)"


def report_command(
    evidence: Annotated[
        Path, typer.Argument(help="An evidence file (from --evidence).", show_default=False)
    ],
    md: Annotated[
        Path | None, typer.Option("--md", help="Write the Markdown report here (atomically).")
    ] = None,
    trace: Annotated[
        Path | None,
        typer.Option("--trace", help="Write a Chrome trace (Perfetto) here; run evidence only."),
    ] = None,
) -> int:
    """Report EVIDENCE: Markdown to stdout, or to --md; a Chrome trace to --trace."""
    for path, option in ((md, "--md"), (trace, "--trace")):
        if path is not None:
            check_writable(path, option)
    doc = load_evidence(evidence)
    kind = doc.get("kind")
    if kind not in ("bench", "run"):
        raise UsageError(f"{evidence}: not evidence: unknown kind {kind!r}")
    if trace is not None and kind != "run":
        raise UsageError(TRACE_NEEDS_RUN)
    try:
        text = markdown(doc)
        events: dict[str, Any] | None = chrome_trace(doc["data"]) if trace is not None else None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise UsageError(
            f"{evidence}: malformed {kind} evidence: {type(exc).__name__}: {exc}"
        ) from exc
    if md is None and trace is None:
        sys.stdout.write(text)
        return 0
    if md is not None:
        atomic_write_text(md, text)
        print(f"Markdown report written to {md}")
    if trace is not None and events is not None:
        atomic_write_text(trace, json.dumps(events, ensure_ascii=False) + "\n")
        print(f"Chrome trace written to {trace} (open it in https://ui.perfetto.dev)")
    return 0
