"""Signatures: round trip, every edit detected, untrusted re-signing reported as such."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from truepar.errors import UsageError
from truepar.evidence import canonical_bytes, check_signature, sign
from truepar.evidence.keys import key_id

# Module-level, not a fixture: hypothesis reuses it across examples (and it is cheap anyway).
KEY = Ed25519PrivateKey.generate()
TRUST = {key_id(KEY.public_key()): ("ci", KEY.public_key())}

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
documents = st.fixed_dictionaries(
    {
        "schema_version": st.just(1),
        "samples": st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=5),
        "extra": json_values,
    }
)


def _numbers(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to every JSON number (bools are not numbers) in ``value``."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _numbers(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _numbers(v, (*path, i))]
    return []


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> None:
    for step in path[:-1]:
        value = value[step]
    value[path[-1]] = new


def test_sign_then_check_round_trips_and_names_the_trusted_signer() -> None:
    document = {"schema_version": 1, "speedup": 3.5, "name": "héllo"}
    signed = sign(document, KEY)
    assert "signature" not in document
    check = check_signature(json.loads(json.dumps(signed)), TRUST)
    assert (check.valid, check.trusted, check.signer) == (True, True, "ci")
    assert check.key_id == key_id(KEY.public_key())
    assert signed["signature"]["alg"] == "ed25519"


def test_resigning_replaces_the_old_signature() -> None:
    signed = sign({"a": 1}, KEY)
    assert check_signature(sign(signed, KEY), TRUST).valid


def test_missing_or_malformed_signature_is_invalid() -> None:
    assert not check_signature({"a": 1}, TRUST).valid
    assert "not signed" in check_signature({"a": 1}, TRUST).reason
    signed = sign({"a": 1}, KEY)
    signed["signature"]["alg"] = "rsa"
    assert not check_signature(signed, TRUST).valid
    signed = sign({"a": 1}, KEY)
    del signed["signature"]["key_id"]
    assert not check_signature(signed, TRUST).valid
    signed = sign({"a": 1}, KEY)
    signed["signature"]["value"] = "not base64!"
    assert not check_signature(signed, TRUST).valid


def test_document_resigned_with_an_untrusted_key_is_valid_but_untrusted() -> None:
    signed = sign({"speedup": 2.0}, KEY)
    forged = dict(signed, speedup=9.0)
    assert not check_signature(forged, TRUST).valid
    resigned = sign(forged, Ed25519PrivateKey.generate())
    check = check_signature(resigned, TRUST)
    assert (check.valid, check.trusted, check.signer) == (True, False, None)
    assert "untrusted" in check.reason
    assert not check_signature(signed, None).trusted


def test_a_trusted_name_with_a_different_key_is_not_trusted() -> None:
    other = Ed25519PrivateKey.generate()
    signed = sign({"a": 1}, other)
    # Same key id, different key: only possible by a forged trust list; still not trusted.
    trust = {key_id(other.public_key()): ("ci", KEY.public_key())}
    check = check_signature(signed, trust)
    assert check.valid and not check.trusted


def test_canonical_bytes_are_sorted_compact_utf8_and_refuse_nan() -> None:
    assert canonical_bytes({"b": 1, "a": [1.5, "é"]}) == '{"a":[1.5,"é"],"b":1}'.encode()
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(UsageError):
            canonical_bytes({"x": bad})


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(document=documents, data=st.data())
def test_any_single_byte_change_that_still_parses_is_detected(
    document: dict[str, Any], data: st.DataObject
) -> None:
    signed = sign(document, KEY)
    blob = bytearray(canonical_bytes(signed))
    index = data.draw(st.integers(0, len(blob) - 1), label="index")
    new_byte = data.draw(st.integers(0x20, 0x7E) | st.integers(0, 255), label="byte")
    assume(new_byte != blob[index])
    blob[index] = new_byte
    try:
        edited = json.loads(blob.decode("utf-8"))
    except ValueError:
        assume(False)
    # A change to another spelling of the same document (10.0 → 10e0) is not an edit.
    try:
        same = canonical_bytes(edited) == canonical_bytes(signed)
    except UsageError:  # e.g. 1e+300 → 1e+900 parses as infinity: an edit
        same = False
    assume(not same)
    assert not check_signature(edited, TRUST).valid


@settings(max_examples=1000, deadline=None)
@given(document=documents, data=st.data())
def test_any_single_number_change_is_detected(
    document: dict[str, Any], data: st.DataObject
) -> None:
    signed = sign(document, KEY)
    edited = json.loads(json.dumps(signed))
    path = data.draw(st.sampled_from(_numbers(edited)), label="path")
    old = edited
    for step in path:
        old = old[step]
    new = data.draw(
        st.integers(-(10**12), 10**12) | st.floats(allow_nan=False, allow_infinity=False),
        label="new",
    )
    assume(json.dumps(new) != json.dumps(old))
    _replace(edited, path, new)
    assert not check_signature(edited, TRUST).valid


@pytest.mark.parametrize(("field", "position"), [("value", -3), ("public_key", -2)])
def test_another_base64_spelling_of_the_same_bytes_is_refused(field: str, position: int) -> None:
    # The last base64 digit before the padding has unused low bits: flipping one decodes to the
    # same bytes. Accepting it would let an edited file keep a valid signature.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    signed = sign({"a": 1}, KEY)
    text = signed["signature"][field]
    alias = alphabet[alphabet.index(text[position]) ^ 1]
    signed["signature"][field] = text[:position] + alias + text[position + 1 :]
    check = check_signature(signed, TRUST)
    assert not check.valid
    assert "canonical base64" in check.reason
