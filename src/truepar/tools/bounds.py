"""The largest numbers a plan may hold: anything bigger is a typo, and would hang or overflow —
and the characters its names and ids may not hold.

Every float of a plan must also be finite (pydantic's ``allow_inf_nan=False`` on every plan model:
``inf`` and ``nan`` are rejected where the plan is loaded, with the file, op and field named).
"""

from __future__ import annotations

import unicodedata

#: Seconds: the longest timeout, sleep, fake duration or CPU time, retry backoff or wait a plan may
#: ask for — 30 days.
MAX_DURATION_S = 30 * 24 * 3600
#: The most retries an op (or the plan's default) may ask for.
MAX_RETRIES = 100
#: The largest count a plan may give: requests (``cost``, rates), tokens, bytes — 10^12.
MAX_COUNT = 10**12
#: The most ops truepar runs at once on any backend (``workers``): beyond it, a typo.
MAX_WORKERS = 100_000

#: Characters a name or id may not hold: controls (newlines, ANSI/OSC escapes that would reach
#: the terminal raw) and the invisible format characters (bidi overrides, zero-widths) that make
#: text read other than it is.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def unsafe_char(text: str) -> str | None:
    """The first character of ``text`` a name or id may not hold, as ``U+XXXX``; else ``None``."""
    if text.isascii() and text.isprintable():
        return None
    for ch in text:
        if unicodedata.category(ch) in _UNSAFE_CATEGORIES:
            return f"U+{ord(ch):04X}"
    return None
