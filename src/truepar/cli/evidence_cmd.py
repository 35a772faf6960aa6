"""``truepar keys``, ``truepar verify``, ``truepar history``, and the evidence writer that
``run``, ``bench``, ``prove`` and ``swarm`` share.

Verification exit codes: 0 valid · 1 invalid (a check failed, named in the output) · 2 the file
cannot be read as evidence at all (one line).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

import truepar
from truepar.evidence import (
    Ledger,
    canonical_bytes,
    check_schema,
    check_signature,
    default_keys_dir,
    default_ledger_path,
    init_keys,
    load_evidence,
    load_private_key,
    load_public_key,
    load_trust,
    new_evidence_file,
    recompute,
    sign,
    trust_line,
)
from truepar.evidence.keys import PRIVATE_NAME, PUBLIC_NAME, key_id
from truepar.evidence.reproduce import plan_path, reproduce
from truepar.fileio import atomic_write_json, check_writable

OK, BAD, SKIP = "✓", "✗", "–"

# -------------------------------------------------------------------- options bench/run share

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


def ledger_path(ledger: Path | None) -> Path:
    """``--ledger``, else the default ledger; checked to be a ledger now, so a bad path fails
    before the work, not after it."""
    if ledger is not None:
        Ledger(ledger).close()
        return ledger
    path = default_ledger_path()
    try:
        Ledger(path).close()
    except truepar.UsageError as exc:
        raise truepar.UsageError(f"{exc}; give --ledger PATH, or --no-evidence") from exc
    return path


def record_in_ledger(
    path: Path,
    doc: Mapping[str, Any],
    *,
    kind: str,
    plan: str,
    signer: str | None,
    summary: Mapping[str, Any],
    file: Path,
) -> int:
    """Append ``doc`` (hashed over its canonical form, as written to ``file``); its record's seq."""
    digest = hashlib.sha256(canonical_bytes(doc)).hexdigest()
    with Ledger(path) as ledger:
        record = ledger.append(
            digest,
            kind=kind,
            plan=plan,
            signer=signer,
            summary=dict(summary),
            evidence_path=str(file.resolve()),
        )
    return record.seq


class EvidenceWriter:
    """Writes one evidence file (signed when a key exists) and records it in the ledger at the end.

    Built before the work starts, so a bad path or a key with loose permissions fails at once.
    """

    def __init__(
        self,
        out: Path,
        *,
        keys: Path | None,
        ledger: Path | None,
        console: Console,
        flag: str = "--evidence",
    ) -> None:
        check_writable(out, flag)
        self.out = out
        self.console = console
        folder = keys if keys is not None else default_keys_dir()
        private = folder / PRIVATE_NAME
        self.key: Ed25519PrivateKey | None = None
        if private.exists():
            self.key = load_private_key(private)  # loose permissions: UsageError, exit 2
        else:
            self.unsigned_note = f"no private key in {folder}: evidence is unsigned"
        self.ledger_path = ledger_path(ledger)
        self.last: dict[str, Any] | None = None

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
    ) -> EvidenceWriter | None:
        """The writer every command has by default (``out``, else a new file in the evidence
        folder); ``None`` with ``--no-evidence``."""
        if off:
            for given, flag in ((out, "--evidence"), (ledger, "--ledger")):
                if given is not None:
                    raise truepar.UsageError(
                        f"{flag} and --no-evidence contradict each other: drop one of them"
                    )
            return None
        if out is not None:
            return cls(out, keys=keys, ledger=ledger, console=console)
        flag = "evidence file (give --evidence PATH, or --no-evidence)"
        return cls(
            new_evidence_file(kind, name), keys=keys, ledger=ledger, console=console, flag=flag
        )

    @property
    def signer(self) -> str | None:
        return None if self.key is None else key_id(self.key.public_key())

    def write(self, doc: Mapping[str, Any]) -> None:
        final = sign(doc, self.key) if self.key is not None else dict(doc)
        atomic_write_json(self.out, final)
        self.last = final

    def finish(self, *, kind: str, plan: str, summary: Mapping[str, Any]) -> None:
        """Say where the evidence went (paths never wrapped, so they can be copied) and append
        its record to the ledger."""
        if self.last is None:
            return
        if self.key is None:
            self.console.print(self.unsigned_note, markup=False, soft_wrap=True)
        self.console.print(
            f"evidence written to {self.out}"
            + (f" (signed by key {self.signer})" if self.key is not None else ""),
            markup=False,
            soft_wrap=True,
        )
        seq = record_in_ledger(
            self.ledger_path,
            self.last,
            kind=kind,
            plan=plan,
            signer=self.signer,
            summary=summary,
            file=self.out,
        )
        self.console.print(
            f"ledger record {seq} in {self.ledger_path}", markup=False, soft_wrap=True
        )


