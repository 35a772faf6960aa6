"""``truepar verify --reproduce``: rerun a bench's plan here and compare with its evidence."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import Any

import pytest

import truepar.evidence.reproduce as reproduce_module
from helpers.cli import truepar
from truepar.cli.main import main
from truepar.errors import UsageError
from truepar.evidence import (
    init_keys,
    load_evidence,
    load_private_key,
    record_bench,
    sign,
    verify,
)
from truepar.evidence.metadata import utc_now
from truepar.evidence.reproduce import Measured, judge, judge_flip, reproduce
from truepar.measure import Thresholds
from truepar.measure.bench import bench
from truepar.measure.results import BenchReport
from truepar.plan import load_plan

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


# -- a verdict that flips, judged against the intervals (docs/verdicts.md) --------------------


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Honest, signed bench evidence of a fake plan: ×2 and ×4 both ``parallel``, with point
    intervals (the fake backend's clock is virtual: every trial alike)."""
    tmp = tmp_path_factory.mktemp("reproduce-flips")
    plan = write_plan(tmp / "fake.toml", [1.0] * 4)
    init_keys(tmp / "keys")
    started = utc_now()
    report = bench(str(plan), backends=["fake"], workers=[2, 4], repeat=3, warmup=0)
    rec = record_bench(report, load_plan(plan), started_utc=started, out=tmp / "bench.json",
                       keys=tmp / "keys", ledger=tmp / "ledger.sqlite")  # fmt: skip
    return {"tmp": tmp, "evidence": rec.path, "key": tmp / "keys" / "private.pem"}


def rerun_measures(monkeypatch: pytest.MonkeyPatch, **changes: Any) -> None:
    """Make the rerun's fake ×2 come out as ``changes`` say (the rest as measured): the new
    measurement is injected, so what is judged does not depend on this machine's speed."""
    real = reproduce_module.bench

    def injected(*args: Any, **kwargs: Any) -> BenchReport:
        report = real(*args, **kwargs)
        results = tuple(
            dataclasses.replace(r, **changes) if r.workers == 2 else r for r in report.results
        )
        return dataclasses.replace(report, results=results)

    monkeypatch.setattr(reproduce_module, "bench", injected)


def verify_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """``truepar verify ARGS`` in this process (where the injected rerun lives): its exit code."""
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # main() wraps it
    with pytest.raises(SystemExit) as exc:
        main(["verify", *args])
    return int(exc.value.code or 0)


