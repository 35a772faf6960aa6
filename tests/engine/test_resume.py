"""``truepar.resume``: only what did not end ok runs again, and the trace says what was reused.

Real shell commands count their own runs in a log file, so "ran again" and "reused" are seen as
side effects, not only as what the trace claims. The fake backend's virtual clock shows that a
resumed run's measures are its own.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import truepar
from truepar.engine.resume import plan_resume
from truepar.plan.digest import plan_digest
from truepar.tools import BashOp, FakeSpec, HttpOp, SleepOp

MkPlan = Callable[..., truepar.Plan]


def logged(op_id: str, *, needs: str | None = None, **kw: Any) -> BashOp:
    """An op that appends its id to ``log``, then fails unless the file ``needs`` exists."""
    check = f" && test -f {needs}" if needs else ""
    return BashOp(id=op_id, argv=["sh", "-c", f"echo {op_id} >> log{check}"], **kw)


def runs(tmp_path: Path) -> dict[str, int]:
    """How many times each op ran, from the log."""
    counts: dict[str, int] = {}
    for op_id in (tmp_path / "log").read_text().split():
        counts[op_id] = counts.get(op_id, 0) + 1
    return counts


def fake(op_id: str, seconds: float, **kw: Any) -> SleepOp:
    return SleepOp(id=op_id, seconds=seconds, fake=FakeSpec(duration_s=seconds), **kw)


def save(tmp_path: Path, trace: truepar.RunTrace | dict[str, Any], name: str) -> Path:
    path = tmp_path / name
    data = trace.to_json() if isinstance(trace, truepar.RunTrace) else trace
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def failing(tmp_path: Path, mkplan: MkPlan) -> tuple[truepar.Plan, Path]:
    """a → b (fails until ``fixed`` exists) → c, and d beside them: run once, trace saved."""
    plan = mkplan(
        [
            logged("a"),
            logged("b", needs="fixed", after=["a"]),
            logged("c", after=["b"]),
            logged("d"),
        ],
        backend="sequential",
    )
    first = truepar.run(plan)
    assert {k: r.status.value for k, r in first.results.items()} == {
        "a": "ok",
        "b": "failed",
        "c": "skipped",
        "d": "ok",
    }
    return plan, save(tmp_path, first, "first.json")


def test_only_the_failed_op_and_what_depends_on_it_run_again(
    tmp_path: Path, failing: tuple[truepar.Plan, Path]
) -> None:
    plan, first = failing
    (tmp_path / "fixed").touch()
    trace = truepar.resume(plan, first)
    assert trace.ok and trace.totals.ok == 4 and trace.totals.failed == 0
    assert runs(tmp_path) == {"a": 1, "b": 2, "c": 1, "d": 1}
    resumed = trace.to_json()["resumed_from"]
    assert resumed["reused"] == ["a", "d"] and resumed["rerun"] == ["b", "c"]
    assert resumed["trace"] == str(first.resolve())
    assert resumed["plan_sha256"] == trace.plan_sha256 == plan_digest(plan)
    # This run's spans are the ops it ran; the reused ones are listed apart, with their clock.
    assert {s.op_id for s in trace.spans} == {"b", "c"}
    old = json.loads(first.read_text())
    assert {s["op_id"] for s in resumed["spans"]} == {"a", "d"}
    assert all(s["run_start_ns"] == old["start_ns"] for s in resumed["spans"])
    assert all(s["run_wall_anchor_unix_s"] == old["wall_anchor_unix_s"] for s in resumed["spans"])
    # Every op has its result, in plan order; a reused one is the trace's.
    assert list(trace.results) == ["a", "b", "c", "d"]
    assert trace.results["a"].summary == old["results"]["a"]["summary"]


def test_a_resumed_trace_can_be_resumed_and_keeps_each_spans_own_clock(
    tmp_path: Path, failing: tuple[truepar.Plan, Path]
) -> None:
    plan, first = failing
    second = truepar.resume(plan, first)  # b still fails
    assert not second.ok and second.resumed_from is not None
    assert second.resumed_from["rerun"] == ["b", "c"]
    (tmp_path / "fixed").touch()
    third = truepar.resume(plan, save(tmp_path, second, "second.json"))
    assert third.ok and runs(tmp_path) == {"a": 1, "b": 3, "c": 1, "d": 1}
    assert third.resumed_from is not None
    assert sorted(s["op_id"] for s in third.resumed_from["spans"]) == ["a", "d"]
    assert {s["run_start_ns"] for s in third.resumed_from["spans"]} == {
        json.loads(first.read_text())["start_ns"]
    }
    # Now everything is ok: nothing runs, nothing is measured, and it says so.
    fourth = truepar.resume(plan, third)
    assert fourth.ok and fourth.resumed_from is not None
    assert fourth.resumed_from["rerun"] == [] and fourth.resumed_from["reused"] == list("abcd")
    assert fourth.spans == () and fourth.totals.wall_s == 0 and fourth.totals.ok == 4
    assert runs(tmp_path) == {"a": 1, "b": 3, "c": 1, "d": 1}


def test_measures_are_the_resumed_runs_own(tmp_path: Path, mkplan: MkPlan) -> None:
    plan = mkplan([fake("slow", 5.0), fake("quick", 1.0), fake("after", 1.0, after="quick")])
    plan = plan.with_defaults(backend="fake")
    full = truepar.run(plan).to_json()
    assert full["totals"]["wall_s"] == pytest.approx(5.0)
    full["results"]["quick"]["status"] = "failed"
    trace = truepar.resume(plan, full)
    assert trace.resumed_from is not None and trace.resumed_from["reused"] == ["slow"]
    # Two seconds of work ran; the reused 5 s op neither lengthens nor crowds the measures.
    assert trace.totals.wall_s == pytest.approx(2.0)
    assert trace.totals.sum_op_s == pytest.approx(2.0)
    assert trace.totals.avg_concurrency == pytest.approx(1.0)
    assert trace.totals.ops == 3 and trace.totals.ok == 3


def test_an_interrupted_runs_unstarted_ops_run_again(tmp_path: Path, mkplan: MkPlan) -> None:
    plan = mkplan([logged("a"), logged("b"), logged("c", after=["b"])], backend="sequential")
    data = truepar.run(plan).to_json()
    # As an interrupted run leaves it: b cancelled before it started, c never recorded.
    data["status"], data["interrupted"] = "interrupted", True
    data["results"]["b"] = {"op_id": "b", "status": "cancelled", "attempts": 0}
    del data["results"]["c"]
    trace = truepar.resume(plan, save(tmp_path, data, "interrupted.json"))
    assert trace.ok and runs(tmp_path) == {"a": 1, "b": 2, "c": 2}
    assert trace.resumed_from is not None and trace.resumed_from["rerun"] == ["b", "c"]


def test_an_op_ordered_after_a_failed_one_by_a_conflict_runs_again(
    tmp_path: Path, mkplan: MkPlan
) -> None:
    writer = BashOp(id="w", argv=["sh", "-c", "echo w >> log"], writes=["out"])
    reader = BashOp(id="r", argv=["sh", "-c", "echo r >> log"], reads=["out"])
    plan = mkplan([writer, reader, logged("x")], backend="sequential")
    data = truepar.run(plan).to_json()
    # r read what w wrote: when w runs again, what r read is gone, so r runs again too.
    data["results"]["w"]["status"] = "failed"
    trace = truepar.resume(plan, data)
    assert trace.resumed_from is not None and trace.resumed_from["rerun"] == ["w", "r"]
    assert runs(tmp_path) == {"w": 2, "r": 2, "x": 1}


def test_the_trace_of_another_plan_is_refused(
    tmp_path: Path, failing: tuple[truepar.Plan, Path], mkplan: MkPlan
) -> None:
    _, first = failing
    other = mkplan([logged("a"), logged("b", after=["a"]), logged("c"), logged("d")])
    with pytest.raises(truepar.UsageError, match=r"trace of another plan.*plan sha256") as caught:
        truepar.resume(other, first)
    assert "\n" not in str(caught.value)
    assert runs(tmp_path) == {"a": 1, "b": 1, "d": 1}  # nothing ran


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "no such file"),
        ("{not json", "not JSON"),
        ('{"format": "truepar.bench"}', "not a run trace"),
        ("[1, 2]", "not a run trace"),
    ],
)
def test_a_trace_that_is_not_one_is_refused_in_one_line(
    tmp_path: Path, mkplan: MkPlan, content: str | None, words: str
) -> None:
    path = tmp_path / "trace.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(truepar.UsageError, match=words) as caught:
        truepar.resume(mkplan([logged("a")]), path)
    assert "\n" not in str(caught.value) and "trace.json" in str(caught.value)


def test_a_trace_without_a_plan_digest_is_refused(
    tmp_path: Path, failing: tuple[truepar.Plan, Path]
) -> None:
    plan, first = failing
    data = json.loads(first.read_text())
    del data["plan_sha256"]
    with pytest.raises(truepar.UsageError, match="no plan digest"):
        truepar.resume(plan, data)


def test_the_digest_is_the_plans_content_not_its_file(tmp_path: Path) -> None:
    text = 'name = "p"\n[[op]]\nid = "a"\ntool = "sleep"\nseconds = 0.1\n'
    (tmp_path / "one.toml").write_text(text)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "two.toml").write_text("# a comment\n\n" + text.replace(" = ", "="))
    (tmp_path / "three.toml").write_text(text.replace("0.1", "0.2"))
    one, two, three = (
        plan_digest(truepar.load_plan(tmp_path / p))
        for p in ("one.toml", "sub/two.toml", "three.toml")
    )
    assert one == two != three
    assert len(one) == 64


def test_the_digest_keeps_no_secret(mkplan: MkPlan) -> None:
    def plan(token: str) -> truepar.Plan:
        op = HttpOp(id="h", url="https://example.org", headers={"Authorization": token})
        return mkplan([op])

    # A rotated token leaves the plan the same plan, and no guess can be tested against it.
    assert plan_digest(plan("Bearer s3cret-one")) == plan_digest(plan("Bearer s3cret-two"))


def test_a_run_trace_object_and_a_runs_evidence_resume_alike(
    tmp_path: Path, failing: tuple[truepar.Plan, Path]
) -> None:
    plan, first = failing
    data = json.loads(first.read_text())
    evidence = save(tmp_path, {"kind": "run", "data": data, "plan": {}}, "evidence.json")
    from_evidence = plan_resume(plan, evidence)
    from_json = plan_resume(plan, copy.deepcopy(data))
    assert from_evidence.rerun == from_json.rerun == ("b", "c")
    assert from_evidence.reduced_plan().ops[0].after == ()  # its `after` a is done already


def test_a_python_ops_arguments_count_in_the_digest(mkplan: MkPlan) -> None:
    def plan(*args: Any) -> truepar.Plan:
        return mkplan([truepar.PythonOp(id="p", call="math:fsum", args=args)])

    assert plan_digest(plan([1, 2])) == plan_digest(plan([1, 2]))
    assert plan_digest(plan([1, 2])) != plan_digest(plan([1, 3]))
    # A lambda does not pickle: it counts by its repr, and the digest is still made.
    assert len(plan_digest(plan(lambda x: x))) == 64
