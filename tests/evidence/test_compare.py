"""``truepar compare A B``: configuration by configuration, with the noise taken into account."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

import truepar
from helpers.cli import truepar as run_cli
from truepar.evidence.compare import compare, ratio_ci


def _plan(tmp: Path, name: str, duration: float = 1.0, lock: bool = False) -> Path:
    res = "[resources.db]\nmax_concurrent = 1\n" if lock else ""
    use = 'resource = "db"\n' if lock else ""
    ops = "".join(
        f'\n[[op]]\nid = "s{i}"\ntool = "sleep"\nseconds = 1.0\n{use}'
        f"fake = {{ duration_s = {duration}, cpu_s = {duration * 0.9} }}\n"
        for i in range(4)
    )
    path = tmp / f"{name}.toml"
    path.write_text(f'name = "fakes"\n[defaults]\nbackend = "fake"\n{res}{ops}')
    return path


def _bench(tmp: Path, name: str, **plan: Any) -> Path:
    evidence = tmp / f"{name}.json"
    proc = run_cli(
        "bench", str(_plan(tmp, name, **plan)), "--backends", "fake", "--workers", "1,2,4",
        "--repeat", "3", "--warmup", "0", "--evidence", str(evidence),
        "--keys", str(tmp / "no-keys"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return evidence


@pytest.fixture(scope="module")
def benches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("compare")
    return {
        "tmp": tmp,
        "a": _bench(tmp, "a"),
        "a2": _bench(tmp, "a2"),
        "slow": _bench(tmp, "slow", duration=1.3),
        "locked": _bench(tmp, "locked", lock=True),
    }


def _load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def test_identical_benches_are_the_same(benches: dict[str, Path]) -> None:
    result = compare(_load(benches["a"]), _load(benches["a2"]))
    assert {(c.backend, c.workers) for c in result.configs} == {("fake", w) for w in (1, 2, 4)}
    assert all(c.change == "same" for c in result.configs)
    assert result.ok and not result.only_a and not result.only_b
    proc = run_cli("compare", str(benches["a"]), str(benches["a2"]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no regression" in proc.stdout


def test_thirty_percent_slower_is_a_regression(benches: dict[str, Path]) -> None:
    result = compare(_load(benches["a"]), _load(benches["slow"]))
    assert all(c.change == "slower" for c in result.configs)
    assert all(c.ratio == pytest.approx(1.3) for c in result.configs)
    assert len(result.regressions) == 3
    back = compare(_load(benches["slow"]), _load(benches["a"]))
    assert all(c.change == "faster" for c in back.configs) and back.ok
    proc = run_cli("compare", str(benches["a"]), str(benches["slow"]))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "slower" in proc.stdout and "REGRESSION" in proc.stdout
    proc = run_cli("compare", str(benches["a"]), str(benches["slow"]), "--json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False and "fake ×2" in doc["regressions"]
    # A threshold above the change lets it through.
    proc = run_cli("compare", str(benches["a"]), str(benches["slow"]), "--threshold", "0.5")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_worse_verdict_is_flagged(benches: dict[str, Path]) -> None:
    result = compare(_load(benches["a"]), _load(benches["locked"]))
    four = next(c for c in result.configs if c.workers == 4)
    assert (four.a_verdict, four.b_verdict) == ("parallel", "serialized")
    assert four.verdict_change == "worse" and four.regression
    # The verdict alone is a regression, even where the walls are within the threshold.
    b = _load(benches["a2"])
    for r in b["data"]["results"]:
        r["verdict"] = "serialized"
    result = compare(_load(benches["a"]), b)
    assert all(c.change == "same" for c in result.configs)
    assert {c.workers for c in result.regressions} == {2, 4}
    edited = benches["tmp"] / "verdict.json"
    edited.write_text(json.dumps(b))
    proc = run_cli("compare", str(benches["a"]), str(edited))
    assert proc.returncode == 1 and "(worse)" in proc.stdout


def test_jitter_within_noise_is_the_same(benches: dict[str, Path]) -> None:
    base = _load(benches["a"])
    rng = random.Random(7)

    def jittered() -> dict[str, Any]:
        doc = copy.deepcopy(base)
        extra = [copy.deepcopy(t) for t in doc["data"]["trials"] for _ in range(2)]
        doc["data"]["trials"].extend(extra)  # 9 samples per configuration
        for t in doc["data"]["trials"]:
            t["wall_s"] *= 1 + rng.uniform(-0.02, 0.02)
        return doc

    result = compare(jittered(), jittered())
    assert all(c.change == "same" for c in result.configs)
    assert all(c.ci[0] < c.ci[1] and c.b_trials == 9 for c in result.configs)
    assert result.ok


def test_ratio_ci_is_reproducible() -> None:
    a, b = [1.0, 1.1, 0.9, 1.05], [2.0, 2.1, 1.9, 2.2]
    assert ratio_ci(a, b) == ratio_ci(a, b)
    point, (lo, hi) = ratio_ci(a, b)
    assert lo <= point <= hi and lo > 1.5


def test_configurations_in_one_side_only_are_listed(benches: dict[str, Path]) -> None:
    b = _load(benches["a2"])
    b["data"]["results"] = [r for r in b["data"]["results"] if r["workers"] != 4]
    b["data"]["results"].append({**b["data"]["results"][0], "workers": 8})
    result = compare(_load(benches["a"]), b)
    assert result.only_a == ["fake ×4"] and result.only_b == ["fake ×8"]


def test_bad_input_is_a_usage_error(benches: dict[str, Path], tmp_path: Path) -> None:
    a = _load(benches["a"])
    with pytest.raises(truepar.UsageError, match="not bench evidence"):
        compare(a, {"kind": "run", "data": {}})
    other = copy.deepcopy(a)
    other["data"]["baseline"] = None
    other["data"]["results"] = [{**r, "backend": "threads"} for r in a["data"]["results"]]
    with pytest.raises(truepar.UsageError, match="no configuration"):
        compare(a, other)
    plan = _plan(tmp_path, "run")
    run_evidence = tmp_path / "run.json"
    proc = run_cli(
        "run", str(plan), "--evidence", str(run_evidence), "--keys", str(tmp_path / "nokeys")
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run_cli("compare", str(benches["a"]), str(run_evidence))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "not bench evidence" in proc.stderr
    proc = run_cli("compare", str(benches["a"]), str(tmp_path / "missing.json"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def test_benches_of_different_plans_are_compared_with_a_warning(
    benches: dict[str, Path],
) -> None:
    same = compare(_load(benches["a"]), _load(benches["a2"]))
    assert same.warnings == []
    other = compare(_load(benches["a"]), _load(benches["slow"]))
    assert len(other.warnings) == 1 and "two versions of plan 'fakes'" in other.warnings[0]
    proc = run_cli("compare", str(benches["a"]), str(benches["slow"]))
    assert "truepar: warning:" in proc.stderr and "not in its speed" in proc.stderr
