"""``read`` and ``ls``: the two file tools, confined to the plan's root.

``read`` returns a byte range of one file, capped at ``max_bytes`` so that a stray read of a
huge file cannot flood the run's output. ``ls`` lists a directory, optionally recursively, and
never follows a symlinked directory, so a listing stays inside the root and cannot loop.

Glob semantics (shared with ``grep``'s ``include`` / ``exclude``): globs are ``fnmatch``
patterns, matched case-sensitively. A glob *without* ``/`` matches an entry's base name
(``*.py`` matches ``src/a/b.py``); a glob *with* ``/`` matches the whole relative path, as the
tool reports it, and there ``*`` also crosses ``/`` (``src/*.py`` matches ``src/a/b.py``).
"""

from __future__ import annotations

import codecs
import fnmatch
import heapq
import os
import re
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from truepar.errors import OpError
from truepar.tools.base import DEFAULT_MAX_BYTES, OpBase, Tool, ToolContext, ToolOutput
from truepar.units import fmt_bytes


def _one_or_many(v: Any) -> Any:
    return (v,) if isinstance(v, str) else v


class GlobSet:
    """Globs compiled once: :meth:`match` tests a relative path and its base name.

    A glob with ``/`` is tested against the relative path, one without against the base name.
    """

    __slots__ = ("_name", "_path")

    def __init__(self, globs: Sequence[str]) -> None:
        self._name = _compile([g for g in globs if "/" not in g])
        self._path = _compile([g for g in globs if "/" in g])

    def match(self, rel: str, name: str) -> bool:
        return bool(
            (self._name is not None and self._name.match(name))
            or (self._path is not None and self._path.match(rel))
        )


def _compile(globs: Sequence[str]) -> re.Pattern[str] | None:
    if not globs:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs))


def open_file(path: str | os.PathLike[str]) -> int:
    """Open a file to read without ever blocking: a raw fd, or :class:`OpError` saying why not.

    Opened non-blocking, then checked: a FIFO (which blocks its reader until a writer comes,
    possibly forever), a socket or a character device (a terminal) is refused. Regular files
    and block devices are read as usual (non-blocking has no effect on them).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    mode = os.fstat(fd).st_mode
    if stat.S_ISREG(mode) or stat.S_ISBLK(mode) or stat.S_ISDIR(mode):
        os.set_blocking(fd, True)
        return fd
    os.close(fd)
    kind = (
        "a FIFO"
        if stat.S_ISFIFO(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else ("a character device")
    )
    raise OpError(f"is {kind}, not a regular file: reading it could block forever")


def _check_cancel(ctx: ToolContext, what: str) -> None:
    if ctx.cancelled:
        raise OpError(f"{what} cancelled")


# ----------------------------------------------------------------------------------- read


class ReadOp(OpBase):
    """Read ``length`` bytes (default: all, up to ``max_bytes``) of ``path`` from ``offset``."""

    tool: Literal["read"] = "read"
    path: str
    offset: int = Field(default=0, ge=0)
    length: int | None = Field(default=None, ge=0)
    max_bytes: int = Field(default=DEFAULT_MAX_BYTES, gt=0)
    #: ``None`` returns the raw bytes; otherwise text, undecodable bytes replaced by U+FFFD.
    encoding: str | None = "utf-8"

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                codecs.lookup(v)
            except LookupError:
                raise ValueError(f"unknown encoding {v!r}") from None
        return v

    def implied_reads(self) -> tuple[str, ...]:
        return (self.path,)


def run_read(op: ReadOp, ctx: ToolContext) -> ToolOutput:
    """Read the range; ``truncated`` says ``max_bytes`` cut off data that was there."""
    full = ctx.resolve(op.path)
    # Read one byte past max_bytes when max_bytes is what limits us: that byte tells whether
    # the cap cut something off, even for files whose st_size lies (/proc, pipes).
    capped = op.length is None or op.length > op.max_bytes
    want = op.max_bytes if capped else op.length
    assert want is not None
    try:
        with open(open_file(full), "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if op.offset:
                f.seek(op.offset)
            data = f.read(want + 1 if capped else want)
    except FileNotFoundError:
        raise OpError(f"read {op.path}: no such file") from None
    except IsADirectoryError:
        raise OpError(f"read {op.path}: is a directory (use ls)") from None
    except OpError as e:  # not a regular file
        raise OpError(f"read {op.path}: {e}") from None
    except OSError as e:
        raise OpError(f"read {op.path}: {e.strerror or e}") from e
    truncated = len(data) > want
    if truncated:
        data = data[:want]
    content: str | bytes = data if op.encoding is None else data.decode(op.encoding, "replace")
    value = {
        "path": op.path,
        "size": size,
        "offset": op.offset,
        "bytes_read": len(data),
        "truncated": truncated,
        "content": content,
    }
    summary = f"read {op.path}: {fmt_bytes(len(data))} of {fmt_bytes(size)}"
    if truncated:
        summary += " (truncated)"
    return ToolOutput(value=value, summary=summary, bytes_out=len(data))


READ = Tool("read", ReadOp, run_read)

# ------------------------------------------------------------------------------------- ls


class LsOp(OpBase):
    """List ``path``; ``pattern`` filters what is listed (see the module doc for globs)."""

    tool: Literal["ls"] = "ls"
    path: str = "."
    #: One glob or several (any may match). Recursive listings still descend into
    #: directories that do not match: the pattern filters entries, not the walk.
    pattern: tuple[str, ...] = ("*",)
    recursive: bool = False
    #: Dot-entries are left out, and not descended into, unless this is true.
    include_hidden: bool = False
    max_entries: int = Field(default=10000, gt=0)

    _pattern_one_or_many = field_validator("pattern", mode="before")(_one_or_many)

    def implied_reads(self) -> tuple[str, ...]:
        return (self.path,)


def _kind(entry: os.DirEntry[str]) -> tuple[str, int | None]:
    """An entry's type and size (``None`` for directories), symlinks not followed."""
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError:
        return "other", None
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        return "symlink", st.st_size
    if stat.S_ISDIR(mode):
        return "dir", None
    if stat.S_ISREG(mode):
        return "file", st.st_size
    return "other", st.st_size


