"""How truepar writes numbers for people: seconds, bytes, ratios, tokens, rates.

One module for the terminal, Markdown and HTML, so that a duration reads the same everywhere.
A number that is missing (``None``, or not a number at all, as in hand-edited evidence) is
written as a dash.
"""

from __future__ import annotations

from typing import Any

#: What a missing number is written as.
MISSING = "—"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def fmt_s(seconds: Any, *, significant: bool = False) -> str:
    """A duration in the unit that suits it: ``420 µs``, ``12.3 ms``, ``1.52 s``.

    ``significant``: three significant digits (``12.3 ms``, ``0`` for zero), for axis labels.
    """
    if not _is_number(seconds):
        return MISSING
    if significant and seconds == 0:
        return "0"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms" if significant else f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.3g} s" if significant else f"{seconds:.2f} s"


def fmt_s3(seconds: Any) -> str:
    """:func:`fmt_s` to three significant digits (axis labels, compact tables)."""
    return fmt_s(seconds, significant=True)


def fmt_duration(seconds: float) -> str:
    """A longer wait, read at a glance: ``12.3 s``, ``4 min 5 s``, ``1 h 2 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    return f"{minutes // 60} h {minutes % 60} min"


def fmt_bytes(n: int) -> str:
    """``n`` bytes in decimal units: ``512 B``, ``1.2 kB``, ``3.4 MB``."""
    if n < 1000:
        return f"{n} B"
    size = float(n)
    for unit in ("kB", "MB", "GB", "TB"):
        size /= 1000
        if size < 1000 or unit == "TB":
            break
    return f"{size:.1f} {unit}"


def fmt_ratio(x: Any) -> str:
    """A ratio to two decimals, or a dash where it is undefined (a work ratio over no CPU)."""
    return f"{x:.2f}" if _is_number(x) else MISSING


def fmt_num(value: Any, spec: str = ".2f", suffix: str = "") -> str:
    """``value`` formatted with ``spec``, or a dash where there is no number."""
    return format(value, spec) + suffix if _is_number(value) else MISSING


def fmt_tokens(n: int) -> str:
    """``950``, ``12.3k``."""
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def fmt_rate(limit: int, window_ms: int) -> str:
    """A rate limit: ``5/s``, ``100/min``, ``5000/h``, or ``10/2.5s``."""
    units = {1000: "/s", 60_000: "/min", 3_600_000: "/h"}
    return f"{limit}{units[window_ms]}" if window_ms in units else f"{limit}/{window_ms / 1000:g}s"
