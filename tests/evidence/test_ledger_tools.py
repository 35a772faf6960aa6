"""Ledger tools say what they see (issue 13, item 2): a broken chain is warned about, a
dropped table is an error, a typo is not a new empty ledger, an interrupted run says so."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from helpers.cli import truepar
from truepar.errors import UsageError
from truepar.evidence import Ledger, summary_text

PLAN = 'name = "p"\n[[op]]\nid = "a"\ntool = "sleep"\nseconds = 0\n'


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    plan = tmp_path / "p.toml"
    plan.write_text(PLAN)
    path = tmp_path / "ledger.sqlite"
    for _ in range(2):
        assert truepar("run", str(plan), "--ledger", str(path)).returncode == 0
    return path


def _sql(path: Path, statement: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(statement)


def test_history_of_an_intact_ledger(ledger: Path) -> None:
    shown = truepar("history", "--ledger", str(ledger))
    assert shown.returncode == 0, shown.stderr
    assert "2 record(s)" in shown.stdout and shown.stderr == ""


def test_history_warns_when_a_record_was_forged(ledger: Path) -> None:
    _sql(ledger, "UPDATE records SET plan = 'forged' WHERE seq = 2")
    shown = truepar("history", "--ledger", str(ledger))
    assert shown.returncode == 1
    assert "forged" in shown.stdout  # still shown: the user sees what is there
    assert "chain is broken" in shown.stderr and "record 2" in shown.stderr


def test_a_dropped_records_table_is_an_error_not_an_empty_valid_ledger(ledger: Path) -> None:
    _sql(ledger, "DROP TABLE records")
    for args in (("verify", "--ledger", str(ledger)), ("history", "--ledger", str(ledger))):
        result = truepar(*args)
        assert result.returncode == 2, result.stdout
        assert "records table is gone" in result.stderr
        assert "VALID" not in result.stdout
    with pytest.raises(UsageError, match="records table is gone"):
        Ledger(ledger)  # a writer does not quietly restart the chain either


def test_a_ledger_path_with_a_typo_is_not_created(tmp_path: Path) -> None:
    typo = tmp_path / "typo.sqlite"
    for args in (("history", "--ledger", str(typo)), ("verify", "--ledger", str(typo))):
        result = truepar(*args)
        assert result.returncode == 2 and "no such file" in result.stderr
    assert not typo.exists()


def test_a_sqlite_file_that_is_not_a_ledger_is_refused_by_readers(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    _sql(other, "CREATE TABLE t (x)")
    with pytest.raises(UsageError, match="not a truepar ledger"):
        Ledger(other, create=False)


def test_history_without_any_ledger_yet_says_so(tmp_path: Path) -> None:
    shown = truepar("history")
    assert shown.returncode == 0
    assert "no records yet" in shown.stdout


def test_interrupted_runs_and_benches_read_as_interrupted() -> None:
    run = {"wall_s": 1.5, "ok": False, "status": "interrupted"}
    assert summary_text("run", run) == "wall 1.500s interrupted"
    assert summary_text("run", {"wall_s": 1.5, "ok": False}) == "wall 1.500s FAILED"
    bench = {"best": None, "speedup": None, "verdict": None, "complete": False}
    assert summary_text("bench", bench) == "interrupted before any result"
