"""Files written so that a crash or Ctrl-C never leaves half of one behind."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | Path, data: bytes, *, mode: int | None = None) -> Path:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it into place.

    ``mode`` is set on the temporary file before its first byte is written (0o600 for a key).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def atomic_write_text(path: str | Path, text: str) -> Path:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def check_writable(path: str | Path, flag: str) -> None:
    """Fail now, with one line, if ``path`` cannot be written — not after minutes of work."""
    from truepar.errors import UsageError

    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{flag} {str(target)!r} is a directory; give a file path")
    parent = target.parent
    for folder in (parent, *parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise UsageError(f"{flag} {str(target)!r}: {str(folder)!r} is not a directory")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise UsageError(f"{flag} {str(target)!r}: cannot write in {str(folder)!r}")
            return


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
