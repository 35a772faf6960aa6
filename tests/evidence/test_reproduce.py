"""``truepar verify --reproduce``: rerun a bench's plan here and compare with its evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.cli import truepar
from truepar.errors import UsageError
from truepar.evidence import load_evidence
from truepar.evidence.reproduce import reproduce

OP = "fake = {{ duration_s = {d}, cpu_s = 0.9 }}\n"


def write_plan(path: Path, durations: list[float]) -> Path:
    ops = "".join(
        f'\n[[op]]\nid = "s{i}"\ntool = "sleep"\nseconds = 1.0\n' + OP.format(d=d)
        for i, d in enumerate(durations)
    )
    path.write_text(f'name = "fakes"\n[defaults]\nbackend = "fake"\n{ops}')
    return path


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    keys = tmp_path / "keys"
    assert truepar("keys", "init", "--dir", str(keys)).returncode == 0
    plan = write_plan(tmp_path / "fake.toml", [1.0] * 4)
    evidence = tmp_path / "bench.json"
    proc = truepar(
        "bench", str(plan), "--backends", "fake", "--workers", "2,4", "--repeat", "2",
        "--warmup", "0", "--evidence", str(evidence), "--keys", str(keys),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"tmp": tmp_path, "plan": plan, "evidence": evidence, "keys": keys}


def test_reproduce_matches(world: dict[str, Path]) -> None:
    proc = truepar("verify", str(world["evidence"]), "--reproduce")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "✓ reproduce" in proc.stdout
    assert "✓ fake ×4: speedup 4.00 then, 4.00 now (+0%)" in proc.stdout
    assert "✓ fake ×2" in proc.stdout and "VALID" in proc.stdout


def test_reproduce_api(world: dict[str, Path]) -> None:
    rep = reproduce(load_evidence(world["evidence"]), tolerance=0.0)
    assert rep.ok and rep.report.complete
    assert all(line.startswith("✓") for line in rep.lines)


def test_changed_plan_fails_naming_the_configuration(world: dict[str, Path]) -> None:
    write_plan(world["plan"], [3.0, 1.0, 1.0, 1.0])
    proc = truepar("verify", str(world["evidence"]), "--reproduce", "--tolerance", "0.1")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "✗ reproduce" in proc.stdout and "INVALID" in proc.stdout
    assert "✗ fake ×4: speedup 4.00 then, 2.00 now (−50%)" in proc.stdout
    assert "plan file" in proc.stdout and "changed" in proc.stdout
    # the other checks still pass: only the rerun differs
    assert "✓ signature" in proc.stdout and "✓ recompute" in proc.stdout


def test_run_evidence_cannot_be_reproduced(world: dict[str, Path]) -> None:
    evidence = world["tmp"] / "run.json"
    proc = truepar("run", str(world["plan"]), "--evidence", str(evidence), "--keys",
                   str(world["keys"]))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = truepar("verify", str(evidence), "--reproduce")
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert "--reproduce: only bench or prove evidence can be reproduced" in line
    assert "schema" not in proc.stdout  # refused before any check ran


def test_missing_plan_file_is_a_usage_error(world: dict[str, Path]) -> None:
    world["plan"].unlink()
    proc = truepar("verify", str(world["evidence"]), "--reproduce")
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert str(world["plan"]) in line and "must be at that path" in line
    doc = json.loads(world["evidence"].read_text())
    doc["kind"] = "run"
    with pytest.raises(UsageError, match="only bench or prove evidence can be reproduced"):
        reproduce(doc)