def test_a_flip_within_noise_is_unconfirmed_not_invalid(
    recorded: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # parallel 2.00 [2.00–2.00] then; serialized now, its interval reaching down to 1.05
    rerun_measures(monkeypatch, speedup=1.9, speedup_ci=(1.05, 2.3), verdict="serialized")
    code = verify_cli(monkeypatch, str(recorded["evidence"]), "--reproduce")
    out = capsys.readouterr().out
    assert code == 4, out
    assert "≈ reproduce: not reproduced within noise" in out
    assert (
        "≈ fake ×2: speedup 2.00 then, 1.90 now (−5%) — verdict parallel then, serialized now: "
        "not reproduced, within noise (speedup 95% intervals 2.00–2.00 then, 1.05–2.30 now "
        "overlap, their lower ends either side of 1.1)"
    ) in out
    assert "✓ fake ×4: speedup 4.00 then, 4.00 now (+0%), verdict parallel both" in out
    assert "✓ signature" in out and "✓ recompute" in out
    assert out.strip().splitlines()[-1].startswith("UNCONFIRMED")
    report = verify(recorded["evidence"], reproduce_here=True)
    assert report.verdict == "UNCONFIRMED" and not report.valid  # never VALID for a flip
    check = report.check("reproduce")
    assert check is not None and check.status == "noise" and check.ok


def test_a_flip_with_disjoint_intervals_is_not_reproduced(
    recorded: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    rerun_measures(monkeypatch, speedup=1.6, speedup_ci=(1.05, 1.7), verdict="serialized")
    report = verify(recorded["evidence"], reproduce_here=True)
    assert report.verdict == "INVALID"
    check = report.check("reproduce")
    assert check is not None and check.status == "failed"
    assert check.details[0] == (
        "✗ fake ×2: speedup 2.00 then, 1.60 now (−20%) — verdict parallel then, serialized now "
        "(speedup 95% intervals 2.00–2.00 then, 1.05–1.70 now: disjoint)"
    )


@pytest.mark.parametrize(
    "changes, why",
    [
        # overlapping intervals, but the speedup moved beyond the ±25% tolerance
        ({"speedup": 1.4, "speedup_ci": (1.05, 2.1), "verdict": "serialized"}, "beyond ±25%"),
        # suspect rests on results, failed ops or shrunk work: a finding, not noise
        ({"verdict": "suspect"}, "suspect, or no verdict, is a finding, not noise"),
    ],
)
def test_other_flips_are_not_reproduced(
    recorded: dict[str, Path], monkeypatch: pytest.MonkeyPatch, changes: dict[str, Any], why: str
) -> None:
    rerun_measures(monkeypatch, **changes)
    report = verify(recorded["evidence"], reproduce_here=True)
    check = report.check("reproduce")
    assert report.verdict == "INVALID" and check is not None
    assert check.details[0].startswith("✗ fake ×2") and why in check.details[0]


def test_impossible_evidence_is_invalid_whatever_the_rerun_says(
    recorded: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = load_evidence(recorded["evidence"])
    trial = next(t for t in doc["data"]["trials"] if t["workers"] == 4)
    trial["wall_s"] /= 2  # its spans now end after the run did
    forged = recorded["tmp"] / "forged.json"
    forged.write_text(json.dumps(sign(doc, load_private_key(recorded["key"]))))
    honest = verify(forged, reproduce_here=True)  # the rerun agrees with the verdicts ...
    rerun = honest.check("reproduce")
    assert rerun is not None and rerun.status == "ok"
    recompute = honest.check("recompute")
    assert recompute is not None and recompute.status == "failed"
    assert any("after the run ended" in line for line in recompute.details)
    assert honest.verdict == "INVALID"  # ... and physics still says no
    rerun_measures(monkeypatch, speedup=1.9, speedup_ci=(1.05, 2.3), verdict="serialized")
    assert verify(forged, reproduce_here=True).verdict == "INVALID"  # not UNCONFIRMED either


def test_address_needs_reproduce(recorded: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    assert verify_cli(monkeypatch, str(recorded["evidence"]), "--address", "auto") == 2
    assert "--address is where --reproduce reruns on Ray" in capsys.readouterr().err


def test_a_backend_that_cannot_run_here_is_no_verdict_on_the_evidence(
    recorded: dict[str, Path],
) -> None:
    doc = load_evidence(recorded["evidence"])
    for result in doc["data"]["results"]:
        result["backend"] = "nosuch"  # as if made on a backend this machine does not have
    with pytest.raises(UsageError, match="cannot reproduce here: unknown backend 'nosuch'"):
        reproduce(doc)


# -- the rule itself, on numbers (judge / judge_flip) ------------------------------------------

T = Thresholds()


def test_the_issues_example_is_within_noise_both_ways() -> None:
    then = Measured("threads ×4", 1.53, (1.08, 2.05), "serialized", 0.9)
    now = Measured("threads ×4", 1.52, (1.12, 1.98), "concurrent", 0.9)
    for a, b in ((then, now), (now, then)):
        outcome, line = judge(a, b, 0.25, T)
        assert outcome == "within_noise" and line.startswith("≈ threads ×4"), line


@pytest.mark.parametrize(
    "then_cores, then_trials, now_cores, now_trials, noise, why",
    [
        (1.1, (1.0, 1.25), 1.3, (1.15, 1.4), True, "1.00–1.25 then, 1.15–1.40 now overlap"),
        (1.05, (1.0, 1.1), 1.35, (1.3, 1.4), False, "1.00–1.10 then, 1.30–1.40 now: disjoint"),
        # "concurrent" above 1.2 cores: its baseline spent no CPU, no cores threshold crossed
        (1.55, (1.5, 1.6), 1.55, (1.5, 1.6), False, "not a flip across parallel_cores 1.2"),
    ],
)
def test_concurrent_against_parallel_is_judged_by_cores_per_trial(
    then_cores: float, then_trials: tuple[float, ...], now_cores: float,
    now_trials: tuple[float, ...], noise: bool, why: str,
) -> None:  # fmt: skip
    then = Measured("threads ×2", 1.9, (1.8, 2.0), "concurrent", then_cores, then_trials)
    now = Measured("threads ×2", 1.9, (1.8, 2.0), "parallel", now_cores, now_trials)
    within, words = judge_flip(then, now, T)
    assert within is noise and why in words, words