def bench_summary(report: Any) -> dict[str, Any]:
    best = report.best()
    return {
        "best": best.label if best else None,
        "speedup": round(best.speedup, 4) if best else None,
        "verdict": best.verdict if best else None,
        "complete": bool(report.complete),
    }


def run_summary(trace: Any) -> dict[str, Any]:
    return {
        "backend": trace.backend,
        "workers": trace.workers,
        "wall_s": round(trace.totals.wall_s, 6),
        "ok": bool(trace.ok),
    }


# -------------------------------------------------------------------------------- keys

keys_app = typer.Typer(help="Create and show the Ed25519 key that signs evidence.")

DirOpt = Annotated[
    Path | None,
    typer.Option("--dir", help="Key folder (default: $TRUEPAR_KEYS or ~/.config/truepar/keys)."),
]


def _default_name() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "truepar"
    return f"{user}@{socket.gethostname() or 'localhost'}"


NameOpt = Annotated[
    str | None, typer.Option("--name", help="Signer name in the trust line (default user@host).")
]


@keys_app.command("init")
def keys_init(
    directory: DirOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key pair.")] = False,
    name: NameOpt = None,
) -> None:
    """Create a key pair (private key mode 0600); never overwrite one without --force."""
    paths = init_keys(directory, force=force)
    out = Console(highlight=False, soft_wrap=True)
    out.print(f"private key: {paths.private} (mode 600, keep it secret)", markup=False)
    out.print(f"public key:  {paths.public}", markup=False)
    out.print(f"key id:      {paths.key_id}", markup=False)
    out.print("add this line to the trust file of whoever checks your evidence:", markup=False)
    out.print(trust_line(name or _default_name(), load_public_key(paths.public)), markup=False)


@keys_app.command("show")
def keys_show(directory: DirOpt = None, name: NameOpt = None) -> None:
    """The key id and the public trust line of the key pair."""
    folder = directory if directory is not None else default_keys_dir()
    public = folder / PUBLIC_NAME
    if not public.exists():
        raise truepar.UsageError(f"no key at {folder}; create one with: truepar keys init")
    key = load_public_key(public)
    out = Console(highlight=False, soft_wrap=True)
    out.print(f"key id: {key_id(key)}", markup=False)
    out.print(trust_line(name or _default_name(), key), markup=False)


# ------------------------------------------------------------------------------- verify


def _line(out: Console, ok: bool | None, check: str, text: str, details: list[str]) -> None:
    mark, style = (SKIP, "dim") if ok is None else ((OK, "green") if ok else (BAD, "bold red"))
    out.print(f"[{style}]{mark}[/] {check}: ", end="")
    out.print(text, markup=False)
    for detail in details:
        out.print(f"    {detail}", markup=False)


def _verify_document(
    out: Console, path: Path, trust_file: Path | None, tolerance: float | None = None
) -> bool:
    trust = load_trust(trust_file) if trust_file is not None else None
    doc = load_evidence(path)
    if tolerance is not None:
        if not tolerance >= 0:
            raise truepar.UsageError(f"--tolerance must be 0 or more, not {tolerance}")
        plan_path(doc)  # not bench evidence, or no plan file: one line, exit 2, before any check
    out.print(f"evidence {path}", markup=False)
    ok = True

    problems = check_schema(doc)
    schema_ok = not problems
    _line(
        out,
        schema_ok,
        "schema",
        "conforms" if schema_ok else f"{len(problems)} problem(s)",
        problems[:20],
    )
    ok &= schema_ok

    sig = check_signature(doc, trust)
    if sig.valid:
        _line(out, True, "signature", f"valid, key {sig.key_id}", [])
    else:
        _line(out, False, "signature", sig.reason.removeprefix("the evidence is "), [])
    ok &= sig.valid

    if trust is None:
        _line(out, None, "trust", "not checked (give --trust FILE)", [])
    elif sig.trusted:
        _line(out, True, "trust", f"signed by {sig.signer!r} ({sig.key_id})", [])
    elif sig.valid:
        _line(out, False, "trust", f"signed by an untrusted key {sig.key_id}", [sig.reason])
        ok = False
    else:
        _line(out, False, "trust", "no valid signature to trust", [])
        ok = False

    diffs = recompute(doc)
    _line(
        out,
        not diffs,
        "recompute",
        "every derived number follows from the raw samples, which physics allows"
        if not diffs
        else f"{len(diffs)} problem(s): numbers that do not follow from the raw samples, or "
        "samples that physics does not allow",
        diffs[:20] + ([f"... and {len(diffs) - 20} more"] if len(diffs) > 20 else []),
    )
    ok &= not diffs

    if tolerance is not None:
        rep = reproduce(doc, tolerance=tolerance)
        _line(
            out,
            rep.ok,
            "reproduce",
            f"verdicts equal and speedups within ±{tolerance * 100:g}% here"
            if rep.ok
            else f"the rerun here differs (tolerance ±{tolerance * 100:g}%)",
            rep.lines,
        )
        ok &= rep.ok
    return ok


