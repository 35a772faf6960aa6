"""Evidence anyone can check: canonical serialization, Ed25519 keys, signatures, the ledger,
and the environment metadata every record carries."""

from __future__ import annotations

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
from truepar.evidence.ledger import ChainCheck, Ledger, Record, default_ledger_path
from truepar.evidence.metadata import collect, redact, redact_plan
from truepar.evidence.signing import SignatureCheck, check_signature, sign

__all__ = (
    "ChainCheck",
    "KeyPaths",
    "Ledger",
    "Record",
    "SignatureCheck",
    "Trust",
    "canonical_bytes",
    "check_signature",
    "collect",
    "default_keys_dir",
    "default_ledger_path",
    "init_keys",
    "key_id",
    "load_private_key",
    "load_public_key",
    "load_trust",
    "redact",
    "redact_plan",
    "sign",
    "signed_bytes",
    "trust_line",
)
