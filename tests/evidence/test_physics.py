"""Physics checks: raw samples made up to fit the numbers are caught, each law on its own, and
honest evidence from every backend (interrupted, timed out, failing, fake) is never accused.

Nothing here depends on the machine's speed: the forgeries are scaled from what was measured,
and the honest runs only have to be possible, not fast.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import truepar
from helpers.cli import truepar as truepar_cli
from helpers.plans import write_module
from truepar import BashOp, FakeSpec, PythonOp, SleepOp
from truepar.evidence import (
    bench_evidence,
    init_keys,
    load_private_key,
    prove_evidence,
    recompute,
    run_evidence,
    sign,
)
from truepar.evidence.physics import check_physics
from truepar.evidence.recompute import bench_report_of
from truepar.measure import bench
from truepar.measure.prove import prove

T0, T1 = "2024-01-01T00:00:00.000Z", "2024-01-01T00:00:01.000Z"

WORK = """
import time
from pathlib import Path

def burn(seconds):
    # A fixed amount of this thread's CPU, however busy the machine is.
    t0 = time.thread_time()
    n = 0
    while time.thread_time() - t0 < seconds:
        n += 1
    return seconds

def fail():
    raise RuntimeError("boom")

def wait_for(path):
    while not Path(path).exists():
        time.sleep(0.01)
    return "stopped"
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A folder with a module of op functions, and the module's name."""
    folder = tmp_path_factory.mktemp("physics")
    return folder, write_module(folder, WORK)


def _trials(doc: dict[str, Any], key: tuple[str, int]) -> list[int]:
    return [
        i
        for i, t in enumerate(doc["data"]["trials"])
        if (t["backend"], t["workers"]) == key and not t["warmup"]
    ]


def forge(
    doc: dict[str, Any], key: tuple[str, int], wall: Callable[[dict[str, Any]], float]
) -> dict[str, Any]:
    """``doc`` with the measured samples of configuration ``key`` given the wall ``wall(t)``,
    and every derived number recomputed from them by truepar's own code, as a forger would."""
    doc = copy.deepcopy(doc)
    data = doc["data"]
    for i in _trials(doc, key):
        data["trials"][i]["wall_s"] = wall(data["trials"][i])
    again = bench_report_of(doc["plan"], data, doc["environment"]).to_json()
    for field in ("results", "baseline", "best", "warnings", "scaling"):
        data[field] = again[field]
    return doc


# -------------------------------------------------------------------- the forgery of issue 9


@pytest.fixture(scope="module")
def cpu_bench(work: tuple[Path, str]) -> dict[str, Any]:
    """Honest evidence of 4 ops of 0.1 s CPU each, sequential and on 4 worker processes."""
    folder, module = work
    ops = [PythonOp(id=f"b{i}", call=f"{module}:burn", args=(0.1,)) for i in range(4)]
    plan = truepar.Plan(name="cpu", ops=ops, base_dir=folder)
    report = bench(plan, backends=("processes",), workers=(4,), repeat=2, warmup=0)
    return bench_evidence(report, plan, started_utc=T0, ended_utc=T1)


def _label(doc: dict[str, Any], i: int) -> str:
    t = doc["data"]["trials"][i]
    return f"bench trials[{i}] ({t['backend']}, {t['workers']} workers, trial {t['trial']})"


def test_halved_walls_recomputed_and_resigned_are_invalid(
    cpu_bench: dict[str, Any], tmp_path: Path
) -> None:
    """Issue 9, finding 5: every derived number follows from the forged samples and the
    signature is valid, so recompute and signature alone said VALID; physics does not."""
    key = ("processes", 4)
    forged = forge(cpu_bench, key, lambda t: t["wall_s"] / 2)
    problems = recompute(forged)
    assert problems, "halved walls went unnoticed"
    assert not any("recomputed from" in p for p in problems), problems  # the numbers do follow
    for i in _trials(forged, key):
        mine = [p for p in problems if p.startswith(_label(forged, i) + ": ")]
        assert any("after the run ended" in p for p in mine), problems
    other = init_keys(tmp_path / "mallory")
    key_file = load_private_key(other.private)
    honest, fake = tmp_path / "honest.json", tmp_path / "forged.json"
    honest.write_text(json.dumps(sign(cpu_bench, key_file)))
    fake.write_text(json.dumps(sign(forged, key_file)))

    proc = truepar_cli("verify", str(honest))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = truepar_cli("verify", str(fake))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "✓ signature" in proc.stdout and "✗ recompute" in proc.stdout
    assert _label(forged, _trials(forged, key)[0]) in proc.stdout
    assert "INVALID" in proc.stdout


def sec(x: float) -> str:
    """Seconds as the physics lines write them."""
    return f"{x:.2f} s" if abs(x) >= 1 else f"{x:.3g} s"


