"""``truepar demo``, the main job of ``make demo``: three scenarios, three trees, a summary."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

from helpers.cli import truepar

REPO = Path(__file__).resolve().parents[2]
#: Where Ray is installed, the demo adds a CPU-bound scenario on Ray, after the other three.
RAY = importlib.util.find_spec("ray") is not None


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    return truepar("demo", *args, cwd=REPO, columns=120)


@pytest.mark.idle_cores  # it measures real parallelism: run alone, on idle cores
def test_demo_prints_three_trees_and_writes_signed_evidence(tmp_path: Path) -> None:
    keys, ledger = tmp_path / "keys", tmp_path / "ledger.sqlite"
    assert truepar("keys", "init", "--dir", str(keys)).returncode == 0
    proc = demo(
        "--repeat",
        "1",
        "--warmup",
        "0",
        "--out",
        str(tmp_path),
        "--keys",
        str(keys),
        "--ledger",
        str(ledger),
    )
    assert proc.returncode in (0, 1), proc.stderr  # 1: a scenario fell short on this machine
    titles = ["independent file operations", "mixed tool operations", "agent deployments"]
    scenarios = ["files", "mixed", "agents"]
    if RAY:
        titles.append("CPU-bound Python on Ray")
        scenarios.append("cpu-ray")
        assert "started a local Ray instance in" in proc.stdout  # what Ray's start cost, said
    else:
        assert "skipped: CPU-bound Python on Ray — needs ray" in proc.stdout
    assert proc.stdout.count("📊 PARALLEL EXECUTION VERIFICATION") == len(titles)
    for title in titles:
        assert f"VERIFICATION — {title}" in proc.stdout
    # in order, the Ray scenario last (after it, processes would use a fork server)
    places = [proc.stdout.index(f"VERIFICATION — {title}\n") for title in titles]
    assert places == sorted(places)
    assert "Summary" in proc.stdout
    for key in scenarios:
        data = json.loads((tmp_path / f"{key}.json").read_text())
        assert data["complete"] is True
        assert data["baseline"]["backend"] == "sequential"
        assert {"backend", "workers", "speedup", "cores_used", "verdict", "reasons"} <= set(
            data["results"][0]
        )
        assert data["validation"]["state"] in ("VALIDATED", "NOT VALIDATED")
        assert all(r["errors"] == 0 for r in data["results"]), key
        evidence = tmp_path / f"{key}.evidence.json"
        check = truepar("verify", str(evidence), "--ledger", str(ledger))
        assert check.returncode == 0, check.stdout + check.stderr
    history = truepar("history", "--ledger", str(ledger))
    assert history.returncode == 0 and "agent deployments" in history.stdout
    # one HTML report and one Chrome trace of all three, and where they are is said
    page = (tmp_path / "report.html").read_text()
    assert page.count('<section class="evidence"') == len(scenarios)
    assert page.count('class="gantt"') >= 3 * len(scenarios)
    assert f"HTML report written to {tmp_path / 'report.html'}" in proc.stdout
    events = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    processes = [e["args"]["name"] for e in events if e["name"] == "process_name"]
    assert "agent deployments: async ×3" in processes, processes
    if RAY:
        assert any(": ray ×2 · node " in p for p in processes), processes  # one per node
    assert f"Chrome trace written to {tmp_path / 'trace.json'}" in proc.stdout


def test_demo_without_scenarios_exits_2(tmp_path: Path) -> None:
    proc = demo("--scenarios", str(tmp_path / "nowhere"))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "--scenarios" in proc.stderr


def test_demo_summary_stays_readable_at_80_columns(tmp_path: Path) -> None:
    """A scenario with a long title, on the fake backend's clock: at 80 columns the summary is
    one record per scenario (its title whole, its state never cut); wide, a table."""
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "helpers.py").write_text("")
    ops = "".join(
        f'\n[[op]]\nid = "s{i}"\ntool = "sleep"\nseconds = 1.0\n'
        "fake = { duration_s = 1.0, cpu_s = 0.9 }\n"
        for i in range(4)
    )
    (folder / "fakes.toml").write_text(f'name = "fakes"\n[defaults]\nbackend = "fake"\n{ops}')
    title = "a scenario whose descriptive title runs long"
    (folder / "demo.toml").write_text(
        f'[[scenario]]\nkey = "fakes"\ntitle = "{title}"\nplan = "fakes.toml"\n'
        'backends = ["fake"]\nworkers = [4]\nmin_speedup = 100\n'
    )
    common = ("demo", "--scenarios", str(folder), "--repeat", "2", "--warmup", "0")
    narrow = truepar(*common, "--out", str(tmp_path / "narrow"), cwd=tmp_path, columns=80)
    assert narrow.returncode == 1, narrow.stdout + narrow.stderr  # speedup 100 is not met
    summary = narrow.stdout[narrow.stdout.rindex("Summary") :].splitlines()
    assert all(len(line) <= 80 for line in summary), summary
    assert summary[1] == title
    assert "fake ×4" in summary[2] and summary[2].rstrip().endswith("NOT VALIDATED"), summary
    wide = truepar(*common, "--out", str(tmp_path / "wide"), cwd=tmp_path, columns=160)
    table = wide.stdout[wide.stdout.rindex("Summary") :].splitlines()
    row = next(line for line in table if line.lstrip().startswith(title))
    assert "fake ×4" in row and row.rstrip().endswith("NOT VALIDATED"), row
