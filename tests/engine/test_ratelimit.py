"""Rate limits at dispatch: exact schedules on the virtual clock, real requests to a local server,
and one limit shared by two truepar processes through a SQLite file."""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

import truepar
from helpers.plans import make_plan
from truepar import FakeSpec, HttpOp, PlanError, Resource, SleepOp, Status, UsageError
from truepar.engine import ratelimit
from truepar.engine.ratelimit import RateGate

EPS = 1e-9


def fake(op_id: str, duration: float, **kw: Any) -> SleepOp:
    spec = {k.removeprefix("fake_"): v for k, v in kw.items() if k.startswith("fake_")}
    rest = {k: v for k, v in kw.items() if not k.startswith("fake_")}
    return SleepOp(id=op_id, seconds=duration, fake=FakeSpec(duration_s=duration, **spec), **rest)


def starts(trace: truepar.RunTrace, prefix: str = "") -> list[float]:
    """Start times (seconds since the run began) of every attempt of ops named ``prefix...``."""
    return sorted(
        (s.start_ns - trace.start_ns) / 1e9 for s in trace.spans if s.op_id.startswith(prefix)
    )


def most_in_window(times: list[float], window_s: float, weights: list[int] | None = None) -> int:
    """The largest total weight of events in any half-open window ``[t, t + window_s)``."""
    events = sorted(zip(times, weights or [1] * len(times), strict=True))
    best = total = lo = 0
    for hi in range(len(events)):
        total += events[hi][1]
        while events[hi][0] - events[lo][0] >= window_s:
            total -= events[lo][1]
            lo += 1
        best = max(best, total)
    return best


# -- the virtual clock: exact schedules -----------------------------------------------------------


def test_per_second_paces_starts_and_leaves_other_ops_alone(tmp_path: Path) -> None:
    ops = [fake(f"api{i}", 0.1, resource="api") for i in range(7)]
    ops += [fake(f"free{i}", 0.5) for i in range(3)]
    plan = make_plan(
        tmp_path, ops, backend="fake", workers=8, resources={"api": Resource(per_second=2)}
    )
    trace = truepar.run(plan)
    assert trace.ok
    # Two at once, then two more as soon as the first two leave the 1 s window (pyrate-limiter
    # waits one millisecond past the window's inclusive edge).
    assert starts(trace, "api") == pytest.approx([0, 0, 1.001, 1.001, 2.002, 2.002, 3.003])
    assert starts(trace, "free") == [0.0, 0.0, 0.0]  # never held back by api's limit
    late = [s for s in trace.spans if s.op_id.startswith("api") and s.start_ns > trace.start_ns]
    assert all(s.waited_for == "rate limit api (2/s)" for s in late)


def test_cost_weighs_each_op(tmp_path: Path) -> None:
    ops = [fake(f"s{i}", 0.01, resource="gh", cost=2) for i in range(4)]
    plan = make_plan(
        tmp_path, ops, backend="fake", workers=4, resources={"gh": Resource(per_minute=5)}
    )
    trace = truepar.run(plan)
    # 2 + 2 fit in a minute; a third 2 would make 6 > 5.
    assert starts(trace) == pytest.approx([0, 0, 60.001, 60.001])


def test_tokens_per_minute(tmp_path: Path) -> None:
    ops = [fake(f"llm{i}", 1.0, resource="llm", tokens=400) for i in range(5)]
    ops.append(fake("tiny", 0.1, resource="llm", tokens=0, cost=0))
    plan = make_plan(
        tmp_path,
        ops,
        backend="fake",
        workers=8,
        resources={"llm": Resource(tokens_per_minute=1000)},
    )
    trace = truepar.run(plan)
    assert trace.ok
    assert starts(trace, "llm") == pytest.approx([0, 0, 60.001, 60.001, 120.002])
    assert starts(trace, "tiny") == [0.0]  # no tokens, no cost: never waits


def test_requests_and_tokens_together(tmp_path: Path) -> None:
    ops = [fake(f"c{i}", 0.5, resource="llm", tokens=300) for i in range(6)]
    resource = Resource(per_second=1, tokens_per_minute=1000)
    plan = make_plan(tmp_path, ops, backend="fake", workers=8, resources={"llm": resource})
    trace = truepar.run(plan)
    times = starts(trace)
    assert most_in_window(times, 1.0) <= 1
    assert most_in_window(times, 60.0) * 300 <= 1000
    assert times[:3] == pytest.approx([0, 1.001, 2.002])
    assert times[3] >= 60  # the fourth 300 tokens would make 1200 in the first minute


