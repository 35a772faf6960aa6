"""Recording evidence: write one document (signed when a key exists, atomically) and append its
record to the ledger — the one way every front end records a run, bench, prove or swarm.

A :class:`EvidenceWriter` is made *before* the work, so that an unwritable path, a key with loose
permissions or an unusable ledger fails at once instead of after a long run. ``write`` replaces
the file (a bench writes its evidence after every configuration, so an interruption loses
nothing); ``finish`` appends the last document written to the ledger and says what was done.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from truepar.errors import UsageError
from truepar.evidence.build import bench_evidence, prove_evidence, run_evidence
from truepar.evidence.canonical import canonical_bytes
from truepar.evidence.keys import (
    PRIVATE_NAME,
    PUBLIC_NAME,
    default_keys_dir,
    init_keys,
    key_id,
    load_private_key,
)
from truepar.evidence.ledger import Ledger
from truepar.evidence.metadata import utc_now
from truepar.evidence.paths import default_ledger_path, new_evidence_file
from truepar.evidence.signing import sign
from truepar.evidence.summaries import bench_summary, prove_summary, run_summary
from truepar.fileio import atomic_write_json, check_can_create, check_writable
from truepar.measure.prove_results import ProveReport
from truepar.measure.results import BenchReport
from truepar.plan.models import Plan
from truepar.records import RunTrace


@dataclasses.dataclass(frozen=True)
class Recorded:
    """What recording one document did: where it is, who signed it, its ledger record."""

    path: Path
    signer: str | None
    ledger: Path
    seq: int
    #: Why the document is unsigned (no key), or ``None`` when it is signed.
    unsigned_reason: str | None


def _first_key(folder: Path) -> Path | None:
    """Make the user's key in ``folder``; ``None`` if another process made it meanwhile."""
    try:
        return init_keys(folder).private
    except UsageError:
        if (folder / PRIVATE_NAME).exists():
            return None  # a concurrent first run made it: use that one
        raise


def resolve_ledger(ledger: Path | None, *, hint: str = "give a ledger path") -> Path:
    """``ledger``, else the default ledger, opened once now: a bad path fails before the work.

    ``hint`` ends the error about an unusable *default* ledger (the CLI names its flags there).
    """
    if ledger is not None:
        Ledger(ledger).close()
        return ledger
    path = default_ledger_path()
    try:
        Ledger(path).close()
    except UsageError as exc:
        raise UsageError(f"{exc}; {hint}") from exc
    return path


