"""The ledger: an append-only, hash-chained SQLite record of every evidence file.

Each row stores the evidence file's hash and a *chain hash* over the previous row's chain hash, the
evidence hash and the row's other fields, so editing, deleting or reordering any row breaks the
chain at that row and :meth:`Ledger.verify_chain` names it. (Dropping the newest rows cannot be
seen from the chain alone; compare the record count or the last hash with a copy kept elsewhere.)

Several processes may append at once: each append runs inside ``BEGIN IMMEDIATE``, which takes the
database's write lock before the last hash is read, so appenders serialize and never fork the
chain (``prev_hash`` is also ``UNIQUE``, so a fork could not be stored). WAL mode lets readers run
beside the writer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from truepar.errors import LedgerBusy, UsageError
from truepar.evidence.canonical import canonical_bytes
from truepar.evidence.paths import default_ledger_path

__all__ = (
    "GENESIS_HASH",
    "SCHEMA_VERSION",
    "ChainCheck",
    "Ledger",
    "LedgerBusy",
    "Record",
    "chain_hash",
    "default_ledger_path",
)

#: Version of the table layout below; a ledger written by a newer truepar is refused.
SCHEMA_VERSION = 1
#: The ``prev_hash`` of the first record.
GENESIS_HASH = "0" * 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    prev_hash TEXT NOT NULL UNIQUE,
    evidence_hash TEXT NOT NULL,
    recorded_utc TEXT NOT NULL,
    kind TEXT NOT NULL,
    plan TEXT NOT NULL,
    signer TEXT,
    summary TEXT NOT NULL,
    evidence_path TEXT NOT NULL
);
"""
_COLUMNS = (
    "seq, hash, prev_hash, evidence_hash, recorded_utc, kind, plan, signer, summary, evidence_path"
)
#: Attempts at a locked database beyond SQLite's own ``busy_timeout`` wait, with backoff.
_LOCK_RETRIES = 8
_BACKOFF_MAX_S = 0.5

_T = TypeVar("_T")


def _canonical_json(value: object) -> str:
    return canonical_bytes(value).decode("utf-8")


def chain_hash(
    prev_hash: str,
    evidence_hash: str,
    *,
    seq: int,
    recorded_utc: str,
    kind: str,
    plan: str,
    signer: str | None,
    summary: Mapping[str, Any],
    evidence_path: str,
) -> str:
    """sha256 hex of ``prev_hash``, ``evidence_hash``, canonical JSON of the other fields."""
    fields = {
        "seq": seq,
        "recorded_utc": recorded_utc,
        "kind": kind,
        "plan": plan,
        "signer": signer,
        "summary": summary,
        "evidence_path": evidence_path,
    }
    payload = f"{prev_hash}\n{evidence_hash}\n{_canonical_json(fields)}"
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclasses.dataclass(frozen=True)
class Record:
    """One ledger row. ``hash`` is the chain hash; ``evidence_hash`` is the evidence file's own."""

    seq: int
    hash: str
    prev_hash: str
    evidence_hash: str
    recorded_utc: str
    kind: str
    plan: str
    signer: str | None
    summary: Mapping[str, Any]
    evidence_path: str

    def expected_hash(self) -> str:
        """The chain hash this record's fields and ``prev_hash`` call for."""
        return chain_hash(
            self.prev_hash,
            self.evidence_hash,
            seq=self.seq,
            recorded_utc=self.recorded_utc,
            kind=self.kind,
            plan=self.plan,
            signer=self.signer,
            summary=self.summary,
            evidence_path=self.evidence_path,
        )


@dataclasses.dataclass(frozen=True)
class ChainCheck:
    """The outcome of :meth:`Ledger.verify_chain`: ``first_bad_seq`` is ``None`` when ``ok``."""

    ok: bool
    records: int
    first_bad_seq: int | None
    reason: str


