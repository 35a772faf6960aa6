"""Where evidence goes when no path is given: truepar's data folder.

``run``, ``bench``, ``prove`` and ``swarm`` write one evidence file each time, and record it in the
ledger: ``--evidence PATH`` and ``--ledger PATH`` choose where, ``--no-evidence`` turns both off.
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

__all__ = ("data_dir", "default_evidence_dir", "default_ledger_path", "new_evidence_file")


def data_dir() -> Path:
    """``$XDG_DATA_HOME/truepar``, else ``~/.local/share/truepar``."""
    xdg = os.environ.get("XDG_DATA_HOME")
    # The XDG spec says a relative value is invalid and must be ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "truepar"


def default_ledger_path() -> Path:
    """``$TRUEPAR_LEDGER``, else the data folder's ``ledger.sqlite``."""
    explicit = os.environ.get("TRUEPAR_LEDGER")
    return Path(explicit).expanduser() if explicit else data_dir() / "ledger.sqlite"


def default_evidence_dir() -> Path:
    """``$TRUEPAR_EVIDENCE_DIR``, else the data folder's ``evidence/``."""
    explicit = os.environ.get("TRUEPAR_EVIDENCE_DIR")
    return Path(explicit).expanduser() if explicit else data_dir() / "evidence"


def new_evidence_file(kind: str, name: str, *, now: datetime | None = None) -> Path:
    """A new file name in :func:`default_evidence_dir`: UTC time, kind, plan, a random tail.

    Sorted by name, the files are in time order; the tail keeps two runs of one second apart.
    """
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:48] or "plan"
    return default_evidence_dir() / f"{stamp}-{kind}-{slug}-{secrets.token_hex(3)}.json"
