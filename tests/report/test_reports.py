"""Reports of real evidence: the Chrome trace of a run, Markdown of a bench and a run, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import truepar
from helpers.cli import truepar as truepar_cli
from truepar.evidence import bench_evidence, run_evidence
from truepar.report import chrome_trace, markdown

UTC = {"started_utc": "2024-01-01T00:00:00Z", "ended_utc": "2024-01-01T00:00:01Z"}


@pytest.fixture(scope="module")
def run_doc() -> dict[str, Any]:
    ops = [truepar.SleepOp(id=f"nap{i}", seconds=0.05) for i in range(4)]
    plan = truepar.Plan(name="naps", ops=ops, defaults=truepar.Defaults(workers=2))
    return run_evidence(truepar.run(plan, backend="threads"), plan, **UTC)


@pytest.fixture(scope="module")
def bench_doc() -> dict[str, Any]:
    fake = truepar.FakeSpec(duration_s=1.0, cpu_s=0.9)
    ops = [truepar.SleepOp(id=f"op{i}", seconds=1, fake=fake) for i in range(4)]
    plan = truepar.Plan(name="fakes", ops=ops, defaults=truepar.Defaults(backend="fake"))
    report = truepar.measure.bench(
        plan, backends=("fake",), workers=(1, 2, 4), repeat=3, warmup=0, cores=8
    )
    return bench_evidence(report, plan, cores=8, **UTC)


def test_chrome_trace_has_one_event_per_span(run_doc: dict[str, Any]) -> None:
    spans = run_doc["data"]["spans"]
    trace = chrome_trace(run_doc["data"])
    assert trace["displayTimeUnit"] == "ms"
    json.dumps(trace)  # loadable JSON
    events = trace["traceEvents"]
    complete = [e for e in events if e["ph"] == "X"]
    assert len(complete) == len(spans) == 4
    by_op = {e["name"]: e for e in complete}
    for span in spans:
        event = by_op[span["op_id"]]
        assert event["ts"] >= 0
        assert event["dur"] == pytest.approx((span["end_ns"] - span["start_ns"]) / 1000)
        assert event["tid"] == span["worker"]
        assert event["cat"] == "sleep"
        assert event["args"]["status"] == "ok"
        assert set(event["args"]) == {"status", "attempt", "cpu_s", "bytes_out", "error"}
    meta = [e for e in events if e["ph"] == "M"]
    processes = [e for e in meta if e["name"] == "process_name"]
    assert len(processes) == 1
    assert "threads" in processes[0]["args"]["name"]
    assert {e["pid"] for e in complete} == {processes[0]["pid"]}
    threads = {e["tid"]: e["args"]["name"] for e in meta if e["name"] == "thread_name"}
    workers = {s["worker"] for s in spans}
    assert len(workers) == 2
    assert threads == {w: f"worker {w}" for w in workers}


def test_markdown_of_bench(bench_doc: dict[str, Any]) -> None:
    text = markdown(bench_doc)
    assert "| Backend | W | Wall | Speedup [95% CI] | Cores | Work ratio | Verdict |" in text
    data = bench_doc["data"]
    rows = [data["baseline"], *data["results"]]
    assert len(rows) == 3
    lines = text.splitlines()
    for r in rows:
        row = [ln for ln in lines if ln.startswith("| ") and f"| {r['workers']} |" in ln]
        assert len(row) == 1, r["workers"]
        assert f"{r['speedup']:.2f}×" in row[0]
        if r["verdict"]:
            assert f"**{r['verdict']}**" in row[0]
    assert "parallel" in text
    assert f"Best configuration: **{data['best']}**" in text
    best = next(r for r in data["results"] if f"{r['backend']} ×{r['workers']}" == data["best"])
    for reason in best["reasons"]:
        assert f"- {reason}" in lines
    assert "GIL" in text and "cores" in text
    assert "not signed" in text


def test_markdown_of_signed_bench_names_the_key(bench_doc: dict[str, Any]) -> None:

    signed = truepar.evidence.sign(bench_doc, Ed25519PrivateKey.generate())
    assert f"key `{signed['signature']['key_id']}`" in markdown(signed)
    signed["data"]["results"][0]["speedup"] = 99.0
    assert "INVALID" in markdown(signed)


def test_markdown_of_run(run_doc: dict[str, Any]) -> None:
    text = markdown(run_doc)
    assert "| Op | Tool | Status | Duration | Worker |" in text
    for i in range(4):
        assert any(ln.startswith(f"| nap{i} | sleep | ok |") for ln in text.splitlines())
    assert "threads" in text


def test_cli_writes_markdown_and_trace(run_doc: dict[str, Any], tmp_path: Path) -> None:
    evidence = tmp_path / "run.json"
    evidence.write_text(json.dumps(run_doc))
    md, trace = tmp_path / "out" / "report.md", tmp_path / "out" / "trace.json"
    result = truepar_cli("report", str(evidence), "--md", str(md), "--trace", str(trace))
    assert result.returncode == 0, result.stderr
    assert md.read_text() == markdown(run_doc)
    events = json.loads(trace.read_text())["traceEvents"]
    assert sum(e["ph"] == "X" for e in events) == 4
    stdout = truepar_cli("report", str(evidence), "--md", "-")
    assert stdout.returncode == 0, stdout.stderr
    assert stdout.stdout == markdown(run_doc)


def test_chrome_trace_of_bench_has_a_process_per_configuration(
    bench_doc: dict[str, Any], tmp_path: Path
) -> None:
    evidence = tmp_path / "bench.json"
    evidence.write_text(json.dumps(bench_doc))
    out = tmp_path / "t.json"
    result = truepar_cli("report", str(evidence), "--trace", str(out))
    assert result.returncode == 0, result.stderr
    events = json.loads(out.read_text())["traceEvents"]
    names = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert sorted(names.values()) == ["fake ×1", "fake ×2", "fake ×4"]
    for pid, name in names.items():
        width = int(name.split("×")[1])
        spans = [e for e in events if e["ph"] == "X" and e["pid"] == pid]
        assert len(spans) == 4  # one run (its median-wall trial), every op once
        assert {e["tid"] for e in spans} == set(range(width))
        assert all(e["dur"] == pytest.approx(1e6) for e in spans)  # fake: exactly 1 s each


def test_terminal_report_of_bench_recomputes_and_shows_the_tree(
    bench_doc: dict[str, Any], tmp_path: Path
) -> None:
    evidence = tmp_path / "bench.json"
    evidence.write_text(json.dumps(bench_doc))
    result = truepar_cli("report", str(evidence))
    assert result.returncode == 0, result.stderr
    assert "PARALLEL EXECUTION VERIFICATION — fakes" in result.stdout
    assert "Tools executed: sleep ×4 (4 ops)" in result.stdout
    assert "Verdict: parallel" in result.stdout


def test_cli_unreadable_evidence_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "run", "data": ')
    result = truepar_cli("report", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "truncated JSON" in result.stderr
