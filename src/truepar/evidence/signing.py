"""Sign evidence and check its signature against a trust list.

A signature proves the bytes were not changed since someone holding the key signed them; the
trust list says whose key that is. Evidence re-signed after an edit is *valid* but not
*trusted* — ``truepar verify`` also recomputes the derived numbers, so such edits are caught.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from truepar.errors import BadInput
from truepar.evidence.canonical import SIGNATURE_FIELD, signed_bytes
from truepar.evidence.keys import (
    ALGORITHM,
    Trust,
    b64decode_strict,
    b64encode,
    key_id,
    public_key_from_b64,
    raw_public_bytes,
)

_FIELDS = frozenset({"alg", "key_id", "public_key", "value"})

#: The reason :func:`check_signature` gives for a document with no signature at all.
NOT_SIGNED = "the evidence is not signed"


@dataclass(frozen=True)
class SignatureCheck:
    """The outcome of :func:`check_signature`; ``reason`` says why in one line."""

    valid: bool
    trusted: bool
    signer: str | None
    key_id: str | None
    reason: str


def sign(document: Mapping[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """A copy of ``document`` with a ``signature`` over its canonical form (old one replaced)."""
    signed = {k: copy.deepcopy(v) for k, v in document.items() if k != SIGNATURE_FIELD}
    public_key = private_key.public_key()
    signed[SIGNATURE_FIELD] = {
        "alg": ALGORITHM,
        "key_id": key_id(public_key),
        "public_key": b64encode(raw_public_bytes(public_key)),
        "value": b64encode(private_key.sign(signed_bytes(signed))),
    }
    return signed


def check_signature(document: Mapping[str, Any], trust: Trust | None = None) -> SignatureCheck:
    """Check the signature of ``document``; never raises for a bad document."""

    def invalid(reason: str, kid: str | None = None) -> SignatureCheck:
        return SignatureCheck(False, False, None, kid, reason)

    if not isinstance(document, Mapping):
        return invalid("the evidence is not a JSON object")
    signature = document.get(SIGNATURE_FIELD)
    if signature is None:
        return invalid(NOT_SIGNED)
    if not isinstance(signature, Mapping) or set(signature) != _FIELDS:
        return invalid(f"malformed signature: expected exactly the fields {sorted(_FIELDS)}")
    if not all(isinstance(signature[f], str) for f in _FIELDS):
        return invalid("malformed signature: every field must be a string")
    if signature["alg"] != ALGORITHM:
        return invalid(f"unsupported signature algorithm {signature['alg']!r}")
    try:
        public_key = public_key_from_b64(signature["public_key"])
        value = b64decode_strict(signature["value"])
    except ValueError as exc:
        return invalid(f"malformed signature: {exc}")
    kid = key_id(public_key)
    if signature["key_id"] != kid:
        return invalid(f"key id {signature['key_id']!r} does not match the public key ({kid})")
    try:
        message = signed_bytes(document)
    except BadInput as exc:
        return invalid(f"the evidence cannot be serialized canonically: {exc}", kid)
    try:
        public_key.verify(value, message)
    except InvalidSignature:
        return invalid(
            "the signature does not match the content: it was changed after signing", kid
        )
    entry = (trust or {}).get(kid)
    if entry is None:
        return SignatureCheck(True, False, None, kid, f"valid signature by untrusted key {kid}")
    name, trusted_key = entry
    if raw_public_bytes(trusted_key) != raw_public_bytes(public_key):
        return SignatureCheck(
            True, False, None, kid, f"key {kid} differs from the trusted key of {name!r}"
        )
    return SignatureCheck(True, True, name, kid, f"valid signature by {name!r} ({kid})")