def test_more_cores_than_the_machine_has_is_named(cpu_bench: dict[str, Any]) -> None:
    key = ("processes", 4)
    cores = cpu_bench["environment"]["cores_available"]
    forged = forge(cpu_bench, key, lambda t: t["cpu_s"] / (3 * cores))  # 3× the cores there are
    problems = recompute(forged)
    for i in _trials(forged, key):
        t = forged["data"]["trials"][i]
        line = (
            f"{_label(forged, i)}: CPU {sec(t['cpu_s'])} in {sec(t['wall_s'])} of wall is "
            f"{3 * cores:.2f} cores "
        )
        assert any(p.startswith(line) for p in problems), (line, problems)
    if cpu_bench["environment"]["cores_total"] == cores:
        assert any(p.endswith(f"cores on a {cores}-core machine") for p in problems), problems


# -------------------------------------------------------------------- each law on its own


@pytest.fixture(scope="module")
def sleep_run(work: tuple[Path, str]) -> dict[str, Any]:
    """Honest evidence of four 50 ms sleeps on 2 threads, and a 50 ms burn after one of them."""
    folder, module = work
    ops: list[truepar.OpBase] = [SleepOp(id=f"s{i}", seconds=0.05) for i in range(4)]
    ops.append(PythonOp(id="b", call=f"{module}:burn", args=(0.05,), after=("s0",)))
    plan = truepar.Plan(name="sleeps", ops=ops, base_dir=folder)
    trace = truepar.run(plan, backend="threads", workers=2)
    return run_evidence(trace, plan, started_utc=T0, ended_utc=T1)


@pytest.fixture(scope="module")
def fake_bench() -> dict[str, Any]:
    ops = [SleepOp(id=f"s{i}", seconds=1, fake=FakeSpec(duration_s=1, cpu_s=0.9)) for i in range(4)]
    plan = truepar.Plan(name="fakes", ops=ops, defaults=truepar.Defaults(backend="fake"))
    report = bench(plan, backends=("fake",), workers=(4,), repeat=2, warmup=0)
    return bench_evidence(report, plan, started_utc=T0, ended_utc=T1)


def only(problems: list[str], *words: str) -> str:
    """The one problem there is, which says ``words``."""
    assert len(problems) == 1, problems
    assert all(w in problems[0] for w in words), problems
    return problems[0]


def test_honest_fixtures_break_no_law(
    sleep_run: dict[str, Any], fake_bench: dict[str, Any]
) -> None:
    assert recompute(sleep_run) == []
    assert recompute(fake_bench) == []


def test_a_span_past_the_wall(sleep_run: dict[str, Any]) -> None:
    doc = copy.deepcopy(sleep_run)
    move(doc["data"]["spans"][1], doc["data"]["end_ns"] + 5_000_000)
    line = only(check_physics(doc), "run (threads, 2 workers): span 1 (op ")
    assert line.endswith(f"ends 0.005 s after the run ended (its wall: {_wall(doc)})"), line
    move(doc["data"]["spans"][1], doc["data"]["end_ns"] + 900_000)  # within the clock slack
    assert check_physics(doc) == []


def move(span: dict[str, Any], end_ns: int) -> None:
    """Move ``span`` (and when its op was ready) in time so that it ends at ``end_ns``."""
    shift = end_ns - span["end_ns"]
    for field in ("ready_ns", "start_ns", "end_ns"):
        span[field] += shift


def _wall(doc: dict[str, Any]) -> str:
    return sec((doc["data"]["end_ns"] - doc["data"]["start_ns"]) / 1e9)


def test_a_span_before_the_run_began(sleep_run: dict[str, Any]) -> None:
    doc = copy.deepcopy(sleep_run)
    span = doc["data"]["spans"][0]
    span["ready_ns"] = span["start_ns"]
    move(span, span["end_ns"] - (span["start_ns"] - doc["data"]["start_ns"]) - 20_000_000)
    only(check_physics(doc), "span 0", "starts 0.02 s before the run began")


def test_more_cpu_than_cores_times_wall(sleep_run: dict[str, Any]) -> None:
    doc = copy.deepcopy(sleep_run)
    cores = doc["environment"]["cores_available"]
    wall_s = (doc["data"]["end_ns"] - doc["data"]["start_ns"]) / 1e9
    doc["data"]["totals"]["cpu_s"] = 2 * cores * wall_s + 0.2
    line = only(check_physics(doc), "run (threads, 2 workers): CPU ", " of wall is ", " cores ")
    assert line.startswith(f"run (threads, 2 workers): CPU {sec(2 * cores * wall_s + 0.2)} in")
    # Within the slack, a CPU clock read in ticks: 5% and 20 ms (+ 20 ms per worker).
    doc["data"]["totals"]["cpu_s"] = cores * wall_s * 1.04 + 0.05
    assert check_physics(doc) == []


