"""Python functions the scenario plans call (``call = "helpers:function"``)."""

from __future__ import annotations

from pathlib import Path


def word_count(path: str) -> dict[str, int]:
    """Lines, words and bytes of a file under the repository, like ``wc``."""
    data = (Path(__file__).resolve().parent.parent / path).read_bytes()
    return {"lines": data.count(b"\n"), "words": len(data.split()), "bytes": len(data)}
