"""The ``read`` and ``ls`` tools on real files in a temporary root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from truepar.errors import ConfinementError, OpError
from truepar.tools.base import ToolContext
from truepar.tools.files import LS, READ, LsOp, ReadOp, fmt_bytes


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(root=tmp_path, plan_dir=tmp_path)


def _read(ctx: ToolContext, **kw: object) -> dict[str, object]:
    out = READ.run(ReadOp(id="r", **kw), ctx)
    assert out.bytes_out == out.value["bytes_read"]
    return out.value  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------------- read


def test_read_whole_file(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("héllo\nworld\n", encoding="utf-8")
    out = READ.run(ReadOp(id="r", path="a.txt"), ctx)
    assert out.value == {
        "path": "a.txt",
        "size": 13,
        "offset": 0,
        "bytes_read": 13,
        "truncated": False,
        "content": "héllo\nworld\n",
    }
    assert out.summary == "read a.txt: 13 B of 13 B"
    assert out.bytes_out == 13
    assert ReadOp(id="r", path="a.txt").implied_reads() == ("a.txt",)


def test_read_byte_range(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "d.txt").write_bytes(b"0123456789")
    v = _read(ctx, path="d.txt", offset=3, length=4)
    assert (v["content"], v["bytes_read"], v["size"], v["truncated"]) == ("3456", 4, 10, False)
    # A range running past the end returns what is there; past the end, nothing.
    assert _read(ctx, path="d.txt", offset=8, length=100)["content"] == "89"
    assert _read(ctx, path="d.txt", offset=50)["content"] == ""


def test_read_max_bytes_truncates(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_bytes(b"x" * 5000)
    out = READ.run(ReadOp(id="r", path="big.txt", max_bytes=1000), ctx)
    assert out.value["bytes_read"] == 1000
    assert out.value["truncated"] is True
    assert out.summary == "read big.txt: 1.0 kB of 5.0 kB (truncated)"
    # Exactly max_bytes left: nothing was cut off.
    assert _read(ctx, path="big.txt", offset=4000, max_bytes=1000)["truncated"] is False
    # A length under max_bytes is the user's choice, not a truncation.
    v = _read(ctx, path="big.txt", length=10, max_bytes=1000)
    assert (v["bytes_read"], v["truncated"]) == (10, False)
    # A length over max_bytes is capped, and says so.
    v = _read(ctx, path="big.txt", length=2000, max_bytes=1000)
    assert (v["bytes_read"], v["truncated"]) == (1000, True)


def test_read_binary_and_undecodable(ctx: ToolContext, tmp_path: Path) -> None:
    blob = bytes(range(256))
    (tmp_path / "b.bin").write_bytes(blob)
    assert _read(ctx, path="b.bin", encoding=None)["content"] == blob
    text = _read(ctx, path="b.bin")["content"]
    assert isinstance(text, str)
    assert "\ufffd" in text
    assert text[:3] == "\x00\x01\x02"


def test_read_bad_encoding_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="unknown encoding"):
        ReadOp(id="r", path="a", encoding="no-such-codec")
    with pytest.raises(ValidationError):
        ReadOp(id="r", path="a", offset=-1)
    with pytest.raises(ValidationError):
        ReadOp(id="r", path="a", max_bytes=0)


def test_read_missing_and_directory(ctx: ToolContext, tmp_path: Path) -> None:
    with pytest.raises(OpError, match="no such file"):
        READ.run(ReadOp(id="r", path="nope.txt"), ctx)
    (tmp_path / "sub").mkdir()
    with pytest.raises(OpError, match="is a directory"):
        READ.run(ReadOp(id="r", path="sub"), ctx)


def test_read_confined(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("s3cret")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    ctx = ToolContext(root=root, plan_dir=root)
    for path in ("../secret.txt", "link.txt", str(tmp_path / "secret.txt")):
        with pytest.raises(ConfinementError):
            READ.run(ReadOp(id="r", path=path), ctx)
    # A symlink that stays inside the root is fine.
    (root / "in.txt").write_text("ok")
    (root / "in-link.txt").symlink_to(root / "in.txt")
    assert _read(ctx, path="in-link.txt")["content"] == "ok"


def test_fmt_bytes() -> None:
    assert [fmt_bytes(n) for n in (0, 999, 1000, 1234, 3_400_000, 5 * 10**9)] == [
        "0 B",
        "999 B",
        "1.0 kB",
        "1.2 kB",
        "3.4 MB",
        "5.0 GB",
    ]


# ------------------------------------------------------------------------------------- ls


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/{a.py, b.txt, .hidden, .git/config, src/{m.py, sub/deep.py}, outside-link -> ..}"""
    root = tmp_path / "root"
    (root / "src" / "sub").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "a.py").write_text("print(1)\n")
    (root / "b.txt").write_text("hello")
    (root / ".hidden").write_text("")
    (root / ".git" / "config").write_text("[core]\n")
    (root / "src" / "m.py").write_text("")
    (root / "src" / "sub" / "deep.py").write_text("x = 1\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "leak.py").write_text("")
    return root


def _ls(root: Path, **kw: object) -> list[tuple[str, str]]:
    out = LS.run(LsOp(id="l", **kw), ToolContext(root=root, plan_dir=root))
    return [(e["name"], e["type"]) for e in out.value["entries"]]


def test_ls_flat(tree: Path) -> None:
    out = LS.run(LsOp(id="l"), ToolContext(root=tree, plan_dir=tree))
    assert out.value["entries"] == [
        {"name": "a.py", "type": "file", "size": 9},
        {"name": "b.txt", "type": "file", "size": 5},
        {"name": "src", "type": "dir", "size": None},
    ]
    assert out.value["truncated"] is False
    assert out.summary == "ls .: 2 files, 1 dirs"
    assert out.bytes_out == len("a.py\nb.txt\nsrc\n")


def test_ls_hidden(tree: Path) -> None:
    names = [n for n, _ in _ls(tree, include_hidden=True)]
    assert names == [".git", ".hidden", "a.py", "b.txt", "src"]
    assert ".git/config" in [n for n, _ in _ls(tree, include_hidden=True, recursive=True)]
    assert ".git/config" not in [n for n, _ in _ls(tree, recursive=True)]


def test_ls_recursive_and_patterns(tree: Path) -> None:
    assert _ls(tree, recursive=True) == [
        ("a.py", "file"),
        ("b.txt", "file"),
        ("src", "dir"),
        ("src/m.py", "file"),
        ("src/sub", "dir"),
        ("src/sub/deep.py", "file"),
    ]
    # A glob without "/" matches base names, at any depth.
    assert [n for n, _ in _ls(tree, recursive=True, pattern="*.py")] == [
        "a.py",
        "src/m.py",
        "src/sub/deep.py",
    ]
    # A glob with "/" matches the relative path; several globs: any may match.
    assert [n for n, _ in _ls(tree, recursive=True, pattern=["src/sub/*", "*.txt"])] == [
        "b.txt",
        "src/sub/deep.py",
    ]
    assert _ls(tree, path="src", pattern="*.py") == [("m.py", "file")]


def test_ls_symlinked_dir_not_followed(tree: Path) -> None:
    (tree / "out").symlink_to(tree.parent / "elsewhere", target_is_directory=True)
    (tree / "loop").symlink_to(tree, target_is_directory=True)
    entries = _ls(tree, recursive=True)
    assert ("out", "symlink") in entries
    assert ("loop", "symlink") in entries
    assert not any(n.startswith(("out/", "loop/")) for n, _ in entries)
    # Listing through the link itself leaves the root: refused.
    with pytest.raises(ConfinementError):
        _ls(tree, path="out")
    with pytest.raises(ConfinementError):
        _ls(tree, path="..")


def test_ls_max_entries_keeps_the_first_names(tree: Path) -> None:
    for i in range(20):
        (tree / "src" / f"f{i:02}.txt").write_text("")
    out = LS.run(LsOp(id="l", path="src", max_entries=5), ToolContext(root=tree, plan_dir=tree))
    assert [e["name"] for e in out.value["entries"]] == [f"f{i:02}.txt" for i in range(5)]
    assert out.value["truncated"] is True
    assert out.summary.endswith("(truncated)")


def test_ls_errors(tree: Path) -> None:
    with pytest.raises(OpError, match="no such directory"):
        _ls(tree, path="missing")
    with pytest.raises(OpError, match="not a directory"):
        _ls(tree, path="a.py")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs mkfifo")
def test_ls_other_type(tree: Path) -> None:
    os.mkfifo(tree / "pipe")
    assert ("pipe", "other") in _ls(tree)