def test_a_span_with_more_cpu_than_its_time_allows(sleep_run: dict[str, Any]) -> None:
    doc = copy.deepcopy(sleep_run)
    cores = doc["environment"]["cores_available"]
    (i,) = [i for i, s in enumerate(doc["data"]["spans"]) if s["op_id"] == "b"]
    wall_s = (doc["data"]["end_ns"] - doc["data"]["start_ns"]) / 1e9
    doc["data"]["spans"][i]["cpu_s"] = 2 * cores * wall_s + 1
    problems = check_physics(doc)
    assert len(problems) == 2, problems
    assert problems[0].startswith(f"run (threads, 2 workers): span {i} (op b, attempt 1): CPU ")
    assert problems[1].startswith("run (threads, 2 workers): its spans' CPU ")  # their sum too


def test_bound_efficiency_above_one_in_a_run(sleep_run: dict[str, Any]) -> None:
    doc = copy.deepcopy(sleep_run)
    doc["data"]["workers"] = 1  # as if one worker had run two sleeps at once
    line = only(check_physics(doc), "run (threads, 1 worker): ", "of op time on 1 worker takes")
    assert "bound efficiency" in line and "> 1)" in line


def test_a_critical_path_longer_than_the_wall(fake_bench: dict[str, Any]) -> None:
    doc = copy.deepcopy(fake_bench)
    doc["plan"]["graph"]["preds"] = [[], [0], [1], [2]]  # as if s0 → s1 → s2 → s3
    problems = check_physics(doc)
    assert any("its critical path (s0 → s1 → s2 → s3) takes 4.00 s" in p for p in problems)
    assert any(
        p.startswith("bench trials[") and "(fake, 4 workers, trial 0)" in p for p in problems
    )


def test_bound_efficiency_above_one_across_configurations(fake_bench: dict[str, Any]) -> None:
    """Runs that each hold together, but claim the 4 workers did the baseline's ops in half
    their time: only the bound from the baseline's op times shows it."""
    key = ("fake", 4)
    doc = copy.deepcopy(fake_bench)
    for i in _trials(doc, key):
        t = doc["data"]["trials"][i]
        for span in t["spans"]:
            for field in ("ready_ns", "start_ns", "end_ns"):
                span[field] = t["start_ns"] + (span[field] - t["start_ns"]) // 2
            span["duration_s"] = (span["end_ns"] - span["start_ns"]) / 1e9
        t["op_s"] = {s["op_id"]: s["duration_s"] for s in t["spans"]}
        t["sum_op_s"] = sum(t["op_s"].values())
    doc = forge(doc, key, lambda t: t["wall_s"] / 2)
    problems = recompute(doc)
    line = only(problems, "bench results[0] (fake, 4 workers): at the fastest baseline op times")
    assert "4.00 s of op time on 4 workers takes 1.00 s, more than its median wall 0.5 s" in line
    assert "(bound efficiency 2.00 > 1)" in line


def test_time_that_runs_backwards(sleep_run: dict[str, Any]) -> None:
    doc = copy.deepcopy(sleep_run)
    span = doc["data"]["spans"][2]
    span["end_ns"], span["start_ns"] = span["start_ns"], span["end_ns"]
    assert any("span 2" in p and "before it starts" in p for p in check_physics(doc))
    doc = copy.deepcopy(sleep_run)
    span = doc["data"]["spans"][2]
    span["ready_ns"] = span["start_ns"] + 10_000_000
    only(check_physics(doc), "span 2", "starts 0.01 s before its op was ready")
    doc = copy.deepcopy(sleep_run)
    doc["data"]["end_ns"] = doc["data"]["start_ns"] - 1
    assert any("wall time is negative" in p for p in check_physics(doc))


def test_trials_out_of_order_or_at_once(cpu_bench: dict[str, Any]) -> None:
    doc = copy.deepcopy(cpu_bench)
    trials = doc["data"]["trials"]
    trials[-1]["trial"] = 0  # the last run claims to be of the first trial
    assert any(
        p.startswith(f"bench trials[{len(trials) - 1}] (") and "not in the order they ran" in p
        for p in check_physics(doc)
    )
    doc = copy.deepcopy(cpu_bench)
    trials = doc["data"]["trials"]
    shift = trials[2]["start_ns"] - trials[1]["start_ns"]  # run 2 moved onto run 1
    trials[2]["start_ns"] -= shift
    for span in trials[2]["spans"]:
        for field in ("ready_ns", "start_ns", "end_ns"):
            span[field] -= shift
    only(check_physics(doc), "bench trials[2] (", "before the run before it (trials[1]) ended")


