"""Reading a worker sweep from CSV for ``truepar fit``: workers and throughput (or seconds).

Kept apart from the fits (:mod:`truepar.measure.usl`), which take numbers from anywhere.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from truepar.errors import UsageError

__all__ = ("load_measurements",)

_WORKER_NAMES = ("workers", "load")


def load_measurements(path: str | Path) -> tuple[list[float], list[float]]:
    """Read a worker sweep from a CSV file with a header line → (workers, throughput).

    Columns: ``workers`` (``load``, R usl's name, is accepted too) and ``throughput``, or
    ``workers`` and ``seconds``; with seconds, each run is taken to do one unit of work, so
    throughput = 1 / seconds. If both are present, throughput is used. Names are matched without
    regard to case; other columns are ignored; blank lines and lines starting with ``#`` are
    skipped. Repeated worker counts are averaged: throughput by its mean, seconds by their mean
    before inverting (the mean time of a fixed amount of work). Returned sorted by workers.
    Every problem raises :class:`UsageError` naming the file and what to fix.
    """
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{where}: is a directory; give a CSV file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: cannot be read ({exc})") from None
    numbered = [
        (i, line)
        for i, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not numbered:
        raise UsageError(f"{where}: is empty; expected a header line such as workers,throughput")
    rows = list(csv.reader([line for _, line in numbered]))
    header = [h.strip().lower() for h in rows[0]]
    worker_col = next((header.index(n) for n in _WORKER_NAMES if n in header), None)
    if "throughput" in header:
        value_col, value_name = header.index("throughput"), "throughput"
    elif "seconds" in header:
        value_col, value_name = header.index("seconds"), "seconds"
    else:
        value_col, value_name = None, ""
    missing = [
        name
        for name, col in (("workers", worker_col), ("throughput (or seconds)", value_col))
        if col is None
    ]
    if missing or worker_col is None or value_col is None:
        raise UsageError(
            f"{where}: missing column {' and '.join(missing)}; the header has: {', '.join(header)}"
        )
    groups: dict[float, list[float]] = {}
    for (line_no, _), row in zip(numbered[1:], rows[1:], strict=True):
        values: list[float] = []
        for col, name in ((worker_col, header[worker_col]), (value_col, value_name)):
            cell = row[col].strip() if col < len(row) else ""
            try:
                value = float(cell)
            except ValueError:
                shown = repr(cell) if cell else "nothing"
                raise UsageError(
                    f"{where}: line {line_no}: {name} must be a number, not {shown}"
                ) from None
            if not (math.isfinite(value) and value > 0):
                raise UsageError(
                    f"{where}: line {line_no}: {name} must be a positive number, not {cell}"
                )
            values.append(value)
        groups.setdefault(values[0], []).append(values[1])
    if len(groups) < 3:
        raise UsageError(
            f"{where}: a fit needs at least 3 points (distinct worker counts), found {len(groups)}"
        )
    workers = sorted(groups)
    if value_name == "seconds":
        throughput = [1.0 / float(np.mean(groups[w])) for w in workers]
    else:
        throughput = [float(np.mean(groups[w])) for w in workers]
    return workers, throughput
