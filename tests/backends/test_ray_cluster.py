"""The ``ray`` backend on clusters of its own, each in child processes bound by their process
group and reaped: two nodes on one timeline and a lost node (``ray.cluster_utils.Cluster``), a
head started by ``ray start`` that dies mid-run, and an address where nothing listens.

Skipped, with the reason, only where Ray cannot be imported; under CI (``CI`` set) that is an
error instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.ray import require_ray
from truepar.backends.ray.session import ENV_ADDRESS

require_ray()
RAY = Path(sys.executable).with_name("ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def child_env(home: Path) -> dict[str, str]:
    """A child's environment: no cluster address inherited, nothing Ray set in this process
    (a ``ray.init`` here exports its own ``RAY_*`` settings, token auth among them), no usage
    stats, and its own home (a token in the real ``~/.ray`` would make a head demand it)."""
    env = {k: v for k, v in os.environ.items() if k != ENV_ADDRESS and not k.startswith("RAY_")}
    env.update(RAY_USAGE_STATS_ENABLED="0", HOME=str(home), COLUMNS="200")
    return env


def reap(proc: subprocess.Popen[str]) -> None:
    """Kill the child's whole process group (a head's GCS, raylet, workers) and wait for it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)


def wait_for(ready: object, what: str, bound_s: float = 90) -> None:
    """Poll ``ready()`` until true; a bound against a hang, not a timing assertion."""
    deadline = time.monotonic() + bound_s
    while not ready():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {bound_s:g} s")
        time.sleep(0.2)


# -- nothing listening ---------------------------------------------------------------------------


