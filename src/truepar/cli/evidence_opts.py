"""The evidence options ``run``, ``bench``, ``prove``, ``swarm`` and ``demo`` share, and the
lines they print about it. The writing and recording itself is the library's
(:class:`truepar.evidence.EvidenceWriter`); this only names the flags and talks to the user."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from truepar.errors import UsageError
from truepar.evidence import EvidenceWriter, resolve_ledger

EvidenceOpt = Annotated[
    Path | None,
    typer.Option(
        "--evidence",
        help="Write the evidence JSON here (default: a new file in $TRUEPAR_EVIDENCE_DIR, else "
        "in the data folder's evidence/); signed when a key exists in --keys.",
    ),
]
NoEvidenceOpt = Annotated[
    bool,
    typer.Option("--no-evidence", help="Write no evidence file and add no ledger record."),
]
LedgerOpt = Annotated[
    Path | None,
    typer.Option(
        "--ledger",
        help="Record the evidence in this ledger (default: $TRUEPAR_LEDGER, else the data "
        "folder's ledger.sqlite).",
    ),
]
KeysOpt = Annotated[
    Path | None,
    typer.Option("--keys", help="Key folder that signs the evidence (default: truepar's own)."),
]


def say_created_key(writer: EvidenceWriter) -> None:
    """The one line that says the user's key was just made (on stderr: once, never in the way
    of output a script reads)."""
    note = writer.take_key_note()
    if note is not None:
        err = Console(stderr=True, highlight=False, soft_wrap=True)
        err.print(f"truepar: {note}", markup=False)


#: How an unusable default ledger error ends on the command line.
LEDGER_HINT = "give --ledger PATH, or --no-evidence"


def ledger_path(ledger: Path | None) -> Path:
    """``--ledger``, else the default ledger; checked now, so a bad path fails before the work."""
    return resolve_ledger(ledger, hint=LEDGER_HINT)


class EvidenceOutput:
    """A command's evidence: the library's writer, and the lines that say where it went."""

    def __init__(
        self,
        out: Path | None,
        *,
        kind: str,
        name: str,
        keys: Path | None,
        ledger: Path | None,
        console: Console,
    ) -> None:
        label = (
            "--evidence"
            if out is not None
            else ("evidence file (give --evidence PATH, or --no-evidence)")
        )
        self.writer = EvidenceWriter(
            out,
            kind=kind,
            name=name,
            keys=keys,
            ledger=ledger,
            label=label,
            ledger_hint=LEDGER_HINT,
        )
        self.console = console

    @classmethod
    def optional(
        cls,
        out: Path | None,
        *,
        off: bool,
        kind: str,
        name: str,
        keys: Path | None,
        ledger: Path | None,
        console: Console,
    ) -> EvidenceOutput | None:
        """The evidence every command writes by default; ``None`` with ``--no-evidence``."""
        if off:
            for given, flag in ((out, "--evidence"), (ledger, "--ledger")):
                if given is not None:
                    raise UsageError(
                        f"{flag} and --no-evidence contradict each other: drop one of them"
                    )
            return None
        return cls(out, kind=kind, name=name, keys=keys, ledger=ledger, console=console)

    @property
    def out(self) -> Path:
        return self.writer.out

    @property
    def ledger_path(self) -> Path:
        return self.writer.ledger_path

    @property
    def last(self) -> dict[str, Any] | None:
        return self.writer.last

    def write(self, doc: Mapping[str, Any]) -> None:
        self.writer.write(doc)
        say_created_key(self.writer)  # the first document made the key: say so, once

    def finish(self, summary: Mapping[str, Any]) -> None:
        """Record the evidence in the ledger and say where it went (paths never wrapped, so they
        can be copied)."""
        recorded = self.writer.finish(summary)
        if recorded is None:
            return
        say = self.console.print
        if recorded.unsigned_reason is not None:
            say(recorded.unsigned_reason, markup=False, soft_wrap=True)
        signed = f" (signed by key {recorded.signer})" if recorded.signer is not None else ""
        say(f"evidence written to {recorded.path}{signed}", markup=False, soft_wrap=True)
        say(f"ledger record {recorded.seq} in {recorded.ledger}", markup=False, soft_wrap=True)
