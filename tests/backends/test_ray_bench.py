"""``truepar bench PLAN --backends processes,ray`` as a user runs it: a CPU-bound plan, a local
Ray instance the command starts itself, both backends measured in the same trials — and both
``parallel``, the CPU counted where it ran. Ray's client threads in the process once turned every
later ``processes`` worker into a fork-server child that ran the whole command line again
(0.4 s of CPU each): ``processes`` read ``serialized``.

The command and everything it starts (Ray's head, its workers, truepar's workers) run in one
process group, reaped when the test ends. Skipped, with the reason, only where Ray cannot be
imported; under CI (``CI`` set) that is an error instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers.cli import until_as_expected
from helpers.ray import require_ray
from truepar.backends.ray.session import ENV_ADDRESS

require_ray()

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.idle_cores  # it measures real parallelism: run alone, on idle cores


def bench(out: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != ENV_ADDRESS}  # a local instance of its own
    env.update(RAY_USAGE_STATS_ENABLED="0", COLUMNS="120")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "truepar", "bench", "scenarios/cpu_ray.toml",
            "--backends", "processes,ray", "--workers", "2", "--json", str(out), "--no-evidence",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # Ray's head and workers, if any outlived it
        proc.wait()
    assert proc.returncode == 0, stdout + stderr
    results = json.loads(out.read_text())["results"]
    return {r["backend"]: r for r in results}


def both_parallel(results: dict[str, Any]) -> bool:
    return all(r["verdict"] == "parallel" for r in results.values())


@pytest.mark.timeout(600)
def test_processes_and_ray_are_both_parallel_on_a_cpu_plan(tmp_path: Path) -> None:
    # Measured again (at most 3 times) where a neighbour's burst blurred one bench; the
    # assertions hold the last one to the same standard.
    results = until_as_expected(lambda: bench(tmp_path / "bench.json"), both_parallel)
    assert set(results) == {"processes", "ray"}
    for backend, r in results.items():
        assert r["verdict"] == "parallel", (backend, r["speedup"], r["reasons"])
        # CPU counted where the work ran (Ray's in its actors, processes' in its workers), on 2
        # workers: more than one core's worth, never more than two (with CPU read in ticks).
        # How close the two are is the ray-cpu benchmark's to say: a measurement, not a test.
        assert 1.2 < r["cores_used"] <= 2.2, (backend, r["cores_used"])
