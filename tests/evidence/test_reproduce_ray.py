"""``verify --reproduce`` on evidence made on Ray: the rerun runs on Ray again, here.

One local Ray instance for the module (2 CPUs, a small object store), its address exported so
that the ``truepar verify`` child process joins it instead of starting its own; shut down when
the module ends. Skipped, with the reason, only where Ray cannot be imported (an error under CI).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.cli import truepar
from helpers.ray import require_ray
from truepar.backends.ray import disconnect
from truepar.backends.ray.session import ENV_ADDRESS
from truepar.evidence import init_keys, load_evidence, record_bench
from truepar.evidence.metadata import utc_now
from truepar.measure.bench import bench
from truepar.plan import load_plan

ray = require_ray()


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # "local": a new instance, even where /tmp/ray/ray_current_cluster names another (a `ray
    # start` cluster, or a stale address a killed one left), which ray.init would join instead.
    ray.init(
        address="local",
        num_cpus=2,
        object_store_memory=100 << 20,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
    )
    previous = os.environ.get(ENV_ADDRESS)
    os.environ[ENV_ADDRESS] = ray.get_runtime_context().gcs_address
    try:
        yield os.environ[ENV_ADDRESS]
    finally:
        if previous is None:
            os.environ.pop(ENV_ADDRESS, None)
        else:
            os.environ[ENV_ADDRESS] = previous
        disconnect()
        ray.shutdown()


def test_ray_bench_evidence_reproduces_on_ray(ray_address: str, tmp_path: Path) -> None:
    plan = tmp_path / "sleeps.toml"
    plan.write_text(
        'name = "sleeps"\n'
        + "".join(f'[[op]]\nid = "s{i}"\ntool = "sleep"\nseconds = 0.1\n' for i in range(4))
    )
    init_keys(tmp_path / "keys")
    started = utc_now()
    report = bench(str(plan), backends=["ray"], workers=[2], repeat=3, warmup=0)
    [result] = report.results
    assert result.backend == "ray" and result.verdict == "concurrent", result.reasons
    recorded = record_bench(report, load_plan(plan), started_utc=started,
                            out=tmp_path / "bench.json", keys=tmp_path / "keys",
                            ledger=tmp_path / "ledger.sqlite")  # fmt: skip
    doc = load_evidence(recorded.path)
    assert {t["backend"] for t in doc["data"]["trials"]} == {"sequential", "ray"}

    # A second process: it reruns on Ray (the cluster in $TRUEPAR_RAY_ADDRESS), not elsewhere.
    # Four 0.1 s sleeps on 2 workers: a speedup near 2 whatever the load, so ±50% holds.
    proc = truepar("verify", str(recorded.path), "--reproduce", "--tolerance", "0.5")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "✓ recompute" in proc.stdout and "✓ reproduce" in proc.stdout
    assert "✓ ray ×2: speedup" in proc.stdout and "verdict concurrent both" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "VALID"
