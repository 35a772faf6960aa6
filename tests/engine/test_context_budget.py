"""The context budget on the fake backend: thresholds act at exact, deterministic points."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import truepar
from helpers.cli import truepar as truepar_cli
from helpers.plans import make_plan
from truepar import FakeSpec, PlanError, SleepOp, Status
from truepar.engine.context_budget import truncate_value


def op(op_id: str, tokens: int, *, duration: float = 1.0, **kw: Any) -> SleepOp:
    """A fake op whose result is ``tokens`` tokens long (4 bytes each)."""
    value = "x" * (4 * tokens)
    spec = FakeSpec(duration_s=duration, bytes_out=4 * tokens, value=value)
    return SleepOp(id=op_id, seconds=duration, fake=spec, **kw)


def starts(trace: truepar.RunTrace) -> dict[str, float]:
    return {s.op_id: (s.start_ns - trace.start_ns) / 1e9 for s in trace.spans}


def test_thresholds_lower_truncate_stop(tmp_path: Path) -> None:
    ops = [op(f"s{i}", 100, max_output_tokens=50) for i in range(12)]
    plan = make_plan(tmp_path, ops, backend="fake", workers=4, context_tokens=1000)
    trace = truepar.run(plan)

    events = trace.context["events"] if trace.context else []
    assert [(e["action"], e["used_tokens"]) for e in events] == [
        ("lower", 700),  # the 7th result of 100 tokens reaches 70 %
        ("truncate", 900),
        ("stop", 950),  # the 10th came back cut to 50 tokens: 950 = 95 %
    ]
    # s4..s7 end together at t = 2 (their order is the virtual loop's, fixed but arbitrary).
    assert events[0]["after_op"] in {"s4", "s5", "s6", "s7"}
    assert events[0]["workers_before"] == 4 and events[0]["workers"] == 2
    # Four at a time until the cap halved at t = 2; then two at a time.
    t = starts(trace)
    assert [t[f"s{i}"] for i in range(11)] == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3]

    by_id = {s.op_id: s for s in trace.spans}
    assert [i for i in range(11) if by_id[f"s{i}"].truncated] == [9, 10]
    assert by_id["s9"].tokens_out == 100  # what the op produced; its result was cut
    assert len(trace.results["s9"].value) == 200 and len(trace.results["s8"].value) == 400
    assert "cut to 50 tokens" in trace.results["s9"].summary

    # s10 was running when the budget ran out: it finished. s11 never started.
    assert trace.results["s10"].status is Status.OK
    skipped = trace.results["s11"]
    assert skipped.status is Status.SKIPPED
    assert skipped.error == "not run: the context budget is spent (950 of 1000 tokens, stop_at 95%)"
    assert trace.status is truepar.RunStatus.FAILED
    assert trace.context is not None and trace.context["used_tokens"] == 1000

    handoff = trace.handoff
    assert handoff is not None
    assert [f["id"] for f in handoff["finished"]] == [f"s{i}" for i in range(11)]
    assert handoff["remaining"] == [{"id": "s11", "tool": "sleep", "after": []}]
    assert handoff["summary"].startswith("Context budget reached: 1000 of 1000 tokens")
    data = trace.to_json()
    assert data["handoff"] == json.loads(json.dumps(handoff))
    assert data["context"]["budget_tokens"] == 1000


def test_stop_skips_what_is_downstream_and_everything_not_started(tmp_path: Path) -> None:
    ops = [
        op("big", 96, duration=1.0),
        op("slow", 1, duration=5.0),
        op("next", 1, after="big"),
        op("later", 1, after="slow"),
    ]
    plan = make_plan(tmp_path, ops, backend="fake", workers=4, context_tokens=100)
    trace = truepar.run(plan)
    assert {k: r.status for k, r in trace.results.items()} == {
        "big": Status.OK,
        "slow": Status.OK,  # running at the stop: it finishes
        "next": Status.SKIPPED,
        "later": Status.SKIPPED,
    }
    assert trace.handoff is not None
    assert [r["id"] for r in trace.handoff["remaining"]] == ["next", "later"]
    assert trace.totals.wall_s == pytest.approx(5.0)


def test_ops_without_max_output_tokens_are_kept_whole(tmp_path: Path) -> None:
    ops = [op(f"s{i}", 100) for i in range(4)]
    plan = make_plan(
        tmp_path,
        ops,
        backend="fake",
        workers=1,
        context_tokens=10_000,
        lower_at=0.01,
        truncate_at=0.01,
    )
    trace = truepar.run(plan)
    assert trace.ok
    assert not any(s.truncated for s in trace.spans)
    assert trace.context is not None and trace.context["used_tokens"] == 400
    assert trace.handoff is None


def test_configurable_thresholds(tmp_path: Path) -> None:
    ops = [op(f"s{i}", 10) for i in range(10)]
    plan = make_plan(
        tmp_path,
        ops,
        backend="fake",
        workers=1,
        context_tokens=100,
        lower_at=0.2,
        truncate_at=0.5,
        stop_at=0.5,
    )
    trace = truepar.run(plan)
    assert trace.context is not None
    assert [(e["action"], e["used_tokens"]) for e in trace.context["events"]] == [
        ("lower", 20),
        ("truncate", 50),
        ("stop", 50),
    ]
    assert [r.status for r in trace.results.values()].count(Status.SKIPPED) == 5


def test_thresholds_are_validated(tmp_path: Path) -> None:
    data = {
        "defaults": {"backend": "fake", "context_tokens": 100, "lower_at": 0.9, "truncate_at": 0.5},
        "op": [{"id": "a", "tool": "sleep", "seconds": 1}],
    }
    with pytest.raises(PlanError, match=r"lower_at <= truncate_at <= stop_at <= 1, not 0.9, 0.5"):
        truepar.plan_from_dict(data, source="plan.toml", base_dir=tmp_path)
    bad = {**data, "defaults": {"stop_at": 1.5}}
    with pytest.raises(PlanError, match=r"field 'defaults.stop_at'"):
        truepar.plan_from_dict(bad, source="plan.toml", base_dir=tmp_path)


def test_no_budget_leaves_the_trace_as_it_was(tmp_path: Path) -> None:
    trace = truepar.run(make_plan(tmp_path, [op("a", 10)], backend="fake"))
    data = trace.to_json()
    assert not {"context", "handoff", "budget"} & set(data)
    assert trace.context is None and trace.handoff is None


def test_truncate_value() -> None:
    assert truncate_value("abcdef", 4) == "abcd"
    assert truncate_value(b"abcdef", 2) == b"ab"
    assert truncate_value("é" * 3, 3) == "é"  # never half a character
    assert truncate_value({"path": "a.txt", "content": "x" * 10, "size": 10}, 8) == {
        "path": "a.txt",
        "content": "xxx",
        "size": 10,
    }
    assert truncate_value(["ab", ("cd", "ef"), 7], 3) == ["ab", ("c", ""), 7]


def test_run_json_carries_the_handoff(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[defaults]\nbackend = "fake"\nworkers = 1\ncontext_tokens = 10\n'
        + "".join(
            f'[[op]]\nid = "r{i}"\ntool = "sleep"\nseconds = 1\n'
            f"fake = {{ duration_s = 1, bytes_out = 40 }}\n"
            for i in range(3)
        )
    )
    out = tmp_path / "trace.json"
    proc = truepar_cli("run", str(plan), "--json", str(out), "--quiet")
    assert proc.returncode == 1, proc.stderr
    data = json.loads(out.read_text())
    assert [r["id"] for r in data["handoff"]["remaining"]] == ["r1", "r2"]
    assert data["results"]["r1"]["status"] == "skipped"
