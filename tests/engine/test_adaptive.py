"""Adaptive resources: the cap halves on a 429/503 and climbs back, by the documented AIMD rule.

The rule itself runs on the fake backend (a virtual clock: exact, the same every time); one
test runs real ``http`` ops against a local server that answers 429 past K requests in flight.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import truepar
from helpers.http_server import no_proxy, serving
from helpers.plans import make_plan, overlaps
from helpers.throttle import Crowd, Script
from truepar import FakeSpec, Resource, SleepOp
from truepar.engine.adaptive import AdaptiveLimit
from truepar.errors import PlanError
from truepar.evidence.build import run_evidence
from truepar.evidence.read import check_schema
from truepar.plan.load import plan_from_dict
from truepar.tools.http import HttpOp


def fake(op_id: str, duration: float = 1.0, **spec: object) -> SleepOp:
    return SleepOp(
        id=op_id,
        seconds=duration,
        resource="api",
        retries=1,
        fake=FakeSpec(duration_s=duration, **spec),  # type: ignore[arg-type]
    )


def run_fake(tmp_path: Path, ops: list[SleepOp], cap: int = 8) -> truepar.RunTrace:
    resources = {"api": Resource(max_concurrent=cap, adaptive=True)}
    plan = make_plan(tmp_path, ops, backend="fake", workers=8, resources=resources)
    return truepar.run(plan)


def steps(trace: truepar.RunTrace) -> list[tuple[str, int, int, float]]:
    """Each change of the limit: (action, before, after, seconds since the run started)."""
    assert trace.adaptive is not None
    return [
        (e["action"], e["limit_before"], e["limit"], (e["at_ns"] - trace.start_ns) / 1e9)
        for e in trace.adaptive["api"]["events"]
    ]


def test_halves_once_per_window_then_recovers(tmp_path: Path) -> None:
    """12 ops of 1 s, each throttled on its first attempt, on max_concurrent 8: the first wave
    of 8 halves the limit once (not eight times), the wave sent at 4 halves it again, and the
    retries, unthrottled, raise it by one per full window of successes."""
    trace = run_fake(tmp_path, [fake(f"s{i}", throttled=1) for i in range(12)])
    assert trace.ok
    assert steps(trace) == [
        ("decrease", 8, 4, 1.0),  # s0..s7, sent together at 0, end throttled at 1
        ("decrease", 4, 2, 2.0),  # s8..s11, sent at 1 under the limit of 4
        ("increase", 2, 3, 3.0),  # 2 clean retries in a row
        ("increase", 3, 4, 4.0),  # then 3
        ("increase", 4, 5, 5.0),  # then 4
    ]
    section = trace.to_json()["adaptive"]["api"]
    assert section["max_concurrent"] == 8
    assert (section["final_limit"], section["lowest_limit"]) == (5, 2)
    assert section["throttled_attempts"] == 12
    # What started after the first decrease never ran more than the limit allowed.
    later = [s for s in trace.spans if s.start_ns - trace.start_ns >= 1e9]
    assert overlaps(later) <= 4
    waited = {s.waited_for for s in trace.spans if s.attempt == 1 and s.op_id == "s8"}
    assert waited == {"resource api (adaptive limit 4 of max_concurrent 8)"}


def test_recovers_all_the_way(tmp_path: Path) -> None:
    ops = [fake("t0", throttled=1)] + [fake(f"c{i}") for i in range(40)]
    trace = run_fake(tmp_path, ops, cap=4)
    assert trace.ok
    actions = steps(trace)
    assert actions[0][:3] == ("decrease", 4, 2)
    assert [a[1:3] for a in actions[1:]] == [(2, 3), (3, 4)]
    assert trace.adaptive is not None
    assert trace.adaptive["api"]["final_limit"] == 4


def test_never_below_one(tmp_path: Path) -> None:
    ops = [fake(f"s{i}", throttled=1) for i in range(3)]
    trace = run_fake(tmp_path, ops, cap=1)
    assert trace.ok
    assert trace.adaptive is not None
    assert trace.adaptive["api"]["events"] == []
    assert trace.adaptive["api"]["lowest_limit"] == 1
    assert trace.adaptive["api"]["throttled_attempts"] == 3


def test_other_failures_change_nothing(tmp_path: Path) -> None:
    trace = run_fake(tmp_path, [fake(f"s{i}", fail=1) for i in range(10)], cap=4)
    assert trace.ok
    assert steps(trace) == []


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        # (throttled, ok, dispatched_ns, now_ns) per attempt → limits after each
        ([(1, False, 0, 10), (1, False, 5, 11), (1, False, 12, 13)], [4, 4, 2]),
        ([(1, False, 0, 10)] + [(0, True, 20, 30)] * 4, [4, 4, 4, 4, 5]),
        ([(1, False, 0, 10)] + [(0, True, 20, 30)] * 3 + [(0, False, 20, 30)], [4, 4, 4, 4, 4]),
        (
            [(1, False, 0, 10), (0, True, 20, 30), (1, True, 5, 31)] + [(0, True, 40, 50)] * 4,
            [4, 4, 4, 4, 4, 4, 5],
        ),
    ],
)
def test_the_rule(events: list[tuple[int, bool, int, int]], expected: list[int]) -> None:
    """Decrease once per window; +1 per `limit` clean successes in a row; a throttled answer
    (even from an attempt sent before the cut) restarts the count; other failures do not."""
    limit = AdaptiveLimit(8)
    seen = []
    for throttled, ok, dispatched, now in events:
        limit.observe("op", 1, throttled, ok, dispatched, now)
        seen.append(limit.limit)
    assert seen == expected


def test_plans_without_it_keep_their_trace(tmp_path: Path) -> None:
    ops = [fake(f"s{i}", throttled=1) for i in range(4)]
    plan = make_plan(tmp_path, ops, backend="fake", resources={"api": Resource(max_concurrent=2)})
    trace = truepar.run(plan)
    assert trace.adaptive is None
    assert "adaptive" not in trace.to_json()


def test_needs_a_cap(tmp_path: Path) -> None:
    raw = {
        "resources": {"api": {"adaptive": True}},
        "op": [{"id": "a", "tool": "sleep", "seconds": 0, "resource": "api"}],
    }
    with pytest.raises(PlanError, match="adaptive = true needs max_concurrent"):
        plan_from_dict(raw, source="plan.toml", base_dir=tmp_path)


def test_the_evidence_schema_takes_it(tmp_path: Path) -> None:
    ops = [fake(f"s{i}", throttled=1) for i in range(4)]
    plan = make_plan(
        tmp_path,
        ops,
        backend="fake",
        resources={"api": Resource(max_concurrent=4, adaptive=True)},
    )
    doc = run_evidence(truepar.run(plan), plan, started_utc="x", ended_utc="y")
    assert check_schema(json.loads(json.dumps(doc))) == []
    assert doc["data"]["adaptive"]["api"]["events"][0]["action"] == "decrease"


def test_real_http_ops_back_off_and_recover(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """40 ops at a server that serves 3 at a time (50 ms each) and answers 429 past that, with
    ``Retry-After: 0.2``, on an adaptive resource of 8: every op succeeds, and the limit halves
    and climbs back. (The server's pace bounds how fast the run can go, so a faster machine
    still has ops left to show the recovery.)"""
    no_proxy(monkeypatch)
    crowd = Crowd(limit=3, hold_s=0.05, retry_after="0.2")
    with serving(crowd.handler()) as port:
        ops = [
            HttpOp(
                id=f"h{i}",
                url=f"http://127.0.0.1:{port}/{i}",
                resource="api",
                retries=3,
                retry_after_attempts=10,
            )
            for i in range(40)
        ]
        plan = make_plan(
            tmp_path,
            ops,
            workers=8,
            resources={"api": Resource(max_concurrent=8, adaptive=True)},
            retry_backoff_s=0.05,
        )
        trace = truepar.run(plan)
    assert trace.ok, [r.error for r in trace.results.values() if r.error]
    assert crowd.throttled >= 1  # 8 sent at once to a server of 3
    assert crowd.most_served <= 3
    assert trace.adaptive is not None
    section = trace.adaptive["api"]
    events = section["events"]
    assert (events[0]["action"], events[0]["limit_before"], events[0]["limit"]) == (
        "decrease",
        8,
        4,
    )
    assert any(e["action"] == "increase" for e in events)
    for e in events:
        if e["action"] == "decrease":
            assert e["limit"] == max(1, e["limit_before"] // 2)
        else:
            assert e["limit"] == e["limit_before"] + 1
    assert section["throttled_attempts"] >= 1
    assert any("× 429, waited " in s.summary for s in trace.spans)


def test_the_signal_reaches_the_scheduler_on_every_backend(
    backend: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A 429 seen in a thread, on the loop or in a worker process (pickled back) lowers the
    limit all the same."""
    no_proxy(monkeypatch)
    script = Script((429, {}), (429, {"Retry-After": "0"}))
    with serving(script.handler()) as port:
        ops = [
            HttpOp(id=f"h{i}", url=f"http://127.0.0.1:{port}/", resource="api", retries=1)
            for i in range(2)
        ]
        resources = {"api": Resource(max_concurrent=2, adaptive=True)}
        plan = make_plan(tmp_path, ops, backend=backend, resources=resources, retry_backoff_s=0)
        trace = truepar.run(plan)
    assert trace.ok
    assert trace.adaptive is not None
    assert trace.adaptive["api"]["throttled_attempts"] == 2
    assert [e["action"] for e in trace.adaptive["api"]["events"]][:1] == ["decrease"]
    assert trace.adaptive["api"]["lowest_limit"] == 1
