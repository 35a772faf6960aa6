"""``verify``: is this evidence what it claims to be? Five checks, each with its status and words.

1. **schema** — the document conforms to ``schema.json``.
2. **signature** — it is signed, and the signature covers it as it is now.
3. **trust** — the signing key is in the given trust list (skipped without one).
4. **recompute** — every derived number follows from the raw samples, and those samples are
   physically possible (:mod:`truepar.evidence.recompute`, :mod:`truepar.evidence.physics`).
5. **reproduce** (when asked) — rerun the plan here: the same verdicts, speedups within a
   tolerance (:mod:`truepar.evidence.reproduce`); a verdict that flipped within the noise of
   the measurements is ``noise``: neither confirmed nor refuted.

and, given a ledger, its hash chain. ``truepar verify`` prints this report; it decides nothing
of its own.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

from truepar.errors import UsageError
from truepar.evidence.keys import Trust, load_trust
from truepar.evidence.ledger import Ledger
from truepar.evidence.read import check_schema, load_evidence
from truepar.evidence.recompute import recompute
from truepar.evidence.reproduce import plan_path, reproduce
from truepar.evidence.signing import NOT_SIGNED, check_signature

#: ``missing``: a signature that is not there — not a failure of the numbers, and not a
#: signature that no longer matches (that one ``failed``: the evidence was changed).
#: ``noise``: the rerun gave another verdict, but within the noise of the measurements.
CheckStatus = Literal["ok", "failed", "skipped", "missing", "noise"]
#: What a report concludes, the first that applies: a check failed (the evidence was changed,
#: its numbers do not hold, or the rerun refutes it); the rerun flipped a verdict within the
#: noise (not reproduced, not refuted); nobody signed it; signed and every check passed.
Verdict = Literal["INVALID", "UNCONFIRMED", "UNSIGNED", "VALID"]


@dataclasses.dataclass(frozen=True)
class Check:
    """One check: its name, whether it passed, what it found in words, and the details."""

    name: str
    status: CheckStatus
    text: str
    details: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclasses.dataclass(frozen=True)
class VerifyReport:
    """Every check made, in order. ``valid``: none failed."""

    evidence: Path | None
    checks: tuple[Check, ...]

    @property
    def valid(self) -> bool:
        """Signed (when there is a document), no check failed, and a rerun (when asked)
        reproduced every verdict."""
        return all(c.status in ("ok", "skipped") for c in self.checks)

    @property
    def verdict(self) -> Verdict:
        statuses = {c.status for c in self.checks}
        if "failed" in statuses:
            return "INVALID"
        if "noise" in statuses:
            return "UNCONFIRMED"
        return "UNSIGNED" if "missing" in statuses else "VALID"

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)


#: Details shown per check at most; the rest are counted.
MAX_DETAILS = 20


def _details(lines: list[str]) -> tuple[str, ...]:
    more = [f"... and {len(lines) - MAX_DETAILS} more"] if len(lines) > MAX_DETAILS else []
    return (*lines[:MAX_DETAILS], *more)


def verify(
    evidence: str | Path | None = None,
    *,
    trust: Path | Trust | None = None,
    ledger: str | Path | None = None,
    reproduce_here: bool = False,
    tolerance: float = 0.25,
) -> VerifyReport:
    """Check an evidence file (and/or a ledger's chain). Bad input — no such file, not JSON, a
    ledger that is not one — raises :class:`~truepar.errors.UsageError`; everything else is a
    check in the report."""
    if evidence is None and ledger is None:
        raise UsageError("give an evidence file, or a ledger, or both")
    if reproduce_here and evidence is None:
        raise UsageError("reproducing needs an evidence file")
    if not tolerance >= 0:
        raise UsageError(f"tolerance must be 0 or more, not {tolerance}")
    trusted = load_trust(trust) if isinstance(trust, Path) else trust
    checks: list[Check] = []
    if evidence is not None:
        checks += _document_checks(Path(evidence), trusted, tolerance if reproduce_here else None)
    if ledger is not None:
        checks.append(_ledger_check(Path(ledger)))
    return VerifyReport(Path(evidence) if evidence is not None else None, tuple(checks))


def _document_checks(path: Path, trust: Trust | None, tolerance: float | None) -> list[Check]:
    doc = load_evidence(path)
    if tolerance is not None:
        plan_path(doc)  # not bench/prove evidence, or no plan file: bad input, before any check
    checks = []
    problems = check_schema(doc)
    checks.append(
        Check(
            "schema",
            "failed" if problems else "ok",
            f"{len(problems)} problem(s)" if problems else "conforms",
            _details(problems),
        )
    )
    sig = check_signature(doc, trust)
    if sig.valid:
        checks.append(Check("signature", "ok", f"valid, key {sig.key_id}"))
    elif sig.reason == NOT_SIGNED:
        checks.append(Check("signature", "missing", "not signed: nobody vouches for these numbers"))
    else:
        checks.append(Check("signature", "failed", sig.reason.removeprefix("the evidence is ")))
    if trust is None:
        checks.append(Check("trust", "skipped", "not checked (give a trust list)"))
    elif sig.trusted:
        checks.append(Check("trust", "ok", f"signed by {sig.signer!r} ({sig.key_id})"))
    elif sig.valid:
        checks.append(
            Check("trust", "failed", f"signed by an untrusted key {sig.key_id}", (sig.reason,))
        )
    elif sig.reason == NOT_SIGNED:
        checks.append(Check("trust", "missing", "no signature to trust"))
    else:
        checks.append(Check("trust", "failed", "no valid signature to trust"))
    diffs = recompute(doc)
    checks.append(
        Check(
            "recompute",
            "failed" if diffs else "ok",
            f"{len(diffs)} problem(s): numbers that do not follow from the raw samples, or "
            "samples that physics does not allow"
            if diffs
            else "every derived number follows from the raw samples, which physics allows",
            _details(diffs),
        )
    )
    if tolerance is not None:
        rep = reproduce(doc, tolerance=tolerance)
        pct = f"±{tolerance * 100:g}%"
        outcomes: dict[str, tuple[CheckStatus, str]] = {
            "reproduced": ("ok", f"verdicts equal and speedups within {pct} here"),
            "within_noise": (
                "noise",
                f"not reproduced within noise: a verdict flipped here, inside the noise of "
                f"the measurements (speedups within {pct})",
            ),
            "not_reproduced": ("failed", f"the rerun here differs (tolerance {pct})"),
        }
        status, text = outcomes[rep.outcome]
        checks.append(Check("reproduce", status, text, tuple(rep.lines)))
    return checks


def _ledger_check(path: Path) -> Check:
    with Ledger(path, create=False) as book:
        chain = book.verify_chain()
    return Check("ledger", "ok" if chain.ok else "failed", f"{path}: {chain.reason}")