class Ledger:
    """A hash-chained SQLite ledger at ``path`` (default: :func:`default_ledger_path`).

    Use it as a context manager, or call :meth:`close`. One ``Ledger`` per process (or thread);
    any number of them may share one file.
    """

    def __init__(
        self, path: Path | None = None, *, busy_timeout_s: float = 5.0, create: bool = True
    ) -> None:
        """``create=False`` (readers: ``history``, ``verify``): an existing ledger or an error —
        never a new empty one made from a typo."""
        self.path = Path(path) if path is not None else default_ledger_path()
        self._busy_timeout_s = busy_timeout_s
        self._create = create
        if self.path.is_dir():
            raise UsageError(f"ledger {self.path} is a directory, not a SQLite database")
        if not create and not self.path.is_file():
            raise UsageError(f"ledger {self.path}: no such file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"ledger {self.path}: cannot create its directory ({exc})") from exc
        self._conn = self._guard(self._connect)
        try:
            self._guard(lambda: self._retry(self._init_schema))
        except BaseException:
            self._conn.close()
            raise

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database connection; the ledger cannot be used afterwards."""
        self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- public operations -----------------------------------------------------------------------

    def append(
        self,
        evidence_hash: str,
        *,
        kind: str,
        plan: str,
        signer: str | None,
        summary: Mapping[str, Any],
        evidence_path: str | os.PathLike[str],
    ) -> Record:
        """Add one evidence file to the end of the chain and return its record."""
        if not isinstance(evidence_hash, str) or not evidence_hash.strip():
            raise UsageError(f"evidence hash must be a non-empty string, got {evidence_hash!r}")
        try:
            summary_json = _canonical_json(dict(summary))
        except (TypeError, ValueError) as exc:  # UsageError is a ValueError
            raise UsageError(f"ledger summary is not JSON-serializable: {exc}") from exc
        # Store what the hash covers: the summary as it reads back from JSON.
        summary_value: dict[str, Any] = json.loads(summary_json)
        path_text = os.fspath(evidence_path)

        def insert() -> Record:
            with self._immediate() as conn:
                last = conn.execute(
                    "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1"
                ).fetchone()
                seq, prev = (1, GENESIS_HASH) if last is None else (int(last[0]) + 1, str(last[1]))
                recorded = datetime.now(UTC).isoformat(timespec="microseconds")
                digest = chain_hash(
                    prev,
                    evidence_hash,
                    seq=seq,
                    recorded_utc=recorded,
                    kind=kind,
                    plan=plan,
                    signer=signer,
                    summary=summary_value,
                    evidence_path=path_text,
                )
                conn.execute(
                    f"INSERT INTO records ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        seq,
                        digest,
                        prev,
                        evidence_hash,
                        recorded,
                        kind,
                        plan,
                        signer,
                        summary_json,
                        path_text,
                    ),
                )
            return Record(
                seq=seq,
                hash=digest,
                prev_hash=prev,
                evidence_hash=evidence_hash,
                recorded_utc=recorded,
                kind=kind,
                plan=plan,
                signer=signer,
                summary=summary_value,
                evidence_path=path_text,
            )

        return self._guard(lambda: self._retry(insert))

    def records(self, limit: int | None = None) -> list[Record]:
        """All records oldest first, or only the newest ``limit`` of them (still oldest first)."""
        if limit is not None and limit < 0:
            raise UsageError(f"ledger limit must be >= 0, got {limit}")

        def query() -> list[tuple[Any, ...]]:
            if limit is None:
                sql = f"SELECT {_COLUMNS} FROM records ORDER BY seq"
                return list(self._conn.execute(sql))
            sql = f"SELECT {_COLUMNS} FROM records ORDER BY seq DESC LIMIT ?"
            return list(reversed(list(self._conn.execute(sql, (limit,)))))

        return [_record_from_row(row) for row in self._guard(lambda: self._retry(query))]

    def verify_chain(self) -> ChainCheck:
        """Recompute every chain hash and ``prev_hash`` link; report the first record that fails."""
        rows = self._guard(
            lambda: self._retry(
                lambda: list(self._conn.execute(f"SELECT {_COLUMNS} FROM records ORDER BY seq"))
            )
        )
        prev_hash, prev_seq = GENESIS_HASH, 0
        for count, row in enumerate(rows, start=1):
            seq = int(row[0])
            try:
                record = _record_from_row(row)
            except ValueError as exc:
                return ChainCheck(False, count, seq, f"record {seq}: {exc}")
            if seq != prev_seq + 1:
                missing = "the first record" if prev_seq == 0 else f"record {prev_seq + 1}"
                return ChainCheck(False, count, seq, f"record {seq}: {missing} is missing")
            if record.prev_hash != prev_hash:
                return ChainCheck(
                    False,
                    count,
                    seq,
                    f"record {seq}: prev_hash does not match record {prev_seq}'s hash"
                    " (a record was removed, replaced or reordered)",
                )
            if record.expected_hash() != record.hash:
                return ChainCheck(
                    False,
                    count,
                    seq,
                    f"record {seq}: hash does not match its contents (the record was edited)",
                )
            prev_hash, prev_seq = record.hash, seq
        return ChainCheck(True, len(rows), None, f"{len(rows)} records, chain intact")

    # -- internals -------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN ourselves, so the lock is taken where we say.
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _init_schema(self) -> None:
        # The first statement that reads the file is where "not a database" surfaces.
        mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            raise UsageError(f"ledger {self.path}: cannot switch to WAL mode (got {mode})")
        self._conn.execute("PRAGMA synchronous = FULL")
        with self._immediate() as conn:
            tables = {
                str(row[0])
                for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if "schema_version" in tables and "records" not in tables:
                # Made by truepar, and its records are gone: recreating the table would restart
                # the chain at record 1 and hide that.
                raise UsageError(f"ledger {self.path}: its records table is gone (dropped?)")
            if not self._create and "records" not in tables:
                raise UsageError(f"ledger {self.path}: not a truepar ledger (no records table)")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            version = row[0] if row is not None else None
            if version is None:
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            elif int(version) > SCHEMA_VERSION:
                raise UsageError(
                    f"ledger {self.path} has schema version {version}; this truepar reads up to "
                    f"{SCHEMA_VERSION} — upgrade truepar"
                )

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the database lock from its first statement."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _retry(self, action: Callable[[], _T]) -> _T:
        """Run ``action``, retrying with jittered backoff while the database is locked."""
        delay_s = 0.01
        for attempt in range(_LOCK_RETRIES + 1):
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc) or attempt == _LOCK_RETRIES:
                    raise
            time.sleep(delay_s * (0.5 + random.random()))  # jitter only, so appenders desynchronize
            delay_s = min(delay_s * 2, _BACKOFF_MAX_S)
        raise AssertionError("unreachable")  # pragma: no cover

    def _guard(self, action: Callable[[], _T]) -> _T:
        """Translate SQLite's errors at the boundary into truepar's own."""
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if _is_locked(exc):
                raise LedgerBusy(
                    f"ledger {self.path} stayed locked by other writers; try again"
                ) from exc
            raise UsageError(f"ledger {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"ledger {self.path} is not a SQLite database ({exc})") from exc


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    message = str(exc).lower()
    return "locked" in message or "busy" in message


def _record_from_row(row: tuple[Any, ...]) -> Record:
    try:
        summary = json.loads(row[8])
    except (TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"summary is not valid JSON ({exc})") from exc
    if not isinstance(summary, dict):
        raise ValueError("summary is not a JSON object")
    return Record(
        seq=int(row[0]),
        hash=str(row[1]),
        prev_hash=str(row[2]),
        evidence_hash=str(row[3]),
        recorded_utc=str(row[4]),
        kind=str(row[5]),
        plan=str(row[6]),
        signer=None if row[7] is None else str(row[7]),
        summary=summary,
        evidence_path=str(row[9]),
    )
