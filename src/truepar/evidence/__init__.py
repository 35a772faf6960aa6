"""Evidence anyone can check — the record layer every front end (CLI, MCP server, Python) uses.

Build a document (:func:`run_evidence`, :func:`bench_evidence`, :func:`prove_evidence`), record it
(:class:`EvidenceWriter`: signed when a key exists, written atomically, appended to the ledger,
with one summary shape per kind — or :func:`record` in one call), and check it
(:func:`verify`: schema, signature, trust, recomputation and physics, reproduction, ledger
chain; a typed :class:`VerifyReport`). Underneath: canonical serialization, Ed25519 keys, the
hash-chained ledger, and the environment metadata every record carries.
"""

from __future__ import annotations

from truepar.evidence.build import SCHEMA_VERSION, bench_evidence, prove_evidence, run_evidence
from truepar.evidence.canonical import canonical_bytes, signed_bytes
from truepar.evidence.keys import (
    KeyPaths,
    Trust,
    default_keys_dir,
    init_keys,
    key_id,
    load_private_key,
    load_public_key,
    load_trust,
    trust_line,
)
from truepar.evidence.ledger import ChainCheck, Ledger, Record
from truepar.evidence.metadata import collect, redact_plan
from truepar.evidence.paths import (
    data_dir,
    default_evidence_dir,
    default_ledger_path,
    new_evidence_file,
)
from truepar.evidence.read import Evidence, check_schema, load_evidence, typed
from truepar.evidence.recompute import recompute
from truepar.evidence.signing import SignatureCheck, check_signature, sign
from truepar.evidence.summaries import bench_summary, prove_summary, run_summary, summary_text
from truepar.evidence.verify import Check, VerifyReport, verify
from truepar.evidence.writer import (
    EvidenceWriter,
    Recorded,
    record,
    record_bench,
    record_in_ledger,
    record_prove,
    record_run,
    resolve_ledger,
)
from truepar.tools.secrets import redact

__all__ = (
    "SCHEMA_VERSION",
    "ChainCheck",
    "Check",
    "Evidence",
    "EvidenceWriter",
    "KeyPaths",
    "Ledger",
    "Record",
    "Recorded",
    "SignatureCheck",
    "Trust",
    "VerifyReport",
    "bench_evidence",
    "bench_summary",
    "canonical_bytes",
    "check_schema",
    "check_signature",
    "collect",
    "data_dir",
    "default_evidence_dir",
    "default_keys_dir",
    "default_ledger_path",
    "init_keys",
    "key_id",
    "load_evidence",
    "load_private_key",
    "load_public_key",
    "load_trust",
    "new_evidence_file",
    "prove_evidence",
    "prove_summary",
    "recompute",
    "record",
    "record_bench",
    "record_in_ledger",
    "record_prove",
    "record_run",
    "redact",
    "redact_plan",
    "resolve_ledger",
    "run_evidence",
    "run_summary",
    "sign",
    "signed_bytes",
    "summary_text",
    "trust_line",
    "typed",
    "verify",
)