def test_prove_evidence_is_checked_per_experiment(cpu_bench: dict[str, Any]) -> None:
    forged = forge(cpu_bench, ("processes", 4), lambda t: t["wall_s"] / 2)
    doc = {
        "kind": "prove",
        "environment": cpu_bench["environment"],
        "data": {
            "experiments": [{"prefix": "kernel", "plan": forged["plan"], "bench": forged["data"]}]
        },
    }
    problems = check_physics(doc)
    assert problems and all(p.startswith("prove experiments[0] (kernel) ") for p in problems)
    assert any(p.startswith("prove experiments[0] (kernel) trials[") for p in problems)


def test_unreadable_raw_data_is_one_line() -> None:
    doc = {"kind": "run", "environment": {"cores_available": 2}, "plan": {}, "data": {}}
    (line,) = check_physics(doc)
    assert line.startswith("cannot check the physics of this evidence: KeyError: ")


# -------------------------------------------------------------------- honest evidence


@pytest.fixture
def stop_file(tmp_path: Path) -> Iterator[Path]:
    """A file whose creation ends ``wait_for``: abandoned threads end after the test."""
    path = tmp_path / "stop"
    yield path
    path.write_text("stop")


@pytest.mark.parametrize("backend", ["sequential", "async", "threads", "processes", "fake"])
def test_honest_runs_with_failures_retries_and_timeouts_verify(
    backend: str, work: tuple[Path, str], stop_file: Path
) -> None:
    folder, module = work
    ops: list[truepar.OpBase] = [
        SleepOp(id="nap", seconds=0.05, fake=FakeSpec(duration_s=0.05)),
        PythonOp(id="burn", call=f"{module}:burn", args=(0.05,), fake=FakeSpec(cpu_s=0.05)),
        PythonOp(id="boom", call=f"{module}:fail", retries=1, fake=FakeSpec(fail=-1)),
        BashOp(id="slow", argv=["sleep", "5"], timeout=0.2, fake=FakeSpec(duration_s=5)),
        SleepOp(id="then", seconds=0.02, after=("nap",), fake=FakeSpec(duration_s=0.02)),
    ]
    if backend in ("threads", "processes"):  # an op that ignores its timeout: abandoned/killed
        ops.append(
            PythonOp(id="stuck", call=f"{module}:wait_for", args=(str(stop_file),), timeout=0.2)
        )
    defaults = truepar.Defaults(retry_backoff_s=0.01)
    plan = truepar.Plan(name="mixed", ops=ops, base_dir=folder, defaults=defaults)
    trace = truepar.run(plan, backend=backend, workers=3)
    statuses = {k: r.status.value for k, r in trace.results.items()}
    assert statuses["slow"] == "timeout" and statuses["boom"] == "failed", statuses
    if backend == "threads":
        assert trace.abandoned_threads == 1
    doc = run_evidence(trace, plan, started_utc=T0, ended_utc=T1)
    assert recompute(doc) == []


@pytest.mark.parametrize("backend", ["sequential", "async", "threads", "processes"])
def test_an_interrupted_run_verifies(backend: str, tmp_path: Path) -> None:
    started = tmp_path / "started"
    ops = [
        BashOp(id="long", shell=True, command=f"echo $$ > {started}; exec sleep 5"),
        SleepOp(id="nap", seconds=5),
        SleepOp(id="after", seconds=0.1, after=("nap",)),
    ]
    plan = truepar.Plan(name="interrupted", ops=ops, base_dir=tmp_path)

    def ctrl_c() -> None:
        deadline = time.monotonic() + 20
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)  # the run's own handler cancels it cleanly

    thread = threading.Thread(target=ctrl_c, daemon=True)
    thread.start()
    trace = truepar.run(plan, backend=backend, workers=2)
    thread.join()
    assert trace.status.value == "interrupted"
    assert {r.status.value for r in trace.results.values()} == {"cancelled"}
    doc = run_evidence(trace, plan, started_utc=T0, ended_utc=T1)
    assert recompute(doc) == []


def test_honest_benches_on_every_real_backend_verify(work: tuple[Path, str]) -> None:
    folder, module = work
    ops: list[truepar.OpBase] = [
        PythonOp(id=f"b{i}", call=f"{module}:burn", args=(0.03,)) for i in range(3)
    ]
    ops += [SleepOp(id=f"s{i}", seconds=0.03) for i in range(3)]
    plan = truepar.Plan(name="mix", ops=ops, base_dir=folder)
    report = bench(
        plan, backends=("async", "threads", "processes"), workers=(1, 3), repeat=2, warmup=1
    )
    doc = bench_evidence(report, plan, started_utc=T0, ended_utc=T1)
    assert recompute(doc) == []


def test_honest_prove_evidence_verifies() -> None:

    report = prove(tasks=2, repeat=1, warmup=0, kernel_s=0.02)
    doc = json.loads(json.dumps(prove_evidence(report, started_utc=T0, ended_utc=T1)))
    assert recompute(doc) == []