def test_an_address_where_nothing_listens_is_one_line(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text('[[op]]\nid = "a"\ntool = "sleep"\nseconds = 0\n')
    home = tmp_path / "home"
    home.mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "truepar",
            "run",
            str(plan),
            "--backend",
            "ray",
            "--address",
            f"127.0.0.1:{free_port()}",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=child_env(home),
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "cannot connect to the Ray cluster" in lines[0]
    assert "nothing answers" in lines[0]


# -- a head that dies mid-run --------------------------------------------------------------------

MARK = """
import time
from pathlib import Path

def mark(path, seconds):
    Path(path).write_text("started")
    time.sleep(seconds)
    return seconds
"""

LOST_PLAN = """
[defaults]
backend = "ray"
workers = 2

[[op]]
id = "long"
tool = "python"
call = "mark:mark"
args = ["{marker}", 60]
retries = 1

[[op]]
id = "other"
tool = "sleep"
seconds = 60

[[op]]
id = "then"
tool = "sleep"
seconds = 0.1
after = ["long"]
"""


@pytest.fixture
def head(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A one-node cluster from ``ray start --head --block``, in its own process group."""
    port = free_port()
    home = tmp_path / "home"
    home.mkdir()
    env = child_env(home)
    # Its own temp folder (short: Ray's sockets live there), so that its `ray_current_cluster`
    # file does not make a bare ray.init() elsewhere on this machine join this cluster.
    env["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="tp-ray-")
    log = (tmp_path / "head.log").open("w")
    proc = subprocess.Popen(
        [
            str(RAY),
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            f"--object-store-memory={80 << 20}",
            "--block",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:

        def up() -> bool:
            assert proc.poll() is None, (tmp_path / "head.log").read_text()[-2000:]
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return True
            return False

        wait_for(up, "the head accepting connections")
        yield proc, port
    finally:
        reap(proc)
        log.close()
        shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)


@pytest.mark.timeout(240)
def test_a_head_that_dies_mid_run_ends_the_run_with_a_clear_error(
    tmp_path: Path, head: tuple[subprocess.Popen[str], int]
) -> None:
    head_proc, port = head
    (tmp_path / "mark.py").write_text(MARK)
    marker = tmp_path / "started"
    plan = tmp_path / "plan.toml"
    plan.write_text(LOST_PLAN.format(marker=marker))
    out = tmp_path / "trace.json"
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "truepar",
            "run",
            str(plan),
            "--json",
            str(out),
            "--address",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(tmp_path / "home"),
        start_new_session=True,
    )
    try:
        wait_for(lambda: marker.exists() or run.poll() is not None, "the first op starting")
        assert run.poll() is None, run.communicate()
        reap(head_proc)  # the whole cluster, mid-run
        # Ray itself would end the driver after a minute, with no trace; truepar must end the
        # run first, on its own, with its trace and the reason.
        stdout, stderr = run.communicate(timeout=150)
    finally:
        reap(run)
    assert run.returncode == 1, stdout + stderr
    assert "Traceback" not in stderr
    trace = json.loads(out.read_text())
    results = trace["results"]
    assert results["then"]["status"] == "skipped"
    for op in ("long", "other"):
        assert results[op]["status"] in ("crashed", "failed"), results[op]
        error = results[op]["error"]
        assert "actor died" in error or "lost the Ray cluster" in error, error
    assert "FAILED" in stdout


# -- two nodes, one timeline; a lost node ----------------------------------------------------------

CLUSTER = r"""
import json, os, sys, threading, time
from pathlib import Path
import ray
from ray.cluster_utils import Cluster
import truepar
from truepar import Plan, Defaults, SleepOp, PythonOp

base = Path(sys.argv[1])
out = {}
cluster = Cluster(initialize_head=True, head_node_args={
    "num_cpus": 1, "object_store_memory": 75 << 20, "include_dashboard": False})
try:
    worker = cluster.add_node(num_cpus=1, object_store_memory=75 << 20)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
    ops = [SleepOp(id=f"s{i}", seconds=0.3) for i in range(4)]
    plan = Plan(name="two", ops=ops, defaults=Defaults(backend="ray", workers=2), base_dir=base)
    trace = truepar.run(plan)
    out["two"] = trace.to_json()

    # Kill the worker node while its op runs: that op crashes, is retried elsewhere, and the
    # run completes.
    (base / "slow.py").write_text("import time\n\ndef slow(s):\n    time.sleep(s)\n    return s\n")
    ops = [PythonOp(id=f"p{i}", call="slow:slow", args=(1.5,), retries=1) for i in range(2)]
    plan = Plan(name="kill", ops=ops, defaults=Defaults(backend="ray", workers=2,
                retry_backoff_s=0.01), base_dir=base)
    threading.Timer(0.7, cluster.remove_node, args=(worker,)).start()
    t0 = time.monotonic()
    trace = truepar.run(plan)
    out["kill"] = trace.to_json()
    out["kill_s"] = time.monotonic() - t0
    out["worker_node"] = worker.node_id
finally:
    ray.shutdown()
    cluster.shutdown()
print("RESULT " + json.dumps(out))
"""


@pytest.fixture
def two_nodes(tmp_path: Path) -> dict[str, object]:
    """The child's results: a run on two nodes, and a run whose worker node was killed."""
    script = tmp_path / "cluster.py"
    script.write_text(textwrap.dedent(CLUSTER))
    env = {k: v for k, v in os.environ.items() if k != ENV_ADDRESS}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=75)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything it left behind
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, out[-3000:]
    result: dict[str, object] = json.loads(lines[-1][len("RESULT ") :])
    return result


@pytest.mark.timeout(100)
def test_two_nodes_one_timeline_and_a_lost_node(two_nodes: dict[str, object]) -> None:
    two = two_nodes["two"]
    assert isinstance(two, dict)
    assert two["status"] == "ok"
    spans = two["spans"]
    assert len({s["node"] for s in spans}) == 2  # one actor per node
    assert len(two["nodes"]) == 2
    for node in two["nodes"]:
        assert node["clock"]["uncertainty_ns"] >= 0
    # One timeline: every span inside the run, and ops on both nodes overlapping in time.
    for s in spans:
        assert two["start_ns"] <= s["start_ns"] <= s["end_ns"] <= two["end_ns"]
    node_a, node_b = {s["node"] for s in spans}
    assert any(
        a["start_ns"] < b["end_ns"] and b["start_ns"] < a["end_ns"]
        for a in spans
        if a["node"] == node_a
        for b in spans
        if b["node"] == node_b
    )

    kill = two_nodes["kill"]
    assert isinstance(kill, dict)
    assert kill["status"] == "ok", kill["results"]
    crashed = [s for s in kill["spans"] if s["status"] == "crashed"]
    assert crashed, kill["spans"]
    assert {s["node"] for s in crashed} == {two_nodes["worker_node"]}
    for s in crashed:  # retried, on the node still alive
        retry = [r for r in kill["spans"] if r["op_id"] == s["op_id"] and r["attempt"] == 2]
        assert retry and retry[0]["status"] == "ok"
        assert retry[0]["node"] != two_nodes["worker_node"]
