"""``--html``, ``--md`` and ``--trace``: the report files ``report``, ``bench``, ``prove`` and
``demo`` all write, from evidence documents, the same way (atomically, then a line saying where).

``--md -`` writes the Markdown to stdout (for ``>> $GITHUB_STEP_SUMMARY``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from truepar.errors import UsageError
from truepar.evidence.keys import Trust
from truepar.fileio import atomic_write_text, check_writable
from truepar.report import evidence_trace, html, markdown

HtmlOpt = Annotated[
    Path | None,
    typer.Option("--html", help="Write a self-contained HTML report here (timelines, scaling)."),
]
MdOpt = Annotated[
    Path | None,
    typer.Option("--md", help="Write a Markdown report here ('-' for stdout)."),
]
TraceOpt = Annotated[
    Path | None,
    typer.Option("--trace", help="Write a Chrome trace here (open it in ui.perfetto.dev)."),
]


@dataclass(frozen=True)
class ReportOutputs:
    html: Path | None = None
    md: Path | None = None
    trace: Path | None = None

    def check(self) -> None:
        """Fail before any work when an output cannot be written."""
        for path, option in ((self.html, "--html"), (self.md, "--md"), (self.trace, "--trace")):
            if path is not None and str(path) != "-":
                check_writable(path, option)

    @property
    def any(self) -> bool:
        return any(p is not None for p in (self.html, self.md, self.trace))

    def write(
        self,
        docs: Sequence[Mapping[str, Any]],
        console: Console,
        *,
        trust: Trust | None = None,
        sources: Sequence[str | None] | None = None,
        label: str = "evidence",
    ) -> None:
        """Render ``docs`` to every requested output; malformed evidence is one line, exit 2."""
        try:
            page = html(docs, trust=trust, sources=sources) if self.html is not None else None
            text = "\n".join(markdown(d) for d in docs) if self.md is not None else None
            events = evidence_trace(docs) if self.trace is not None else None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise UsageError(f"{label}: malformed evidence: {type(exc).__name__}: {exc}") from exc
        if page is not None and self.html is not None:
            atomic_write_text(self.html, page)
            console.print(f"HTML report written to {self.html}", markup=False)
        if text is not None and self.md is not None:
            if str(self.md) == "-":
                sys.stdout.write(text)
                sys.stdout.flush()
            else:
                atomic_write_text(self.md, text)
                console.print(f"Markdown report written to {self.md}", markup=False)
        if events is not None and self.trace is not None:
            atomic_write_text(self.trace, json.dumps(events, ensure_ascii=False) + "\n")
            console.print(
                f"Chrome trace written to {self.trace} (open it in https://ui.perfetto.dev)",
                markup=False,
            )
