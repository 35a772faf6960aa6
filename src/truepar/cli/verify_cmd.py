"""``truepar verify``: print the library's verification report (:func:`truepar.evidence.verify`).

Exit codes: 0 VALID (signed, every check passed) · 1 INVALID (a check failed, named in the
output: the evidence was changed, its numbers do not hold, or the rerun refutes it) · 2 the file
cannot be read as evidence at all (one line) · 3 UNSIGNED (every check passed, but no key signed
it) · 4 UNCONFIRMED (nothing failed, but ``--reproduce`` flipped a verdict within the noise).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from truepar.cli import backend_opts
from truepar.errors import UsageError
from truepar.evidence import Check, verify

OK, BAD, SKIP, MISSING, NOISE = "✓", "✗", "–", "!", "≈"

#: The exit code of each verdict (2 is bad input, raised before any check).
EXIT = {"VALID": 0, "INVALID": 1, "UNSIGNED": 3, "UNCONFIRMED": 4}


def _line(out: Console, check: Check) -> None:
    mark, style = {
        "ok": (OK, "green"),
        "failed": (BAD, "bold red"),
        "skipped": (SKIP, "dim"),
        "missing": (MISSING, "yellow"),
        "noise": (NOISE, "yellow"),
    }[check.status]
    text = check.text
    if check.name == "trust" and check.status == "skipped":
        text = "not checked (give --trust FILE)"
    out.print(f"[{style}]{mark}[/] {check.name}: ", end="")
    out.print(text, markup=False)
    for detail in check.details:
        out.print(f"    {detail}", markup=False)


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
    address: backend_opts.AddressOpt = None,
) -> int:
    """Check evidence: schema, signature, signer's trust, and every derived number.

    Exit 0 VALID · 1 INVALID · 2 unusable input · 3 UNSIGNED
    · 4 UNCONFIRMED: --reproduce flipped a verdict within noise.
    """
    if evidence is None and ledger is None:
        raise UsageError("give an EVIDENCE file, or --ledger PATH, or both")
    if reproduce_ and evidence is None:
        raise UsageError("--reproduce needs an EVIDENCE file")
    if reproduce_ and not tolerance >= 0:
        raise UsageError(f"--tolerance must be 0 or more, not {tolerance}")
    if address is not None and not reproduce_:
        raise UsageError("--address is where --reproduce reruns on Ray: give --reproduce too")
    backend_opts.use_address(address)
    if ledger is not None and not ledger.exists():
        raise UsageError(f"--ledger {str(ledger)!r}: no such file")
    try:
        report = verify(
            evidence,
            trust=trust,
            ledger=ledger,
            reproduce_here=reproduce_,
            tolerance=tolerance,
        )
    except UsageError as exc:
        if reproduce_ and "reproduc" in str(exc):
            raise UsageError(f"--reproduce: {exc}") from None
        raise
    out = Console(highlight=False, soft_wrap=True)
    if evidence is not None:
        out.print(f"evidence {evidence}", markup=False)
    for check in report.checks:
        _line(out, check)
    verdict = report.verdict
    if verdict == "UNCONFIRMED":
        out.print(
            "[bold yellow]UNCONFIRMED[/] — not reproduced within noise: a verdict flipped here, "
            "but the intervals cannot tell the two apart (bench with more --repeat, on a "
            "quieter machine)"
        )
    elif verdict == "UNSIGNED":
        out.print(
            "[bold yellow]UNSIGNED[/] — the numbers hold, but no key signed them "
            "(truepar keys init makes one)"
        )
    else:
        out.print("[bold green]VALID[/]" if verdict == "VALID" else "[bold red]INVALID[/]")
    return EXIT[verdict]
