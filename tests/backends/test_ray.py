"""The ``ray`` backend on real Ray: the conformance suite on a local instance started once for
this module (2 CPUs, one custom resource, a small object store), then Ray's own promises —
batching, clocks, cores used, lost actors, resource requests. Clusters of their own (two nodes,
a head that dies, an address where nothing listens) are in test_ray_cluster.py.

Skipped, with the reason, only where Ray cannot be imported; under CI (``CI`` set) that is an
error instead, so a CI machine missing Ray cannot pass by skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import truepar
from helpers.plans import make_plan, overlaps, write_module
from helpers.ray import require_ray
from truepar import PythonOp, SleepOp
from truepar.backends.ray import batching, clocks, disconnect
from truepar.backends.ray.backend import DURATIONS
from truepar.backends.ray.pool import placement
from truepar.backends.ray.session import ENV_ADDRESS, resolve_address
from truepar.testing.conformance import *  # noqa: F403 - the suite's test_* functions

ray = require_ray()
pytest_plugins = ["truepar.testing"]

#: Every test here runs on ``ray`` (the suite's own tests included).
pytestmark = pytest.mark.parametrize("truepar_backend", ["ray"], indirect=True)

BURN = """
import time

def burn(seconds):
    t0 = time.process_time()
    n = 0
    while time.process_time() - t0 < seconds:
        n += 1
    return n
"""


@pytest.fixture(scope="module", autouse=True)
def ray_instance() -> Iterator[str]:
    """One local Ray instance for this module, its actors warm before the first timed test;
    its address exported, so child processes (Ctrl-C tests) join it instead of starting one.
    Shut down when the module ends: Ray's client threads in the test process would make the
    processes backend use its fork server in every later test (a different, slower start)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        address="local",  # ours, even while a `ray start` cluster runs on this machine
        num_cpus=2,
        resources={"licence": 1},  # a custom resource, for the ops that ask for it
        object_store_memory=100 << 20,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
    )
    address = ray.get_runtime_context().gcs_address
    previous = os.environ.get(ENV_ADDRESS)
    os.environ[ENV_ADDRESS] = address
    try:
        warm = [SleepOp(id=f"w{i}", seconds=0.01) for i in range(2)]
        assert truepar.run(make_plan(Path.cwd(), warm, backend="ray", workers=2)).ok
        yield address
    finally:
        if previous is None:
            os.environ.pop(ENV_ADDRESS, None)
        else:
            os.environ[ENV_ADDRESS] = previous
        disconnect()
        ray.shutdown()


# -- the parts, without a cluster ------------------------------------------------------------


def test_clock_offset_from_the_best_round_trip(truepar_backend: str) -> None:
    # The remote clock reads 1000 ns ahead; the 20 ns round trip is the tighter one.
    samples = [(0, 1100, 200), (500, 1510, 520)]
    clock = clocks.estimate("n", samples, shared=False)
    assert clock.offset_ns == 1000
    assert clock.uncertainty_ns == 10
    assert clock.method == "round-trip"
    shared = clocks.estimate("n", samples, shared=True)
    assert (shared.offset_ns, shared.uncertainty_ns, shared.measured_offset_ns) == (0, 0, 1000)
    # Spans move by -offset, held inside what the driver saw (sent 100 .. received 900).
    assert clocks.fit(clock, 1200, 1500, 100, 900) == (200, 500)
    assert clocks.fit(clock, 1050, 2000, 100, 900) == (100, 900)
    assert clock.max_clamp_ns == 100


def test_small_ops_are_batched_by_measured_duration(truepar_backend: str) -> None:
    durations = batching.Durations()
    assert not durations.batchable("python:m:f", None)  # unknown: alone
    durations.observe("python:m:f", 0.00001)
    assert durations.batchable("python:m:f", None)
    assert not durations.batchable("python:m:f", 0.5)  # a short timeout: alone
    durations.observe("sleep:1", 1.0)
    assert not durations.batchable("sleep:1", None)
    assert durations.chunk_size(["python:m:f"]) == batching.MAX_CHUNK
    assert batching.split(list(range(10)), 4, 2) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batching.split(list(range(6)), 100, 2) == [[0, 1, 2], [3, 4, 5]]


def test_actors_are_spread_slot_by_slot(truepar_backend: str) -> None:
    nodes = [{"node": "a", "cpus": 2}, {"node": "b", "cpus": 1}]
    assert placement(nodes) == ["a", "b", "a"]


def test_address_comes_from_the_environment(
    truepar_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_ADDRESS, " ray://head:10001 ")
    assert resolve_address(None) == "ray://head:10001"
    assert resolve_address("auto") == "auto"
    monkeypatch.setenv(ENV_ADDRESS, "")
    assert resolve_address(None) is None


