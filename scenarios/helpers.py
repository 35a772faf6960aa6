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
    with (Path(__file__).resolve().parent.parent / path).open("rb") as f:
        while block := f.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()
