"""Evidence anyone can check: canonical serialization, Ed25519 keys, signatures, the ledger,
and the environment metadata every record carries."""

from __future__ import annotations

from truepar.evidence.canonical import canonical_bytes, signed_bytes
from truepar.evidence.document import (
    SCHEMA_VERSION,
    bench_evidence,
    check_schema,
    load_evidence,
    recompute,
    run_evidence,
)
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
from truepar.evidence.signing import SignatureCheck, check_signature, sign
from truepar.tools.secrets import redact

__all__ = (
    "SCHEMA_VERSION",
    "ChainCheck",
    "KeyPaths",
    "Ledger",
    "Record",
    "SignatureCheck",
    "Trust",
    "bench_evidence",
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
    "recompute",
    "redact",
    "redact_plan",
    "run_evidence",
    "sign",
    "signed_bytes",
    "trust_line",
)