# -- on the session's instance -----------------------------------------------------------------


def test_spans_say_the_node_and_the_trace_its_clock(truepar_backend: str, tmp_path: Path) -> None:
    ops = [SleepOp(id=f"s{i}", seconds=0.2) for i in range(2)]
    trace = truepar.run(make_plan(tmp_path, ops, backend="ray", workers=2))
    assert trace.ok
    assert overlaps(trace) == 2
    node = ray.get_runtime_context().get_node_id()
    assert {s.node for s in trace.spans} == {node}
    assert {s.pid for s in trace.spans} != {os.getpid()}
    assert trace.nodes is not None
    (entry,) = trace.nodes
    assert entry["node"] == node
    assert entry["clock"]["method"] == "shared"  # one machine: one kernel clock
    assert entry["clock"]["offset_ns"] == 0
    data = trace.to_json()
    assert data["nodes"][0]["ray"] == ray.__version__
    assert data["spans"][0]["node"] == node


def test_tiny_ops_travel_in_chunks(truepar_backend: str, tmp_path: Path) -> None:
    mod = write_module(tmp_path, "def one(x):\n    return x + 1\n")
    ops = [PythonOp(id=f"p{i}", call=f"{mod}:one", args=(i,)) for i in range(400)]
    plan = make_plan(tmp_path, ops, backend="ray", workers=64)
    truepar.run(plan)  # the kind's duration is learnt here...
    kind = batching.op_kind(ops[0])
    assert DURATIONS.average(kind) is not None
    # ... as this machine measured it; a busy moment (a CI neighbour) must not decide whether
    # the chunking under test happens, so the average is brought to what an idle one measures.
    for _ in range(100):
        if DURATIONS.batchable(kind, None):
            break
        DURATIONS.observe(kind, 1e-5)
    assert DURATIONS.batchable(kind, None)
    trace = truepar.run(plan)  # ...so here its ops go many to a call
    assert trace.ok
    assert [trace.results[f"p{i}"].value for i in range(400)] == [i + 1 for i in range(400)]
    assert len(trace.spans) == 400  # one span per op all the same
    # Ops of one chunk run one after the other on one actor thread: same worker, same thread.
    by_thread: dict[tuple[int, int], int] = {}
    for s in trace.spans:
        by_thread[(s.pid, s.thread_id)] = by_thread.get((s.pid, s.thread_id), 0) + 1
    assert max(by_thread.values()) >= 10
    # What this saves per op is the benchmark's to say (benchmarks/bench_ray.py), not a test's.


def test_cores_used_counts_the_actors(truepar_backend: str, tmp_path: Path) -> None:
    mod = write_module(tmp_path, BURN)
    ops = [PythonOp(id=f"b{i}", call=f"{mod}:burn", args=(0.4,)) for i in range(2)]
    trace = truepar.run(make_plan(tmp_path, ops, backend="ray", workers=2))
    assert trace.ok
    assert len({s.pid for s in trace.spans}) == 2
    assert overlaps(trace) == 2
    measured = sum(s.cpu_s or 0.0 for s in trace.spans)
    assert measured >= 0.75
    assert trace.totals.cpu_s >= 0.95 * measured  # the actors' CPU, not the driver's alone


def test_a_killed_actor_crashes_its_op_and_is_replaced(
    truepar_backend: str, tmp_path: Path
) -> None:
    mod = write_module(tmp_path, "import os\n\ndef die():\n    os.kill(os.getpid(), 9)\n")
    ops = [PythonOp(id="dies", call=f"{mod}:die", retries=1), SleepOp(id="lives", seconds=0.05)]
    trace = truepar.run(make_plan(tmp_path, ops, backend="ray", workers=2, retry_backoff_s=0.3))
    spans = trace.spans_of("dies")
    assert [s.status.value for s in spans] == ["crashed", "crashed"]  # retried, on a live actor
    assert "actor died" in (spans[0].error or "")
    assert spans[0].pid != spans[1].pid
    assert trace.results["lives"].status.value == "ok"
    # The pool replaced the dead actors: the next run has its full width again.
    naps = [SleepOp(id=f"s{i}", seconds=0.2) for i in range(2)]
    again = truepar.run(make_plan(tmp_path, naps, backend="ray", workers=2))
    assert again.ok
    assert overlaps(again) == 2
    assert not {s.pid for s in again.spans} & {s.pid for s in spans}


def test_a_stubborn_op_gets_its_actor_killed(truepar_backend: str, tmp_path: Path) -> None:
    """A function that ignores its cancel (a C call, a busy loop) is stopped by killing its
    actor, and the op is a timeout that ends at its deadline, not when it would have."""
    mod = write_module(tmp_path, BURN)
    ops = [PythonOp(id="spin", call=f"{mod}:burn", args=(5.0,), timeout=0.2)]
    trace = truepar.run(make_plan(tmp_path, ops, backend="ray", workers=1))
    assert trace.results["spin"].status.value == "timeout"
    assert trace.totals.wall_s < 3.0