def _verify_ledger(out: Console, path: Path) -> bool:
    if not path.exists():
        raise truepar.UsageError(f"--ledger {str(path)!r}: no such file")
    with Ledger(path) as ledger:
        check = ledger.verify_chain()
    _line(out, check.ok, "ledger", f"{path}: {check.reason}", [])
    return check.ok


def verify_command(
    evidence: Annotated[
        Path | None, typer.Argument(help="Evidence JSON to check.", show_default=False)
    ] = None,
    trust: Annotated[
        Path | None,
        typer.Option("--trust", help="Trust list: '<name> ed25519 <base64 key>' per line."),
    ] = None,
    ledger: Annotated[
        Path | None, typer.Option("--ledger", help="Check this ledger's hash chain too.")
    ] = None,
    reproduce_: Annotated[
        bool,
        typer.Option(
            "--reproduce",
            help="Rerun the bench's plan and configurations here and compare with the evidence.",
        ),
    ] = False,
    tolerance: Annotated[
        float,
        typer.Option("--tolerance", help="With --reproduce: relative speedup tolerance."),
    ] = 0.25,
) -> int:
    """Check evidence: schema, signature, signer's trust, and every derived number."""
    if evidence is None and ledger is None:
        raise truepar.UsageError("give an EVIDENCE file, or --ledger PATH, or both")
    out = Console(highlight=False, soft_wrap=True)
    ok = True
    if reproduce_ and evidence is None:
        raise truepar.UsageError("--reproduce needs an EVIDENCE file")
    if evidence is not None:
        ok &= _verify_document(out, evidence, trust, tolerance if reproduce_ else None)
    if ledger is not None:
        ok &= _verify_ledger(out, ledger)
    out.print("[bold green]VALID[/]" if ok else "[bold red]INVALID[/]")
    return 0 if ok else 1


# ------------------------------------------------------------------------------ history


def _summary_text(kind: str, summary: Mapping[str, Any]) -> str:
    if kind == "bench":
        speedup = summary.get("speedup")
        text = f"best {summary.get('best')}"
        if isinstance(speedup, int | float):
            text += f" {speedup:.2f}×"
        text += f" {summary.get('verdict')}"
        if summary.get("complete") is False:
            text += " (incomplete)"
        return text
    if kind == "run":
        wall = summary.get("wall_s")
        wall_text = f"{wall:.3f}s" if isinstance(wall, int | float) else "?"
        return f"wall {wall_text} {'ok' if summary.get('ok') else 'FAILED'}"
    if kind == "swarm":
        return (
            f"{summary.get('ok')}/{summary.get('agents')} agents ok, {summary.get('merged')} "
            f"merged, {summary.get('conflicts')} conflict(s)"
        )
    if kind == "prove":
        state = "as expected" if summary.get("ok") else "NOT as expected"
        return f"{summary.get('as_expected')}/{summary.get('results')} verdicts {state}"
    return json.dumps(dict(summary), sort_keys=True)


def history_command(
    ledger: Annotated[
        Path | None,
        typer.Option("--ledger", help="Ledger (default: $TRUEPAR_LEDGER or the data dir's)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Newest N records.")] = 20,
) -> int:
    """List the runs and benches recorded in the ledger, oldest first."""
    if limit < 1:
        raise truepar.UsageError(f"--limit must be at least 1, not {limit}")
    with Ledger(ledger) as book:
        records = book.records(limit=limit)
        path = book.path
    out = Console(highlight=False)
    table = Table(
        title=f"{path} — {len(records)} record(s)",
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
    )
    for col in ("seq", "time (UTC)", "kind", "plan", "signer", "summary"):
        table.add_column(col, justify="right" if col == "seq" else "left", no_wrap=col != "summary")
    for r in records:
        table.add_row(
            str(r.seq),
            r.recorded_utc[:19].replace("T", " "),
            Text(r.kind),
            Text(r.plan),
            Text(r.signer or "unsigned"),
            Text(_summary_text(r.kind, r.summary)),
        )
    out.print(table)
    return 0
