"""Evidence documents: built from real runs and benches, valid against the schema, and every
derived number recomputed from the raw samples, so that an edit is caught."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

import truepar
from truepar import FakeSpec, SleepOp
from truepar.evidence import (
    SCHEMA_VERSION,
    bench_evidence,
    check_schema,
    load_evidence,
    recompute,
    run_evidence,
)
from truepar.evidence.build import plan_section
from truepar.measure import bench

T0, T1 = "2024-01-01T00:00:00.000Z", "2024-01-01T00:00:01.000Z"


def fake_plan() -> truepar.Plan:
    return truepar.Plan(
        name="fake-bench",
        defaults=truepar.Defaults(backend="fake"),
        ops=[
            SleepOp(id="a", seconds=0, fake=FakeSpec(duration_s=0.2, cpu_s=0.15)),
            SleepOp(id="b", seconds=0, fake=FakeSpec(duration_s=0.1, cpu_s=0.1)),
            SleepOp(id="c", seconds=0, fake=FakeSpec(duration_s=0.1, cpu_s=0.08)),
            SleepOp(id="d", seconds=0, after=["a"], fake=FakeSpec(duration_s=0.05)),
            SleepOp(id="e", seconds=0, fake=FakeSpec(duration_s=0.1, cpu_s=0.01)),
        ],
    )


@pytest.fixture(scope="module")
def bench_doc() -> dict[str, Any]:
    plan = fake_plan()
    report = bench(plan, backends=("fake",), workers=(2, 4), repeat=3, warmup=1, cores=8)
    return bench_evidence(report, plan, started_utc=T0, ended_utc=T1, cores=8)


@pytest.fixture(scope="module")
def run_doc() -> dict[str, Any]:
    plan = truepar.Plan(
        name="real",
        ops=[
            SleepOp(id="s1", seconds=0.02),
            SleepOp(id="s2", seconds=0.02),
            truepar.BashOp(
                id="b",
                argv=["true"],
                after=["s1"],
                env={"API_KEY": "sk-very-secret", "GITHUB_TOKEN": "ghp_x", "LANG": "C"},
            ),
        ],
    )
    trace = truepar.run(plan, backend="threads", workers=2)
    return run_evidence(trace, plan, started_utc=T0, ended_utc=T1)


def test_real_evidence_is_json_and_validates(
    bench_doc: dict[str, Any], run_doc: dict[str, Any]
) -> None:
    for doc in (bench_doc, run_doc):
        assert json.loads(json.dumps(doc, allow_nan=False)) == doc
        assert check_schema(doc) == []
        assert doc["schema_version"] == SCHEMA_VERSION == 1
        assert len(doc["plan"]["sha256"]) == 64
    assert bench_doc["kind"] == "bench" and run_doc["kind"] == "run"
    assert bench_doc["plan"]["graph"]["ids"] == ["a", "b", "c", "d", "e"]
    assert bench_doc["plan"]["graph"]["preds"][3] == [0]
    assert bench_doc["data"]["trials"] and bench_doc["data"]["results"]


def test_schema_rejects_broken_documents(bench_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(bench_doc)
    doc["schema_version"] = 2
    doc["data"]["results"][0]["verdict"] = "fast"
    del doc["data"]["trials"][0]["wall_s"]
    errors = check_schema(doc)
    assert any(e.startswith("schema_version") for e in errors)
    assert any("results[0].verdict" in e for e in errors)
    assert any("trials[0]" in e and "wall_s" in e for e in errors)
    assert check_schema([]) != []


def test_untouched_evidence_recomputes_exactly(
    bench_doc: dict[str, Any], run_doc: dict[str, Any]
) -> None:
    assert recompute(bench_doc) == []
    assert recompute(run_doc) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("speedup", 3.8),
        ("cores_used", 7.0),
        ("verdict", "suspect"),
        ("lower_bound_s", 0.001),
        ("karp_flatt", 0.5),
        ("work_ratio", 2.0),
    ],
)
def test_an_edited_derived_number_is_caught(
    bench_doc: dict[str, Any], field: str, value: Any
) -> None:
    doc = copy.deepcopy(bench_doc)
    result = doc["data"]["results"][-1]
    assert result[field] != value
    result[field] = value
    problems = recompute(doc)
    assert len(problems) == 1, problems
    label = f"{result['backend']} ×{result['workers']}: {field}"
    assert problems[0].startswith(label), problems


def test_an_edited_ci_reason_or_baseline_is_caught(bench_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(bench_doc)
    doc["data"]["results"][0]["speedup_ci"][0] = 9.0
    doc["data"]["results"][0]["reasons"][0] = "trust me"
    doc["data"]["baseline"]["wall_s"] *= 0.5
    problems = "\n".join(recompute(doc))
    assert "speedup_ci[0]" in problems
    assert "reasons[0]" in problems
    assert "baseline (fake ×1): wall_s" in problems


def test_an_edited_raw_sample_is_caught(bench_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(bench_doc)
    measured = [t for t in doc["data"]["trials"] if not t["warmup"] and t["workers"] == 4]
    for t in measured:
        t["wall_s"] *= 4  # as if the 4-worker runs had been slow
    problems = recompute(doc)
    assert any(p.startswith("fake ×4: speedup is") for p in problems), problems
    assert any("recomputed from its samples" in p for p in problems)


def test_run_totals_are_recomputed(run_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(run_doc)
    doc["data"]["totals"]["cores_used"] = 3.5
    doc["data"]["totals"]["ok"] = 1
    doc["data"]["spans"][0]["duration_s"] += 1
    problems = recompute(doc)
    assert len(problems) == 3, problems
    assert any(p.startswith("totals: cores_used is 3.5 in the evidence") for p in problems)
    assert any(p.startswith("totals: ok is 1") for p in problems)
    assert any(p.startswith("span 0 (") for p in problems)


def test_garbage_cannot_crash_recompute(bench_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(bench_doc)
    doc["data"]["trials"][0]["op_s"] = "nope"
    problems = recompute(doc)
    assert len(problems) == 1 and problems[0].startswith(
        "not recomputed: the document does not conform"
    )
    assert recompute({"kind": "demo"})[0].startswith("not recomputed")


def test_secrets_are_redacted(run_doc: dict[str, Any]) -> None:
    text = json.dumps(run_doc)
    assert "sk-very-secret" not in text and "ghp_x" not in text
    env = next(op for op in run_doc["plan"]["ops"] if op["id"] == "b")["env"]
    assert env == {"API_KEY": "[redacted]", "GITHUB_TOKEN": "[redacted]", "LANG": "C"}


def test_python_callable_is_named_and_file_plan_is_hashed(tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text('[[op]]\nid = "s"\ntool = "sleep"\nseconds = 0\n')
    plan = truepar.load_plan(plan_file)
    trace = truepar.run(plan, backend="sequential")
    doc = run_evidence(trace, plan, started_utc=T0, ended_utc=T1)

    assert doc["plan"]["sha256"] == hashlib.sha256(plan_file.read_bytes()).hexdigest()
    py = truepar.Plan(ops=[truepar.PythonOp(id="p", call=len, args=([1, 2],))])
    section = plan_section(py)
    assert section["ops"][0]["call"] == "builtins:len"


def test_load_evidence_round_trips(tmp_path: Path, bench_doc: dict[str, Any]) -> None:
    path = tmp_path / "ev.json"
    path.write_text(json.dumps(bench_doc))
    assert load_evidence(path) == bench_doc


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "cannot read"),
        (b"", "truncated"),
        (b'{"schema_version": 1, "kind": "be', "truncated"),
        (b"hello world", "not JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"[1, 2]", "not an object"),
        (b'{"x": NaN}', "NaN"),
    ],
)
def test_unreadable_evidence_is_one_line_usage_error(
    tmp_path: Path, content: bytes | None, words: str
) -> None:
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(truepar.UsageError) as info:
        load_evidence(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and words in message
    assert isinstance(info.value, truepar.BadInput)