def _walk_ls(op: LsOp, top: Path, ctx: ToolContext) -> Iterator[dict[str, Any]]:
    globs = GlobSet(op.pattern)
    stack: list[tuple[str, str]] = [(str(top), "")]
    while stack:
        _check_cancel(ctx, f"ls {op.path}")
        dir_path, prefix = stack.pop()
        try:
            it = os.scandir(dir_path)
        except OSError:
            continue  # unreadable subdirectory: left out, as find does after its warning
        with it:
            for entry in it:
                if not op.include_hidden and entry.name.startswith("."):
                    continue
                rel = prefix + entry.name
                kind, size = _kind(entry)
                if op.recursive and kind == "dir":
                    stack.append((entry.path, rel + "/"))
                if globs.match(rel, entry.name):
                    yield {"name": rel, "type": kind, "size": size}


def run_ls(op: LsOp, ctx: ToolContext) -> ToolOutput:
    """List entries sorted by name; keep the first ``max_entries`` in O(max_entries) memory."""
    top = ctx.resolve(op.path)
    if not top.exists():
        raise OpError(f"ls {op.path}: no such directory")
    if not top.is_dir():
        raise OpError(f"ls {op.path}: not a directory")
    kept = heapq.nsmallest(op.max_entries + 1, _walk_ls(op, top, ctx), key=lambda e: e["name"])
    truncated = len(kept) > op.max_entries
    entries = kept[: op.max_entries]
    counts: dict[str, int] = {}
    for e in entries:
        counts[e["type"]] = counts.get(e["type"], 0) + 1
    parts = [f"{counts.get('file', 0)} files", f"{counts.get('dir', 0)} dirs"]
    parts += [f"{counts[k]} {k}s" for k in ("symlink", "other") if counts.get(k)]
    summary = f"ls {op.path}: {', '.join(parts)}" + (" (truncated)" if truncated else "")
    bytes_out = sum(len(e["name"].encode("utf-8", "surrogateescape")) + 1 for e in entries)
    value = {"path": op.path, "entries": entries, "truncated": truncated}
    return ToolOutput(value=value, summary=summary, bytes_out=bytes_out)


LS = Tool("ls", LsOp, run_ls)
