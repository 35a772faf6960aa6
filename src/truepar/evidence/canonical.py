"""The one byte form of a JSON document that signatures are computed over.

Keys sorted, no insignificant whitespace, UTF-8 with non-ASCII characters kept as they are
(``ensure_ascii=False``), floats written as Python's ``repr`` (what :mod:`json` does). NaN and
infinities are refused: they are not JSON, and another reader could not reproduce the bytes.
What is signed is the evidence document minus its ``signature`` field (:func:`signed_bytes`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from truepar.errors import UsageError

SIGNATURE_FIELD = "signature"


def canonical_bytes(obj: Any) -> bytes:
    """Serialize ``obj`` canonically; raise :class:`UsageError` for NaN, infinities or non-JSON."""
    try:
        text = json.dumps(
            obj,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
    except (ValueError, TypeError) as exc:
        raise UsageError(f"cannot serialize canonically: {exc}") from exc
    return text.encode("utf-8")


def signed_bytes(document: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: the canonical form of ``document`` without ``signature``."""
    return canonical_bytes({k: v for k, v in document.items() if k != SIGNATURE_FIELD})
