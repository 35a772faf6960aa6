"""``grep``: search files under a path for a regular expression, fast.

Speed matters (agents grep whole trees), so the work stays in C: the tree is walked with
``os.scandir``, each file is read whole as bytes and searched with one compiled bytes regex;
only matching lines cost Python work (their line number is a ``bytes.count`` of newlines since
the previous match). A regex with no match in a file costs one ``search`` over its buffer.

Walking never follows symlinks (neither to files nor to directories, as ``grep -r``), so the
search stays inside the plan's root. ``include`` / ``exclude`` use the globs of
:mod:`truepar.tools.files`; reported paths are relative to the plan root, so they can be fed to
``read`` as they are.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from truepar.errors import OpError
from truepar.tools.base import OpBase, Tool, ToolContext, ToolOutput
from truepar.tools.files import GlobSet, open_file

#: Files with a NUL byte in this many leading bytes count as binary.
BINARY_SNIFF_BYTES = 8192


def _one_or_many(v: Any) -> Any:
    return (v,) if isinstance(v, str) else v


class GrepOp(OpBase):
    """Search ``path`` (a file or a directory tree) for the Python regex ``pattern``.

    ``^`` and ``$`` match at line boundaries. The regex runs on bytes (files are not decoded):
    ASCII classes such as ``\\w`` and ``ignore_case`` apply to ASCII only, and a non-ASCII
    literal matches its UTF-8 encoding.
    """

    tool: Literal["grep"] = "grep"
    pattern: str
    path: str = "."
    #: Only files matching one of these globs are searched (all files when empty).
    include: tuple[str, ...] = ()
    #: Files and directories matching one of these are skipped (directories pruned).
    exclude: tuple[str, ...] = ()
    ignore_case: bool = False
    max_matches: int = Field(default=1000, gt=0)
    #: Longer lines are cut to this many bytes in the reported ``text``.
    max_line_bytes: int = Field(default=500, gt=0)
    #: Larger files are skipped.
    max_file_bytes: int = Field(default=10 << 20, gt=0)
    #: Search files that look binary (a NUL byte in their first 8 KiB) too.
    binary: bool = False

    _globs_one_or_many = field_validator("include", "exclude", mode="before")(_one_or_many)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v.encode("utf-8"), re.MULTILINE)
        except re.error as e:
            raise ValueError(f"invalid regular expression {v!r}: {e}") from None
        return v

    def implied_reads(self) -> tuple[str, ...]:
        return (self.path,)

    def regex(self) -> re.Pattern[bytes]:
        flags = re.MULTILINE | (re.IGNORECASE if self.ignore_case else 0)
        return re.compile(self.pattern.encode("utf-8"), flags)


def scan_buffer(
    regex: re.Pattern[bytes], buf: bytes, limit: int, max_line_bytes: int
) -> list[tuple[int, str]]:
    """Up to ``limit`` matching lines of ``buf`` as ``(line number from 1, text)``.

    Each line is reported once, however many matches it holds; a match spanning lines is
    reported on the line it starts in.
    """
    out: list[tuple[int, str]] = []
    lineno = 1
    counted_to = 0
    pos = 0
    n = len(buf)
    while len(out) < limit and pos < n:
        m = regex.search(buf, pos)
        if m is None:
            break
        start = m.start()
        if start == n and buf[n - 1] == 0x0A:
            break  # an empty match after the final newline: no line is there
        lineno += buf.count(b"\n", counted_to, start)
        line_start = buf.rfind(b"\n", 0, start) + 1
        line_end = buf.find(b"\n", start)
        if line_end == -1:
            line_end = n
        counted_to = start
        text = buf[line_start : min(line_end, line_start + max_line_bytes)]
        out.append((lineno, text.rstrip(b"\r").decode("utf-8", "replace")))
        pos = line_end + 1  # the next line: one report per line
    return out


def _files(op: GrepOp, top: Path, root: Path, ctx: ToolContext) -> Iterator[tuple[str, str]]:
    """``(os path, root-relative path)`` of each file to search, in a stable order.

    Symlinks are never followed; a directory or file matching ``exclude`` is skipped.
    """
    include = GlobSet(op.include) if op.include else None
    exclude = GlobSet(op.exclude)
    top_rel = top.relative_to(root).as_posix()
    stack = [(str(top), "" if top_rel == "." else top_rel + "/")]
    while stack:
        if ctx.cancelled:
            raise OpError(f"grep {op.path}: cancelled")
        d, prefix = stack.pop()
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        subdirs: list[tuple[str, str]] = []
        for entry in entries:
            rel = prefix + entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not exclude.match(rel, entry.name):
                        subdirs.append((entry.path, rel + "/"))
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue  # symlinks, sockets, fifos: never opened
            except OSError:
                continue
            if exclude.match(rel, entry.name):
                continue
            if include is not None and not include.match(rel, entry.name):
                continue
            yield entry.path, rel
        stack.extend(reversed(subdirs))


def _read(os_path: str, op: GrepOp) -> bytes | None:
    """The file's bytes, or ``None`` when it is to be skipped (too large, binary, unreadable)."""
    try:
        with open(open_file(os_path), "rb", buffering=0) as f:
            if os.fstat(f.fileno()).st_size > op.max_file_bytes:
                return None
            buf = f.readall()
    except (OSError, OpError):  # unreadable, or not a regular file (a FIFO could block)
        return None
    if not op.binary and buf.find(b"\0", 0, BINARY_SNIFF_BYTES) != -1:
        return None
    return buf


def run_grep(op: GrepOp, ctx: ToolContext) -> ToolOutput:
    """Search and collect up to ``max_matches`` matching lines; ``truncated`` if more exist."""
    top = ctx.resolve(op.path)
    root = ctx.root.resolve()
    if not top.exists():
        raise OpError(f"grep {op.path}: no such file or directory")
    if top.is_dir():
        files: Iterator[tuple[str, str]] = _files(op, top, root, ctx)
    else:
        files = iter([(str(top), top.relative_to(root).as_posix())])
    regex = op.regex()
    matches: list[dict[str, Any]] = []
    scanned = matched_files = skipped = 0
    truncated = False
    for os_path, rel in files:
        buf = _read(os_path, op)
        if buf is None:
            skipped += 1
            continue
        scanned += 1
        room = op.max_matches - len(matches)
        found = scan_buffer(regex, buf, room + 1, op.max_line_bytes)
        if len(found) > room:
            found = found[:room]
            truncated = True
        if found:
            matched_files += 1
            matches.extend({"path": rel, "line": ln, "text": text} for ln, text in found)
        if truncated:
            break
    bytes_out = sum(
        len(f"{m['path']}:{m['line']}:{m['text']}\n".encode("utf-8", "surrogateescape"))
        for m in matches
    )
    value = {
        "matches": matches,
        "files_scanned": scanned,
        "files_matched": matched_files,
        "files_skipped": skipped,
        "truncated": truncated,
    }
    summary = (
        f"grep {op.pattern!r} in {op.path}: {len(matches)} matches in {matched_files} files"
        f" ({scanned} scanned)" + (" (truncated)" if truncated else "")
    )
    return ToolOutput(value=value, summary=summary, bytes_out=bytes_out)


GREP = Tool("grep", GrepOp, run_grep)
