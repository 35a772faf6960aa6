"""Agents: 1,000 concurrent ``sleep 1`` subprocess agents, all started at once.

The ideal wall is 1 s (every agent sleeps at the same time); what is above it is the cost of
starting, watching and reaping a thousand processes on this machine. Goal: ≤ 1.6 s wall on two
cores (plain asyncio was measured at 2.39 s here).

- truepar agent ops on the async backend, 1,000 workers: ``trace.totals.wall_s``.
- ``truepar swarm`` (``run_swarm``, ``count = 1000``): the agents' run (its trace wall), and
  the whole swarm (outer: plan, run, one session log pair per agent, the consolidated record).
- peer: plain asyncio, ``create_subprocess_exec`` × 1,000 with pipes, ``gather``.
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from pathlib import Path

import truepar
from common import Benchmark, Column, Goal, Metrics, Variant, check, timed
from truepar.agents.swarm import run_swarm
from truepar.agents.swarm_config import load_swarm

AGENTS = 1000
ARGV = ("sleep", "1")


def _ops() -> Metrics:
    ops = [truepar.AgentOp(id=f"a{i}", argv=ARGV, prompt="") for i in range(AGENTS)]
    plan = truepar.Plan(name="agents", ops=ops)
    outer, trace = timed(lambda: truepar.run(plan, backend="async", workers=AGENTS))
    check(trace.totals.ok == AGENTS, "every agent ok")
    return {"wall_s": trace.totals.wall_s, "outer_s": outer}


def _swarm() -> Metrics:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "AGENTS.toml"
        path.write_text(
            f'[swarm]\nname = "load"\ncount = {AGENTS}\nworkers = {AGENTS}\n'
            f'sessions = "{tmp}/sessions"\n[template]\nargv = {list(ARGV)!r}\nprompt = ""\n'
        )
        swarm = load_swarm(path)
        outer, result = timed(lambda: run_swarm(swarm))
        check(sum(a.status == "ok" for a in result.agents) == AGENTS, "every agent ok")
        return {"wall_s": result.trace.totals.wall_s, "outer_s": outer}


def _asyncio() -> Metrics:
    async def main() -> list[int | None]:
        async def one() -> int | None:
            proc = await asyncio.create_subprocess_exec(
                *ARGV, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            await proc.communicate()
            return proc.returncode

        return await asyncio.gather(*(one() for _ in range(AGENTS)))

    seconds, codes = timed(lambda: asyncio.run(main()))
    check(all(c == 0 for c in codes), "every agent exited 0")
    return {"wall_s": seconds, "outer_s": seconds}


def benchmark() -> Benchmark:
    ops = Variant("truepar agent ops, async ×1000", "truepar", _ops)
    swarm = Variant(
        "truepar swarm (count 1000)",
        "truepar",
        _swarm,
        note="outer includes 1,000 session log pairs and the consolidated record",
    )
    return Benchmark(
        name="agents",
        title=f"{AGENTS} concurrent `{' '.join(ARGV)}` subprocess agents (ideal 1 s)",
        metric="wall_s",
        unit="s wall",
        better="lower",
        goal=Goal(1.6, "<=", (ops.label, swarm.label)),
        fmt="{:.3f}",
        columns=[Column("outer_s", "outer s", "{:.3f}")],
        variants=[
            ops,
            swarm,
            Variant(
                "asyncio create_subprocess_exec ×1000",
                "peer",
                _asyncio,
                note="pipes read with communicate(), gather",
            ),
        ],
        notes=["truepar: metric from trace.totals.wall_s; outer = around the whole call"],
        repeats=3,
    )
