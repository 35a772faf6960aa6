"""3 and 4. Subprocess fan-out: many short commands, N at a time.

``subprocess``: 500 × ``true`` at 16 at a time, in ms per job (wall / 500) — the cost of
spawning, waiting for and reaping a process, since ``true`` itself does nothing.
``subprocess-sleep``: 200 × ``sleep 0.05`` at 32 at a time; the ideal wall is
ceil(200 / 32) = 7 rounds of 50 ms = 350 ms, efficiency = ideal / wall.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import truepar
from common import Benchmark, Column, Goal, Metrics, Variant, check, timed


@dataclasses.dataclass(frozen=True)
class Fanout:
    argv: tuple[str, ...]
    jobs: int
    workers: int
    #: Seconds one job would take with zero overhead (None: report ms per job instead).
    job_s: float | None = None

    @property
    def metric(self) -> str:
        return "ms_job" if self.job_s is None else "eff"

    @property
    def ideal_s(self) -> float:
        assert self.job_s is not None
        return math.ceil(self.jobs / self.workers) * self.job_s

    def metrics(self, wall_s: float) -> Metrics:
        if self.job_s is None:
            return {"ms_job": wall_s / self.jobs * 1e3, "wall_ms": wall_s * 1e3}
        return {"eff": self.ideal_s / wall_s * 100, "wall_ms": wall_s * 1e3}

    @property
    def cmd(self) -> str:
        return " ".join(self.argv)


TRUE = Fanout(("true",), jobs=500, workers=16)
SLEEP = Fanout(("sleep", "0.05"), jobs=200, workers=32, job_s=0.05)


def _truepar(spec: Fanout, backend: str) -> Variant:
    ops = [truepar.BashOp(id=f"b{i}", argv=spec.argv) for i in range(spec.jobs)]
    plan = truepar.Plan(name="fan-out", ops=ops, defaults=truepar.Defaults(workers=spec.workers))

    def fn() -> Metrics:
        outer, trace = timed(lambda: truepar.run(plan, backend=backend, workers=spec.workers))
        check(trace.status is truepar.RunStatus.OK and trace.totals.ok == spec.jobs, "all ok")
        result = spec.metrics(trace.totals.wall_s)
        result["outer_ms"] = outer * 1e3
        result["outer_metric"] = spec.metrics(outer)[spec.metric]
        return result

    return Variant(f"truepar {backend} (workers {spec.workers})", "truepar", fn)


def _shell(spec: Fanout, line: str) -> Metrics:
    seconds, proc = timed(lambda: subprocess.run(line, shell=True, check=False))
    check(proc.returncode == 0, f"{line!r} exited {proc.returncode}")
    return spec.metrics(seconds)


def _asyncio(spec: Fanout) -> Metrics:
    async def main() -> list[int | None]:
        sem = asyncio.Semaphore(spec.workers)

        async def one() -> int | None:
            async with sem:
                proc = await asyncio.create_subprocess_exec(
                    *spec.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE
                )
                await proc.communicate()
                return proc.returncode

        return await asyncio.gather(*(one() for _ in range(spec.jobs)))

    seconds, codes = timed(lambda: asyncio.run(main()))
    check(all(c == 0 for c in codes), "every command exited 0")
    return spec.metrics(seconds)


def _tpe(spec: Fanout) -> Metrics:
    def one(_: int) -> int:
        return subprocess.run(spec.argv, capture_output=True, check=False).returncode

    def job() -> list[int]:
        with ThreadPoolExecutor(spec.workers) as ex:
            return list(ex.map(one, range(spec.jobs)))

    seconds, codes = timed(job)
    check(not any(codes), "every command exited 0")
    return spec.metrics(seconds)


def _peers(spec: Fanout) -> list[Variant]:
    # `-I{}` (and parallel's -N0) keep the input number off the command line, where
    # `sleep 0.05 7` would sleep 7 s more; `true 7` is harmless, so plain `-n1` there.
    if spec.argv == ("true",):
        xargs = f"seq {spec.jobs} | xargs -P{spec.workers} -n1 true"
    else:
        xargs = f"seq {spec.jobs} | xargs -P{spec.workers} -I{{}} {spec.cmd}"
    peers = [
        Variant(
            f"xargs -P{spec.workers}",
            "peer",
            lambda: _shell(spec, xargs),
            note=f"`{xargs}` via /bin/sh, shell start included",
        ),
    ]
    if shutil.which("parallel"):
        line = f"seq {spec.jobs} | parallel -j{spec.workers} -N0 {spec.cmd}"
        peers.append(
            Variant(
                f"GNU parallel -j{spec.workers}",
                "peer",
                lambda: _shell(spec, line),
                note=f"`{line}`",
            )
        )
    peers += [
        Variant(
            f"asyncio subprocess Semaphore({spec.workers})",
            "peer",
            lambda: _asyncio(spec),
            note="create_subprocess_exec, stdout/stderr piped and read, as truepar does",
        ),
        Variant(
            f"ThreadPoolExecutor({spec.workers}) + subprocess.run",
            "peer",
            lambda: _tpe(spec),
            note="capture_output=True",
        ),
    ]
    return peers


def _benchmark(name: str, spec: Fanout, goal: float, title: str, formula: str) -> Benchmark:
    tp = [_truepar(spec, b) for b in ("async", "threads")]
    per_job = spec.job_s is None
    notes = [
        "truepar: metric from trace.totals.wall_s; outer = around truepar.run (plan check, "
        "event loop); each BashOp pipes stdout/stderr, leads its own process group and is "
        "reaped with os.wait4 for its CPU",
        formula,
    ]
    if not shutil.which("parallel"):
        notes.append("GNU parallel is not installed here: not measured")
    return Benchmark(
        name=name,
        title=title,
        metric=spec.metric,
        unit="ms/job" if per_job else "% efficiency",
        better="lower" if per_job else "higher",
        goal=Goal(goal, "<=" if per_job else ">=", tuple(v.label for v in tp)),
        fmt="{:.3f}" if per_job else "{:.1f}",
        columns=[
            Column("wall_ms", "wall ms", "{:.0f}"),
            Column("outer_ms", "outer ms", "{:.0f}"),
            Column(
                "outer_metric",
                "outer ms/job" if per_job else "outer eff %",
                "{:.3f}" if per_job else "{:.1f}",
            ),
        ],
        variants=[*tp, *_peers(spec)],
        notes=notes,
    )


def benchmark_true() -> Benchmark:
    return _benchmark(
        "subprocess",
        TRUE,
        0.5,
        f"{TRUE.jobs} × `true`, {TRUE.workers} at a time",
        f"ms/job = wall / {TRUE.jobs}",
    )


def benchmark_sleep() -> Benchmark:
    ideal_ms = SLEEP.ideal_s * 1e3
    return _benchmark(
        "subprocess-sleep",
        SLEEP,
        95.0,
        f"{SLEEP.jobs} × `{SLEEP.cmd}`, {SLEEP.workers} at a time (ideal {ideal_ms:.0f} ms)",
        f"efficiency = ideal {ideal_ms:.0f} ms / wall",
    )
