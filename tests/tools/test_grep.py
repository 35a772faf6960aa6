"""The ``grep`` tool on real trees in a temporary root."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from truepar.errors import ConfinementError, OpError
from truepar.tools.base import ToolContext
from truepar.tools.grep import GREP, GrepOp


def _grep(root: Path, **kw: Any) -> dict[str, Any]:
    out = GREP.run(GrepOp(id="g", **kw), ToolContext(root=root, plan_dir=root))
    return out.value  # type: ignore[no-any-return]


def _hits(v: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [(m["path"], m["line"], m["text"]) for m in v["matches"]]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    (tmp_path / "src" / "main.py").write_text("import os\n\ndef main():\n    pass\n")
    (tmp_path / "src" / "pkg" / "util.py").write_text("def helper():\n    return 1\n")
    (tmp_path / "src" / "pkg" / "util.pyc").write_bytes(b"def main compiled")
    (tmp_path / "README.md").write_text("Run DEF MAIN to start.\r\n")
    (tmp_path / ".git" / "HEAD").write_text("def main in git\n")
    return tmp_path


def test_line_numbers_and_paths(tree: Path) -> None:
    out = GREP.run(GrepOp(id="g", pattern=r"def \w+"), ToolContext(root=tree, plan_dir=tree))
    assert _hits(out.value) == [
        (".git/HEAD", 1, "def main in git"),
        ("src/main.py", 3, "def main():"),
        ("src/pkg/util.py", 1, "def helper():"),
        ("src/pkg/util.pyc", 1, "def main compiled"),
    ]
    assert out.value["files_scanned"] == 5
    assert out.value["files_matched"] == 4
    assert out.value["truncated"] is False
    assert out.summary == "grep 'def \\\\w+' in .: 4 matches in 4 files (5 scanned)"
    lines = "".join(f"{p}:{n}:{t}\n" for p, n, t in _hits(out.value))
    assert out.bytes_out == len(lines.encode())


def test_include_exclude(tree: Path) -> None:
    v = _grep(tree, pattern="def main", exclude=["*.pyc", ".git"])
    assert _hits(v) == [("src/main.py", 3, "def main():")]
    assert v["files_scanned"] == 3  # .git pruned, .pyc skipped, before reading
    v = _grep(tree, pattern="def", include=["*.py"])
    assert [p for p, _, _ in _hits(v)] == ["src/main.py", "src/pkg/util.py"]
    # A glob with "/" matches the root-relative path.
    v = _grep(tree, pattern="def", include=["src/pkg/*"], exclude=["*.pyc"])
    assert [p for p, _, _ in _hits(v)] == ["src/pkg/util.py"]
    # A subdirectory as path: reported paths stay root-relative.
    assert [p for p, _, _ in _hits(_grep(tree, pattern="return", path="src/pkg"))] == [
        "src/pkg/util.py"
    ]


def test_ignore_case_and_crlf(tree: Path) -> None:
    assert _grep(tree, pattern="def main", include=["*.md"])["matches"] == []
    v = _grep(tree, pattern="def main", include=["*.md"], ignore_case=True)
    assert _hits(v) == [("README.md", 1, "Run DEF MAIN to start.")]  # no trailing \r


def test_single_file_path(tree: Path) -> None:
    v = _grep(tree, pattern="pass", path="src/main.py")
    assert _hits(v) == [("src/main.py", 4, "    pass")]
    assert v["files_scanned"] == 1


def test_max_matches(tmp_path: Path) -> None:
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text("hit\nhit\nmiss\nhit\n")
    v = _grep(tmp_path, pattern="hit", max_matches=5)
    assert _hits(v) == [
        ("a.txt", 1, "hit"),
        ("a.txt", 2, "hit"),
        ("a.txt", 4, "hit"),
        ("b.txt", 1, "hit"),
        ("b.txt", 2, "hit"),
    ]
    assert v["truncated"] is True
    assert v["files_matched"] == 2
    # Exactly as many matches as allowed: not truncated.
    v = _grep(tmp_path, pattern="hit", max_matches=9)
    assert (len(v["matches"]), v["truncated"]) == (9, False)
    # Exactly the cap reached in one file, more in the next: truncated, next not counted.
    v = _grep(tmp_path, pattern="hit", max_matches=3)
    assert (len(v["matches"]), v["truncated"], v["files_matched"]) == (3, True, 1)


def test_one_report_per_line_and_long_lines(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("ab ab ab\n" + "x" * 2000 + "ab\n")
    v = _grep(tmp_path, pattern="ab", max_line_bytes=10)
    assert _hits(v) == [("f.txt", 1, "ab ab ab"), ("f.txt", 2, "x" * 10)]


def test_binary_skipped_unless_asked(tmp_path: Path) -> None:
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01needle\x02")
    (tmp_path / "text.txt").write_text("needle\n")
    v = _grep(tmp_path, pattern="needle")
    assert [p for p, _, _ in _hits(v)] == ["text.txt"]
    assert (v["files_scanned"], v["files_skipped"]) == (1, 1)
    v = _grep(tmp_path, pattern="needle", binary=True)
    assert [p for p, _, _ in _hits(v)] == ["blob.bin", "text.txt"]


def test_max_file_bytes_skips_large_files(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("needle\n" + "x" * 5000)
    (tmp_path / "small.txt").write_text("needle\n")
    v = _grep(tmp_path, pattern="needle", max_file_bytes=1000)
    assert [p for p, _, _ in _hits(v)] == ["small.txt"]
    assert v["files_skipped"] == 1


def test_symlinks_not_followed_and_confined(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("needle\n")
    (root / "in.txt").write_text("needle\n")
    (root / "dirlink").symlink_to(tmp_path / "outside", target_is_directory=True)
    (root / "filelink.txt").symlink_to(tmp_path / "outside" / "secret.txt")
    (root / "loop").symlink_to(root, target_is_directory=True)
    v = _grep(root, pattern="needle")
    assert _hits(v) == [("in.txt", 1, "needle")]
    with pytest.raises(ConfinementError):
        _grep(root, pattern="needle", path="dirlink")
    with pytest.raises(ConfinementError):
        _grep(root, pattern="needle", path="..")


def test_bad_regex_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="invalid regular expression"):
        GrepOp(id="g", pattern="(unclosed")


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(OpError, match="no such file"):
        _grep(tmp_path, pattern="x", path="nope")


def test_many_files(tmp_path: Path) -> None:
    """3000 files in 30 directories: exact counts, and fast."""
    for d in range(30):
        sub = tmp_path / f"d{d:02}"
        sub.mkdir()
        for f in range(100):
            n = d * 100 + f
            body = f"line one\nvalue = {n}\n" + ("TARGET here\n" if n % 7 == 0 else "")
            (sub / f"f{f:03}.py").write_text(body)
    t0 = time.perf_counter()
    v = _grep(tmp_path, pattern="^TARGET", max_matches=100_000)
    elapsed = time.perf_counter() - t0
    expected = sum(1 for n in range(3000) if n % 7 == 0)
    assert v["files_scanned"] == 3000
    assert v["files_matched"] == expected == len(v["matches"])
    assert {m["line"] for m in v["matches"]} == {3}
    assert v["matches"][1]["path"] == "d00/f007.py"
    assert elapsed < 3.0


_PATTERNS = ["a", "ab", "^a", "b$", "^$", "a+b", "a.b", "[bc]c", "^(a|c)*$", "x"]


def _naive(pattern: str, buf: bytes) -> list[tuple[int, str]]:
    regex = re.compile(pattern.encode())
    lines = buf.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the text after a final newline is no line
    return [(i, ln.decode()) for i, ln in enumerate(lines, 1) if regex.search(ln)]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(buf=st.text(alphabet="abc\n", max_size=60), pattern=st.sampled_from(_PATTERNS))
def test_line_numbers_match_naive_loop(tmp_path: Path, buf: str, pattern: str) -> None:
    (tmp_path / "f.txt").write_text(buf)
    v = _grep(tmp_path, pattern=pattern, max_matches=1000)
    got = [(m["line"], m["text"]) for m in v["matches"]]
    assert got == _naive(pattern, buf.encode())
