"""Files written so that a crash or Ctrl-C never leaves half of one behind."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from truepar.errors import UsageError


def atomic_write_bytes(path: str | Path, data: bytes, *, mode: int | None = None) -> Path:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it into place.

    ``mode`` is set on the temporary file before its first byte is written (0o600 for a key);
    by default the file gets what ``open()`` would give it (0o666 less the umask), not the
    0o600 of a temporary file: a report or evidence is meant to be read by others.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise UsageError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, mode if mode is not None else 0o666 & ~_umask())
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


def _umask() -> int:
    """The process umask, read without changing it (``os.umask`` would, for a moment, for
    every thread); 0o022 where ``/proc`` does not say."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def atomic_write_text(path: str | Path, text: str) -> Path:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def check_writable(path: str | Path, flag: str) -> None:
    """Fail now, with one line, if ``path`` cannot be written — not after minutes of work."""

    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{flag} {str(target)!r} is a directory; give a file path")
    check_can_create(target.parent, f"{flag} {str(target)!r}")


def check_can_create(folder: Path, label: str) -> None:
    """Fail now, with one line, if files cannot be made in ``folder`` (or, where it does not
    exist yet, in the folder that would hold it): tried for real, with a file made and removed
    — permission bits do not tell (``/proc`` says root may write, and no one can)."""
    for existing in (folder, *folder.parents):
        if not existing.exists():
            continue
        if not existing.is_dir():
            raise UsageError(f"{label}: {str(existing)!r} is not a directory")
        try:
            fd, probe = tempfile.mkstemp(prefix=".truepar-check-", dir=existing)
        except OSError as exc:
            raise UsageError(
                f"{label}: cannot write in {str(existing)!r}: {exc.strerror or exc}"
            ) from None
        os.close(fd)
        os.unlink(probe)
        return


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_bounded(
    path: Path,
    limit: int,
    fail: Callable[[str], Exception],
    *,
    missing: str,
    unreadable: str,
    not_this: str,
) -> bytes:
    """``path``'s bytes, refusing a file over ``limit`` bytes without reading more than that
    (``/dev/zero`` would fill the memory). Every failure raises ``fail(why)``, one line:
    ``missing`` when there is no such file, ``unreadable: <the OS's reason>`` when it cannot be
    read, ``larger than N MiB: <not_this>`` when it is too large."""
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise fail(missing) from None
    except OSError as exc:
        raise fail(f"{unreadable}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise fail(f"larger than {limit >> 20} MiB: {not_this}")
    return data