# -- resource requests ---------------------------------------------------------------------------


def test_requests_are_held_while_their_ops_run(truepar_backend: str, tmp_path: Path) -> None:
    """Ops asking for the one ``licence`` there is, or for both CPUs, run one at a time (Ray
    holds what they ask while they run); ops asking for nothing still overlap."""
    mod = write_module(
        tmp_path, "import os, time\n\ndef nap(s):\n    time.sleep(s)\n    return os.getpid()\n"
    )
    licensed = [
        PythonOp(id=f"l{i}", call=f"{mod}:nap", args=(0.3,), custom_resources={"licence": 1})
        for i in range(2)
    ]
    whole = [PythonOp(id=f"w{i}", call=f"{mod}:nap", args=(0.3,), num_cpus=2) for i in range(2)]
    free = [SleepOp(id=f"f{i}", seconds=0.3) for i in range(2)]
    for ops, most in ((licensed, 1), (whole, 1), (free, 2)):
        trace = truepar.run(make_plan(tmp_path, ops, backend="ray", workers=4))
        assert trace.ok, trace.results
        assert overlaps(trace) == most, [op.id for op in ops]
    assert all(s.node == ray.get_runtime_context().get_node_id() for s in trace.spans)


@pytest.mark.parametrize(
    ("asks", "names"),
    [({"num_gpus": 1}, "GPU 0"), ({"custom_resources": {"no_such_thing": 1}}, "no_such_thing 0")],
)
def test_a_request_the_cluster_never_has_fails_at_once(
    truepar_backend: str, tmp_path: Path, asks: dict[str, object], names: str
) -> None:
    """Ray would keep such a task pending forever: the op fails, saying why, and the rest runs."""
    ops = [SleepOp(id="never", seconds=0.01, **asks), SleepOp(id="fine", seconds=0.01)]
    trace = truepar.run(make_plan(tmp_path, ops, backend="ray", workers=2))
    never = trace.results["never"]
    assert never.status.value == "failed"
    assert "no live node of the Ray cluster has" in (never.error or "")
    assert names in (never.error or "")
    assert trace.results["fine"].status.value == "ok"


def test_an_op_with_requests_times_out_and_its_task_is_cancelled(
    truepar_backend: str, tmp_path: Path
) -> None:
    ops = [SleepOp(id="long", seconds=30, timeout=0.3, num_cpus=1)]
    trace = truepar.run(make_plan(tmp_path, ops, backend="ray", workers=1))
    assert trace.results["long"].status.value == "timeout"
    # Its CPU is free again: an op asking for both CPUs can run.
    again = [SleepOp(id="both", seconds=0.01, num_cpus=2)]
    assert truepar.run(make_plan(tmp_path, again, backend="ray", workers=1)).ok


# -- prove -------------------------------------------------------------------------------------


def test_prove_runs_the_kernel_on_ray_last_checksums_verified(truepar_backend: str) -> None:
    """``prove`` measures Ray as an experiment of its own, after every other one (Ray's threads
    would otherwise turn the ``processes`` backend to a fork server for the runs after); run
    here as prove runs it, on this module's instance, with a small kernel."""
    from truepar.measure import kernels  # noqa: PLC0415 - measure sits above backends
    from truepar.measure.bench import bench  # noqa: PLC0415
    from truepar.measure.experiments import (  # noqa: PLC0415
        LAST,
        experiment_results,
        experiments,
    )
    from truepar.measure.verdict import digest  # noqa: PLC0415
    from truepar.plan.models import Plan  # noqa: PLC0415

    n = kernels.calibrate(0.05)
    catalogue = experiments(2, n)
    assert [e.prefix for e in catalogue][-1] == LAST
    assert catalogue[-1].backends == ("ray",)
    assert all("ray" not in e.backends for e in catalogue[:-1])
    assert [e.prefix for e in experiments(2, n, last=False)][-1] != LAST
    last = catalogue[-1]
    report = bench(
        Plan(name=f"prove: {last.prefix}", ops=last.ops),
        backends=last.backends,
        workers=(2,),
        repeat=1,
    )
    want = {op_id: digest(v) for op_id, v in last.expected_values.items()}
    (result,) = experiment_results(LAST, report, want, gil=True, cores=2, tasks=2)
    assert result.name == "kernel (last)/ray"
    assert result.expected == "parallel"  # Ray runs pure Python on separate actor processes
    assert result.checksums_ok and result.checked > 0 and result.wrong == 0