def record_in_ledger(
    ledger: Path,
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
    with Ledger(ledger) as book:
        record = book.append(
            digest,
            kind=kind,
            plan=plan,
            signer=signer,
            summary=dict(summary),
            evidence_path=str(file.resolve()),
        )
    return record.seq


class EvidenceWriter:
    """One evidence file of ``kind`` for plan ``name``, and its ledger record.

    ``out``: where to write it (default: a new file in the evidence folder, see
    :func:`~truepar.evidence.paths.new_evidence_file`). ``keys``: the key folder that signs it
    (default truepar's own; no private key there: unsigned). ``ledger``: default the data
    folder's. ``label`` names ``out`` in errors, ``ledger_hint`` ends an error about the default
    ledger (front ends put their own words there).
    """

    def __init__(
        self,
        out: Path | None = None,
        *,
        kind: str,
        name: str,
        keys: Path | None = None,
        ledger: Path | None = None,
        label: str = "evidence file",
        ledger_hint: str = "give a ledger path",
    ) -> None:
        self.kind, self.name = kind, name
        self.out = out if out is not None else new_evidence_file(kind, name)
        check_writable(self.out, label)
        folder = keys if keys is not None else default_keys_dir()
        private = folder / PRIVATE_NAME
        self.key: Ed25519PrivateKey | None = None
        self.unsigned_reason: str | None = None
        #: The key this writer made: evidence is signed from the first run, no ceremony.
        self.created_key: Path | None = None
        #: The default key folder, still without a key: one is made with the first document
        #: written (not before: bad input found later must leave nothing behind).
        self._make_key_in: Path | None = None
        self._key_note_taken = False
        if private.exists():
            self.key = load_private_key(private)  # loose permissions: UsageError
        elif keys is None:
            check_can_create(folder, f"key folder {str(folder)!r}")
            self._make_key_in = folder
        else:
            self.unsigned_reason = f"no private key in {folder}: evidence is unsigned"
        self.ledger_path = resolve_ledger(ledger, hint=ledger_hint)
        self.last: dict[str, Any] | None = None

    def take_key_note(self) -> str | None:
        """What to tell the user when this writer made their key — once: ``None`` after."""
        if self.created_key is None or self._key_note_taken:
            return None
        self._key_note_taken = True
        return (
            f"created your signing key {self.created_key} (0600): evidence is signed from now "
            f"on; share {self.created_key.with_name(PUBLIC_NAME)} for others to check it"
        )

    @property
    def signer(self) -> str | None:
        return None if self.key is None else key_id(self.key.public_key())

    def write(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """Sign (when a key exists) and write ``doc`` atomically; the document as written."""
        if self._make_key_in is not None:
            folder, self._make_key_in = self._make_key_in, None
            self.created_key = _first_key(folder)
            self.key = load_private_key(folder / PRIVATE_NAME)
        final = sign(doc, self.key) if self.key is not None else dict(doc)
        atomic_write_json(self.out, final)
        self.last = final
        return final

    def finish(self, summary: Mapping[str, Any]) -> Recorded | None:
        """Append the last document written to the ledger (``None`` if none was written)."""
        if self.last is None:
            return None
        seq = record_in_ledger(
            self.ledger_path,
            self.last,
            kind=self.kind,
            plan=self.name,
            signer=self.signer,
            summary=summary,
            file=self.out,
        )
        return Recorded(self.out, self.signer, self.ledger_path, seq, self.unsigned_reason)


def record(
    doc: Mapping[str, Any],
    *,
    kind: str,
    name: str,
    summary: Mapping[str, Any],
    out: Path | None = None,
    keys: Path | None = None,
    ledger: Path | None = None,
) -> Recorded:
    """Write ``doc`` and record it in one call (the writer, made and finished at once)."""
    writer = EvidenceWriter(out, kind=kind, name=name, keys=keys, ledger=ledger)
    writer.write(doc)
    recorded = writer.finish(summary)
    assert recorded is not None
    return recorded


def record_run(
    trace: RunTrace,
    plan: Plan,
    *,
    out: Path | None = None,
    keys: Path | None = None,
    ledger: Path | None = None,
) -> Recorded:
    """Run evidence for ``trace`` (of ``plan``), written and recorded — with :func:`truepar.run`
    and :func:`~truepar.evidence.verify`, the whole path in three calls::

        trace = truepar.run(plan)
        recorded = truepar.evidence.record_run(trace, plan)
        assert truepar.evidence.verify(recorded.path).valid
    """
    started = _iso(trace.wall_anchor_unix_s)
    ended = _iso(trace.wall_anchor_unix_s + (trace.end_ns - trace.start_ns) / 1e9)
    doc = run_evidence(trace, plan, started_utc=started, ended_utc=ended)
    return record(
        doc,
        kind="run",
        name=plan.name,
        summary=run_summary(trace),
        out=out,
        keys=keys,
        ledger=ledger,
    )


def record_bench(
    report: BenchReport,
    plan: Plan,
    *,
    started_utc: str,
    out: Path | None = None,
    keys: Path | None = None,
    ledger: Path | None = None,
) -> Recorded:
    """Bench evidence for ``report`` (of ``plan``, begun at ``started_utc``), written and
    recorded."""
    doc = bench_evidence(report, plan, started_utc=started_utc, ended_utc=utc_now())
    return record(
        doc,
        kind="bench",
        name=plan.name,
        summary=bench_summary(report),
        out=out,
        keys=keys,
        ledger=ledger,
    )


def record_prove(
    report: ProveReport,
    *,
    started_utc: str,
    out: Path | None = None,
    keys: Path | None = None,
    ledger: Path | None = None,
) -> Recorded:
    """Prove evidence for ``report`` (begun at ``started_utc``), written and recorded."""
    doc = prove_evidence(report, started_utc=started_utc, ended_utc=utc_now())
    return record(
        doc,
        kind="prove",
        name="prove",
        summary=prove_summary(report),
        out=out,
        keys=keys,
        ledger=ledger,
    )


def _iso(unix_s: float) -> str:
    when = datetime.datetime.fromtimestamp(unix_s, datetime.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
