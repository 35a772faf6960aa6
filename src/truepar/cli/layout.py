"""Output that stays readable at any width: CI logs and pipes are 80 columns.

A table prints only where every name in it fits whole (a cell that identifies a row is never
cut to "…") and its free-text columns get room for a phrase, not a word per line; where it
would not, a command prints the same rows as short records instead — the names on one line,
the numbers on the next, each piece of free text on lines of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

#: How wide a free-text column must be for a table to be worth printing.
FREE_TEXT_MIN = 36
INDENT = 4


def _text(console: Console, value: RenderableType) -> Text | None:
    if isinstance(value, Text):
        return value
    if isinstance(value, str):
        return console.render_str(value)
    return None


def _widths(console: Console, value: RenderableType) -> tuple[int, int]:
    """(longest word, longest line) of a cell, in terminal columns."""
    text = _text(console, value)
    if text is None:
        measured = Measurement.get(console, console.options, value)
        return measured.minimum, measured.maximum
    lines = text.plain.splitlines() or [""]
    words = [w for line in lines for w in line.split()] or [""]
    return max(Text(w).cell_len for w in words), max(Text(line).cell_len for line in lines)


def needed_width(console: Console, table: Table, free: Mapping[str, int] | None = None) -> int:
    """The narrowest width at which ``table`` prints with every ``no_wrap`` cell whole and each
    column named in ``free`` (by header) at least that wide (or as wide as its widest cell)."""
    free = free or {}
    # Borders and padding as Rich counts them (its own private helpers, stable for years).
    need = table._extra_width
    for index, column in enumerate(table.columns):
        word = line = 0
        for cell in (column.header, *column.cells):
            w, li = _widths(console, cell)
            word, line = max(word, w), max(line, li)
        header = str(column.header)
        if header in free:
            content = min(line, max(word, free[header]))
        elif column.no_wrap:
            content = line
        else:
            content = word
        if column.max_width is not None:
            content = min(content, column.max_width)
        if column.min_width is not None:
            content = max(content, column.min_width)
        need += content + table._get_padding_width(index)
    return need


def fits(console: Console, table: Table, free: Mapping[str, int] | None = None) -> bool:
    """Whether ``table`` is readable at the console's width (see :func:`needed_width`)."""
    return needed_width(console, table, free) <= console.width


def record(
    console: Console, head: Text | str, lines: Sequence[Text | str], *, hang: int = 0
) -> None:
    """One row as a record: ``head`` (its names) on one line, never broken (a path stays
    whole for copy and grep), then each line indented, wrapped at words.

    ``hang``: where the lines are sentences rather than facts, a line's continuations are
    indented this much deeper than its own start (its leading spaces included), so that where
    one sentence ends and the next begins stays plain to the eye.
    """
    console.print(head, markup=False, soft_wrap=True)
    width = max(20, console.width - INDENT)
    for line in lines:
        text = line if isinstance(line, Text) else Text(line)
        for piece in _hanging(console, text, width, hang) if hang else text.wrap(console, width):
            piece.rstrip()
            console.print(Text.assemble(" " * INDENT, piece))


def _hanging(console: Console, text: Text, width: int, hang: int) -> list[Text]:
    """``text`` wrapped at words: each line's first piece as wide as ``width`` allows, the rest
    ``hang`` deeper than the line's own leading spaces, and that much narrower."""
    out: list[Text] = []
    for line in text.split("\n", allow_blank=True):
        first = line.wrap(console, width)[0]
        out.append(first)
        rest = line[len(first.plain) :]
        if rest.plain.strip():
            deeper = len(line.plain) - len(line.plain.lstrip(" ")) + hang
            narrower = max(20, width - deeper)
            out += [Text.assemble(" " * deeper, p) for p in rest.wrap(console, narrower)]
    return out


def joined(parts: Sequence[Text | str], width: int, sep: str = " · ") -> Text:
    """``parts`` joined by ``sep``, a line broken only between parts (never inside one) where
    the next would pass ``width``."""
    out = Text()
    column = 0
    for i, part in enumerate(parts):
        piece = part if isinstance(part, Text) else Text(part)
        if i:
            if column + len(sep) + piece.cell_len > width:
                out.append("\n")
                column = 0
            else:
                out.append(sep)
                column += len(sep)
        out.append(piece)
        column += piece.cell_len
    return out
