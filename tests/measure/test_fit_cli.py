"""``truepar fit`` as a user runs it: a real subprocess, real CSV files, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.cli import truepar

DATA = Path(__file__).parent / "data"


def test_fit_json_on_specsdm91() -> None:
    proc = truepar("fit", str(DATA / "specsdm91.csv"), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)  # stdout holds only the JSON object
    assert set(report) == {
        "sigma",
        "kappa",
        "gamma",
        "peak_workers",
        "karp_flatt",
        "diagnosis",
        "points",
        "amdahl",
        "r_squared",
    }
    assert report["sigma"] == pytest.approx(0.0277285, rel=1e-5)
    assert report["kappa"] == pytest.approx(0.0001044, rel=5e-4)
    assert report["gamma"] == pytest.approx(89.9952330, rel=1e-7)
    assert report["peak_workers"] == pytest.approx(96.5, abs=0.05)
    assert report["r_squared"] == pytest.approx(0.9896, abs=5e-5)
    assert [p["workers"] for p in report["points"]] == [1, 18, 36, 72, 108, 144, 216]
    assert report["points"][1]["speedup"] == pytest.approx(995.9 / 64.9)
    kf = report["karp_flatt"]
    assert len(kf) == 7 and kf[0] is None and all(e > 0 for e in kf[1:])
    assert kf == [p["karp_flatt"] for p in report["points"]]
    assert "overhead grows with workers" in report["diagnosis"]
    assert "Recommended workers: 97" in report["diagnosis"]
    assert 0 < report["amdahl"]["serial_fraction"] < 1


def test_fit_table_on_raytracer() -> None:
    proc = truepar("fit", str(DATA / "raytracer.csv"))
    assert proc.returncode == 0, proc.stderr
    assert "Karp–Flatt e" in proc.stdout and "σ = 0.05777" in proc.stdout
    assert "peak N* = ∞" in proc.stdout and "Recommended workers: 18" in proc.stdout


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("workers,speed\n1,2\n2,3\n4,5\n", "missing column throughput (or seconds)"),
        ("workers,throughput\n1,2\n2,fast\n4,5\n", "line 3: throughput must be a number"),
        ("workers,throughput\n1,2\n2,0\n4,5\n", "line 3: throughput must be a positive number"),
        ("workers,seconds\n1,2\n-2,1\n4,5\n", "line 3: workers must be a positive number"),
        ("workers,throughput\n1,2\n2,3\n", "a fit needs at least 3 points"),
    ],
)
def test_bad_csv_exits_2_with_one_line(tmp_path: Path, content: str, fragment: str) -> None:
    csv = tmp_path / "sweep.csv"
    csv.write_text(content)
    proc = truepar("fit", str(csv), "--json")
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert fragment in lines[0] and "sweep.csv" in lines[0]


def test_missing_file_exits_2(tmp_path: Path) -> None:
    proc = truepar("fit", str(tmp_path / "absent.csv"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "absent.csv: no such file" in lines[0]
