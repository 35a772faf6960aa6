"""Files written so that a crash or Ctrl-C never leaves half of one behind."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, fsync it, then rename it into place."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


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
