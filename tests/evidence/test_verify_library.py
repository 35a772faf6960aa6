"""The record layer from Python: run, record and verify in three calls, and ``truepar verify``
giving the same answer as :func:`truepar.evidence.verify` on the same file."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

import truepar
from helpers.cli import truepar as truepar_cli
from truepar import FakeSpec, SleepOp
from truepar.evidence import (
    init_keys,
    load_evidence,
    load_private_key,
    load_public_key,
    record_run,
    sign,
    trust_line,
    verify,
)

MARKS = {"ok": "✓", "failed": "✗", "skipped": "–", "missing": "!"}
EXIT = {"VALID": 0, "INVALID": 1, "UNSIGNED": 3}


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A fake run recorded with a key; a trust file naming that key; the ledger."""
    tmp = tmp_path_factory.mktemp("verify-library")
    keys = init_keys(tmp / "keys")
    trust = tmp / "trust.txt"
    trust.write_text(trust_line("alice", load_public_key(keys.public)) + "\n")
    plan = truepar.Plan(
        name="fakes",
        defaults=truepar.Defaults(backend="fake", workers=2),
        ops=[
            SleepOp(id=f"s{i}", seconds=1, fake=FakeSpec(duration_s=1, cpu_s=0.5)) for i in range(4)
        ],
    )
    trace = truepar.run(plan)
    recorded = record_run(
        trace, plan, out=tmp / "run.json", keys=tmp / "keys", ledger=tmp / "ledger.sqlite"
    )
    assert recorded.signer is not None and recorded.seq == 1
    return {"tmp": tmp, "evidence": recorded.path, "trust": trust, "ledger": recorded.ledger,
            "keys": tmp / "keys"}  # fmt: skip


def _variants(signed: dict[str, Path]) -> dict[str, Path]:
    """The honest file, and files broken in each way verify names."""
    doc = load_evidence(signed["evidence"])
    key = load_private_key(signed["keys"] / "private.pem")
    out = {"honest": signed["evidence"]}

    edited = copy.deepcopy(doc)
    edited["data"]["totals"]["avg_concurrency"] *= 2  # a number that no longer follows
    out["edited"] = signed["tmp"] / "edited.json"
    out["edited"].write_text(json.dumps(edited))

    resigned = sign(edited, key)  # re-signed: valid signature, still not recomputable
    out["resigned"] = signed["tmp"] / "resigned.json"
    out["resigned"].write_text(json.dumps(resigned))

    unsigned = {k: v for k, v in doc.items() if k != "signature"}  # honest, but nobody signed
    out["unsigned"] = signed["tmp"] / "unsigned.json"
    out["unsigned"].write_text(json.dumps(unsigned))

    bad_schema = copy.deepcopy(doc)
    del bad_schema["plan"]
    out["schema"] = signed["tmp"] / "schema.json"
    out["schema"].write_text(json.dumps(bad_schema))
    return out


def test_three_calls_run_record_and_verify(signed: dict[str, Path]) -> None:
    report = verify(signed["evidence"], trust=signed["trust"], ledger=signed["ledger"])
    assert report.valid, report
    assert [c.name for c in report.checks] == [
        "schema", "signature", "trust", "recompute", "ledger"
    ]  # fmt: skip
    assert all(c.status == "ok" for c in report.checks)


@pytest.mark.parametrize("variant", ["honest", "edited", "resigned", "unsigned", "schema"])
@pytest.mark.parametrize("with_trust", [False, True])
def test_the_cli_and_the_library_agree(
    signed: dict[str, Path], variant: str, with_trust: bool
) -> None:
    path = _variants(signed)[variant]
    trust = signed["trust"] if with_trust else None
    report = verify(path, trust=trust)
    args = ["verify", str(path)] + (["--trust", str(trust)] if trust else [])
    proc = truepar_cli(*args, columns=300)
    assert proc.returncode == EXIT[report.verdict], proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith(report.verdict)
    for check in report.checks:
        assert f"{MARKS[check.status]} {check.name}: " in proc.stdout, (check, proc.stdout)
    assert report.valid == (variant == "honest")
    expected = {"honest": "VALID", "unsigned": "UNSIGNED"}.get(variant, "INVALID")
    assert report.verdict == expected  # not signed is not the same as changed


def test_bad_input_is_an_error_in_both(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(truepar.UsageError, match="cannot read evidence"):
        verify(missing)
    proc = truepar_cli("verify", str(missing))
    assert proc.returncode == 2 and "cannot read evidence" in proc.stderr
