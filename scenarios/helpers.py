"""Python functions the scenario plans call (``call = "helpers:function"``)."""

from __future__ import annotations

from pathlib import Path


def word_count(path: str) -> dict[str, int]:
    """Lines, words and bytes of a file under the repository, like ``wc``."""
    data = (Path(__file__).resolve().parent.parent / path).read_bytes()
    return {"lines": data.count(b"\n"), "words": len(data.split()), "bytes": len(data)}


def make_files(folder: str = ".truepar/data", count: int = 8, mib: int = 16) -> list[str]:
    """Generate ``count`` files of ``mib`` MiB of seeded pseudo-random bytes, once.

    Deterministic (same bytes every time), so their hashes are the same on every run and
    every machine; a file already of the right size is left alone.
    """
    import random

    root = Path(__file__).resolve().parent.parent
    out = root / folder
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        path = out / f"file-{k}.bin"
        if not path.exists() or path.stat().st_size != mib << 20:
            rng = random.Random(k)
            tmp = path.with_suffix(".tmp")
            with tmp.open("wb") as f:
                for _ in range(mib):
                    f.write(rng.randbytes(1 << 20))
            tmp.replace(path)
        paths.append(str(path.relative_to(root)))
    return paths


def sha256_file(path: str) -> str:
    """SHA-256 of a file under the repository, read in 8 MiB blocks (hashlib releases the GIL)."""
    import hashlib

    digest = hashlib.sha256()
    buffer = bytearray(8 << 20)  # one buffer, reused: no allocation noise in the timings
    view = memoryview(buffer)
    with (Path(__file__).resolve().parent.parent / path).open("rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


def make_corpus(folder: str = ".truepar/corpus") -> int:
    """Copy this machine's Python standard library sources (``*.py``, no site-packages) once.

    A real corpus for the mixed-tools scenario, inside the repository so the file tools may
    read it (they cannot leave the plan's root). Returns the number of files.
    """
    import shutil
    import sysconfig

    source = Path(sysconfig.get_paths()["stdlib"])
    target = Path(__file__).resolve().parent.parent / folder
    done = target / ".complete"
    if not done.exists():
        if target.exists():
            shutil.rmtree(target)

        def skip(directory: str, names: list[str]) -> list[str]:
            return [
                n
                for n in names
                if n in ("site-packages", "__pycache__")
                or not (n.endswith(".py") or (Path(directory) / n).is_dir())
            ]

        shutil.copytree(source, target, ignore=skip, symlinks=False)
        done.write_text(str(source))
    return sum(1 for _ in target.rglob("*.py"))


def count_tokens(folder: str) -> dict[str, int]:
    """Tokenize every ``*.py`` under ``folder`` (in the repository); count tokens by kind.

    Pure-Python CPU work on real code (``tokenize`` is written in Python on 3.11): what an
    agent's "understand this package" step costs. (Not ``ast.parse``: CPython 3.11 can fail
    with "AST constructor recursion depth mismatch" when threads parse at the same time —
    truepar's bench caught that, as ops failing only on threads.)
    """
    import collections
    import io
    import token
    import tokenize

    counts: collections.Counter[str] = collections.Counter()
    for path in sorted((Path(__file__).resolve().parent.parent / folder).rglob("*.py")):
        try:
            tokens = tokenize.tokenize(io.BytesIO(path.read_bytes()).readline)
            counts.update(token.tok_name[t.type] for t in tokens)
        except (tokenize.TokenError, SyntaxError):
            continue
    return dict(counts.most_common(10))


if __name__ == "__main__":
    files, corpus = len(make_files()), make_corpus()
    print(
        f"data: {files} generated files and a {corpus}-file corpus under .truepar/ (made once, reused)"
    )
