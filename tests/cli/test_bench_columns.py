"""``bench`` and ``compare`` read in an 80-column CI log: every row says which configuration it is.

Rich shrinks a table that is too wide by cutting every column short: rows read "threads,
threads, threads" with no worker count, and "concurre…". Here the tables are printed as a pipe
prints them, at ``COLUMNS=80``, and each row must still carry its backend, its worker count and
its verdict whole.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers.cli import truepar

BACKENDS = ("threads", "processes", "async")
WORKERS = (1, 2, 16)


def sleeps_plan(tmp_path: Path) -> Path:
    ops = "".join(f'\n[[op]]\nid = "s{i}"\ntool = "sleep"\nseconds = 0.01\n' for i in range(4))
    path = tmp_path / "sleeps.toml"
    path.write_text(f'name = "sleeps"\n{ops}')
    return path


@pytest.fixture(scope="module")
def benched(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    tmp = tmp_path_factory.mktemp("columns")
    evidence = tmp / "bench.json"
    proc = truepar(
        "bench", str(sleeps_plan(tmp)), "--backends", ",".join(BACKENDS),
        "--workers", ",".join(map(str, WORKERS)), "--repeat", "1", "--warmup", "0",
        "--evidence", str(evidence), "--keys", str(tmp / "no-keys"), columns=80,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, evidence


def rows(stdout: str) -> list[str]:
    """The table's rows: the lines that start with a backend's name and a column gap (the
    reasons below the table start with ``threads ×2``)."""
    return [line for line in stdout.splitlines() if re.match(rf"({'|'.join(BACKENDS)})  ", line)]


def test_every_bench_row_names_its_backend_and_worker_count_at_80_columns(
    benched: tuple[str, Path],
) -> None:
    stdout, _ = benched
    table = rows(stdout)
    measured = {(b, w) for b in BACKENDS for w in WORKERS}
    found = set()
    for line in table:
        assert len(line) <= 80, line
        m = re.match(r"(\w+) +(\d+) ", line)
        assert m is not None, f"no worker count on the row: {line!r}"
        found.add((m.group(1), int(m.group(2))))
        assert re.search(r"(parallel|concurrent|serialized|suspect)\s*$", line), line
    assert found == measured, table
    assert "…" not in "\n".join(table)
    assert "left out to fit 80 columns: eff." in stdout  # said, not silently lost


def test_the_bench_table_is_whole_on_a_wide_console(tmp_path: Path) -> None:
    plan = sleeps_plan(tmp_path)
    proc = truepar(
        "bench", str(plan), "--backends", "threads", "--workers", "2", "--repeat", "1",
        "--warmup", "0", "--no-evidence", columns=160,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    header = next(line for line in proc.stdout.splitlines() if line.startswith("backend"))
    for heading in ("W", "wall", "speedup [95% CI]", "eff.", "cores", "work R", "bound"):
        assert heading in header
    assert "left out" not in proc.stdout


def test_compare_rows_keep_their_configuration_whole_at_80_columns(
    benched: tuple[str, Path],
) -> None:
    _, evidence = benched
    proc = truepar("compare", str(evidence), str(evidence), columns=80)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    labels = re.findall(r"^(\w+ ×\d+) ", proc.stdout, flags=re.MULTILINE)
    assert {"threads ×16", "processes ×16", "async ×2"} <= set(labels), proc.stdout
    assert "…" not in proc.stdout
    table = [line for line in proc.stdout.splitlines() if re.match(r"\w+ ×\d+ ", line)]
    assert len(table) == 10 and all(len(line) <= 80 for line in table), table