def test_never_more_than_the_limit_in_any_window(tmp_path: Path) -> None:
    """Mixed durations, costs, a cap and retries: every window of every limit stays within it."""
    ops = [
        fake(f"o{i}", 0.05 * (i % 5 + 1), resource="api", cost=1 + i % 3, fake_fail=i % 4 == 0)
        for i in range(40)
    ]
    resource = Resource(per_second=4, per_minute=50, max_concurrent=3)
    plan = make_plan(
        tmp_path, ops, backend="fake", workers=8, resources={"api": resource}, retries=1
    )
    trace = truepar.run(plan)
    assert trace.ok
    spans = sorted(trace.spans, key=lambda s: s.start_ns)
    times = [(s.start_ns - trace.start_ns) / 1e9 for s in spans]
    weights = [1 + int(s.op_id[1:]) % 3 for s in spans]  # every attempt is a request
    assert len(spans) == 50  # ten ops failed once and were retried
    assert most_in_window(times, 1.0, weights) <= 4
    assert most_in_window(times, 60.0, weights) <= 50
    assert max(times) > 60  # the minute limit did bind


def test_fail_fast_cancels_ops_parked_on_the_rate(tmp_path: Path) -> None:
    ops = [fake("bad", 0.5, fake_fail=-1)] + [fake(f"r{i}", 0.1, resource="r") for i in range(5)]
    plan = make_plan(
        tmp_path,
        ops,
        backend="fake",
        workers=8,
        resources={"r": Resource(per_minute=1)},
        on_error="fail-fast",
    )
    trace = truepar.run(plan)
    assert trace.results["r0"].status is Status.OK
    assert {trace.results[f"r{i}"].status for i in range(1, 5)} == {Status.CANCELLED}
    assert trace.totals.wall_s == pytest.approx(0.5, abs=EPS)  # no timer left to wait for


def test_plan_check_refuses_an_op_that_could_never_start(tmp_path: Path) -> None:
    with pytest.raises(
        PlanError,
        match=r"op 'big' field 'cost': cost 5 exceeds the limit of resource 'api' \(2 per 1 s\)",
    ):
        make_plan(
            tmp_path,
            [SleepOp(id="big", seconds=0, resource="api", cost=5)],
            resources={"api": Resource(per_second=2, per_minute=100)},
        )
    with pytest.raises(
        PlanError,
        match=r"field 'tokens': tokens 5000 exceed the tokens_per_minute = 4000 of resource",
    ):
        make_plan(
            tmp_path,
            [SleepOp(id="big", seconds=0, resource="llm", tokens=5000)],
            resources={"llm": Resource(tokens_per_minute=4000)},
        )


def test_fractional_and_redundant_rates() -> None:
    assert Resource(per_second=2.5).request_windows() == ((5, 2000),)
    assert Resource(per_second=10, per_minute=1000).request_windows() == ((10, 1000),)
    assert Resource(per_second=10, per_minute=10).request_windows() == ((10, 60_000),)
    assert Resource(per_second=10, per_hour=5000).request_windows() == (
        (10, 1000),
        (5000, 3_600_000),
    )
    assert not Resource(max_concurrent=2).has_budget
    assert Resource(per_hour=1).has_budget and Resource(provider="github").has_budget


def test_limiter_file_needs_a_real_clock(tmp_path: Path) -> None:
    plan = make_plan(
        tmp_path,
        [SleepOp(id="a", seconds=0, resource="api")],
        backend="fake",
        resources={"api": Resource(per_second=1, limiter_file="limits.sqlite")},
    )
    with pytest.raises(UsageError, match=r"limiter_file.*fake backend"):
        truepar.run(plan)


# -- real requests to a local server ---------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    arrivals: dict[str, float]

    def do_GET(self) -> None:
        self.arrivals[self.path.lstrip("/")] = time.time()  # by the path: the op it is
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, float]]]:
    arrivals: dict[str, float] = {}
    handler = type("Handler", (_Recorder,), {"arrivals": arrivals})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", arrivals
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


class Dispatches(truepar.Observer):
    """When the scheduler let each op go, by the op's number: ``op_started`` is called right
    after the limiter."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    def op_started(self, op_id: str, attempt: int) -> None:
        self.times[op_id.lstrip("get")] = time.time()


@pytest.fixture
def limiter_log(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """Each in-memory gate's log as it closes: the millisecond stamps of what it let through.

    These, not the observer's clock, are what the limit is about: the observer runs after the
    limiter on the scheduler's thread, and worker threads holding the GIL (building a TLS
    context, say) can make it late by more than a window's edge.
    """
    logs: dict[str, list[int]] = {}
    close = RateGate.close

    def snapshot(gate: RateGate) -> None:
        counter = gate._requests
        assert counter is not None
        logs[gate.name] = sorted(item.timestamp for item in counter.bucket.items)  # type: ignore[attr-defined]
        close(gate)

    monkeypatch.setattr(RateGate, "close", snapshot)
    return logs


def sent_before_let_go(dispatched: dict[str, float], arrived: dict[str, float]) -> list[str]:
    """Requests the server saw before the scheduler let their op go (``op_started`` comes
    after the limiter, before the backend sends anything): none may be.

    With the limiter's own stamps checked exactly, this is what the server's side can show on
    any machine: every request it saw was let go by the limiter first. How close together they
    arrive also depends on delivery (a worker thread picks each one up and builds its HTTP
    client first, 0.06–0.23 s on this 2-core machine, more under load), which no client-side
    limiter controls, so the server's own windows are not asserted."""
    assert dispatched.keys() == arrived.keys()
    return sorted(k for k in dispatched if arrived[k] < dispatched[k])


