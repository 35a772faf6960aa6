"""The ledger's hash chain catches edits and deletions, and survives concurrent writers."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import multiprocessing
import sqlite3
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from truepar import UsageError
from truepar.evidence.ledger import GENESIS_HASH, Ledger, default_ledger_path

WORKERS = 8
PER_WORKER = 25


def _evidence_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _append(ledger: Ledger, n: int, *, who: str = "main") -> None:
    for i in range(n):
        ledger.append(
            _evidence_hash(f"{who}-{i}"),
            kind="bench",
            plan="plan.toml",
            signer="alice",
            summary={"speedup": 1.5 + i, "who": who, "i": i},
            evidence_path=f"evidence/{who}-{i}.json",
        )


def _worker(path: str, who: str, start: Event) -> None:
    start.wait(30)
    with Ledger(Path(path)) as ledger:
        _append(ledger, PER_WORKER, who=who)


def test_append_list_and_verify(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as ledger:
        first = ledger.append(
            _evidence_hash("a"),
            kind="run",
            plan="p.toml",
            signer=None,
            summary={"wall_s": 0.25},
            evidence_path=tmp_path / "a.json",
        )
        _append(ledger, 4)
        records = ledger.records()
        assert [r.seq for r in records] == [1, 2, 3, 4, 5]
        assert records[0] == first
        assert first.prev_hash == GENESIS_HASH
        assert first.evidence_hash == _evidence_hash("a")
        assert first.summary == {"wall_s": 0.25}
        assert first.evidence_path == str(tmp_path / "a.json")
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
        assert [r.seq for r in ledger.records(limit=2)] == [4, 5]
        check = ledger.verify_chain()
        assert (check.ok, check.records, check.first_bad_seq) == (True, 5, None)
    # Reopening reads the same chain.
    with Ledger(tmp_path / "l.sqlite") as again:
        assert again.records() == records
        mode = sqlite3.connect(tmp_path / "l.sqlite").execute("PRAGMA journal_mode").fetchone()
        assert mode[0] == "wal"


def test_empty_ledger_verifies(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as ledger:
        assert ledger.records() == []
        assert ledger.verify_chain().ok


def _raw(path: Path, sql: str) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(sql)
    conn.close()


def test_edited_summary_is_detected_at_its_seq(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path) as ledger:
        _append(ledger, 6)
    _raw(path, """UPDATE records SET summary = '{"speedup": 99.0}' WHERE seq = 4""")
    with Ledger(path) as ledger:
        check = ledger.verify_chain()
    assert not check.ok
    assert check.first_bad_seq == 4
    assert "edited" in check.reason


def test_edited_hash_breaks_the_next_link(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path) as ledger:
        _append(ledger, 3)
    # Rewriting a row *and* its own hash still breaks the following record's prev link.
    with Ledger(path) as ledger:
        rec = ledger.records()[1]
    forged = dict(rec.summary, speedup=42.0)
    new_hash = dataclasses.replace(rec, summary=forged).expected_hash()
    _raw(
        path,
        f"UPDATE records SET summary = '{json.dumps(forged)}', hash = '{new_hash}' WHERE seq = 2",
    )
    with Ledger(path) as ledger:
        check = ledger.verify_chain()
    assert (check.ok, check.first_bad_seq) == (False, 3)


def test_deleted_middle_row_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path) as ledger:
        _append(ledger, 5)
    _raw(path, "DELETE FROM records WHERE seq = 3")
    with Ledger(path) as ledger:
        check = ledger.verify_chain()
    assert not check.ok
    assert check.first_bad_seq == 4
    assert "record 3 is missing" in check.reason


def test_concurrent_appenders_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    Ledger(path).close()  # create it once, as `truepar` would on first use
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_worker, args=(str(path), f"w{n}", start)) for n in range(WORKERS)]
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0] * WORKERS

    with Ledger(path) as ledger:
        records = ledger.records()
        check = ledger.verify_chain()
    assert len(records) == WORKERS * PER_WORKER
    assert check.ok, check.reason
    assert check.records == WORKERS * PER_WORKER
    assert len({r.prev_hash for r in records}) == len(records)
    expected = {_evidence_hash(f"w{n}-{i}") for n in range(WORKERS) for i in range(PER_WORKER)}
    assert {r.evidence_hash for r in records} == expected


def test_non_database_file_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("this is not a database, just some text that is long enough\n" * 20)
    with pytest.raises(UsageError, match=r"notes\.txt") as info:
        Ledger(path)
    assert "\n" not in str(info.value)


def test_unserializable_summary_is_a_usage_error(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as ledger:
        with pytest.raises(UsageError, match="summary"):
            ledger.append(
                "abc", kind="run", plan="p", signer=None, summary={"x": object()}, evidence_path="e"
            )
        assert ledger.records() == []


def test_default_path_follows_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRUEPAR_LEDGER", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_ledger_path() == tmp_path / "data" / "truepar" / "ledger.sqlite"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_ledger_path() == tmp_path / "home" / ".local/share/truepar/ledger.sqlite"
    monkeypatch.setenv("TRUEPAR_LEDGER", str(tmp_path / "x.sqlite"))
    assert default_ledger_path() == tmp_path / "x.sqlite"
    with Ledger() as ledger:
        assert ledger.path == tmp_path / "x.sqlite"