def test_load_real_requests_stay_under_the_limit(
    tmp_path: Path, server: tuple[str, list[float]], limiter_log: dict[str, list[int]]
) -> None:
    url, arrivals = server
    n, rate = 30, 10
    ops = [HttpOp(id=f"get{i}", url=f"{url}/{i}", resource="api") for i in range(n)]
    plan = make_plan(
        tmp_path, ops, backend="threads", workers=8, resources={"api": Resource(per_second=rate)}
    )
    seen = Dispatches()
    trace = truepar.run(plan, observer=seen)
    assert trace.ok
    counted = limiter_log["api"]
    assert len(arrivals) == len(seen.times) == len(counted) == n
    assert most_in_window(counted, 1000) <= rate  # milliseconds, exactly
    assert sent_before_let_go(seen.times, arrivals) == []
    # Bursts of 10 at 0, 1 and 2 s: the last cannot go before 2 s.
    assert counted[-1] - counted[0] >= 1000 * (math.ceil(n / rate) - 1)


SHARED_RUN = textwrap.dedent(
    """
    import sys, time
    import truepar
    from truepar import Defaults, HttpOp, Plan, Resource

    url, db, start, who = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    plan = Plan(
        name=who,
        ops=[HttpOp(id=f"{who}{i}", url=f"{url}/{who}/{i}", resource="api") for i in range(10)],
        resources={"api": Resource(per_second=5, limiter_file=db)},
        defaults=Defaults(backend="threads", workers=4),
    )
    class Dispatches(truepar.Observer):
        def op_started(self, op_id, attempt):
            print(op_id, time.time())

    time.sleep(max(0.0, start - time.time()))  # both processes start their runs together
    trace = truepar.run(plan, observer=Dispatches())
    print(trace.status.value)
    """
)


def test_two_processes_share_one_limit(tmp_path: Path, server: tuple[str, list[float]]) -> None:
    url, arrivals = server
    db = tmp_path / "limits.sqlite"
    start = time.time() + 4.0  # after both have imported truepar
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SHARED_RUN, url, str(db), str(start), who],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for who in ("a", "b")
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    lines = [o.splitlines() for o, _ in outs]
    assert [out[-1] for out in lines] == ["ok", "ok"]
    dispatched = {
        op_id[:1] + "/" + op_id[1:]: float(t)
        for out in lines
        for op_id, t in (line.split() for line in out[:-1])
    }
    assert len(dispatched) == len(arrivals) == 20
    # Alone, each process would send 5/s and together 10/s; sharing the file, 5/s in all. The
    # shared log holds every dispatch of both, stamped in milliseconds under its file lock.
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            f"SELECT item_timestamp FROM {ratelimit._table('api', 'requests')}"
        ).fetchall()
    counted = sorted(stamp for (stamp,) in rows)
    assert len(counted) == 20
    assert most_in_window(counted, 1000) <= 5
    assert sent_before_let_go(dispatched, arrivals) == []
    assert counted[-1] - counted[0] >= 3000  # bursts of 5 at 0, 1, 2 and 3 s


def test_a_shared_log_stamps_an_op_when_it_holds_the_lock(tmp_path: Path) -> None:
    """While another process holds the log's file lock, an op is not counted yet: its stamp is
    taken once the lock is free, never before the wait (it would count it earlier than it goes)."""

    db = tmp_path / "limits.sqlite"
    # A shared log keeps the wall clock, whatever clock the gate is given.
    gate = RateGate("api", Resource(per_second=5), now_ms=lambda: 0, shared_file=db)
    other = FileLock(f"{db}.lock")  # flock: it excludes this process's gate as another's would
    released: list[int] = []
    with other:
        taker = threading.Thread(target=lambda: gate.acquire(fake("op", 0.1, resource="api")))
        taker.start()
        taker.join(0.3)
        assert taker.is_alive()  # waiting for the lock, nothing counted
        released.append(time.time_ns() // 1_000_000)
    taker.join(10)
    gate.close()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        (stamp,) = conn.execute(f"SELECT item_timestamp FROM {ratelimit._table('api', 'requests')}")
    assert stamp[0] >= released[0]
