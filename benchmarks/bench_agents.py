"""Agents: 1,000 concurrent ``sleep 1`` subprocess agents, all started at once.

The ideal wall is 1 s (every agent sleeps at the same time); what is above it is the cost of
starting, watching and reaping a thousand processes on this machine. Goal: ≤ 1.6 s wall on two
cores (plain asyncio was measured at 2.39 s here).

- truepar agent ops on the async backend, 1,000 workers: ``trace.totals.wall_s``.
- ``truepar swarm`` (``run_swarm``, ``count = 1000``): the agents' run (its trace wall), and
  the whole swarm (outer: plan, run, one session log pair per agent, the consolidated record).
- peer: plain asyncio, ``create_subprocess_exec`` × 1,000 with pipes, ``gather``.
- floors: what starting and reaping 1,000 children costs here with no framework at all —
  ``os.posix_spawn`` with two pipes each, then ``waitpid``, from one process and from two
  (500 each, one per core). Starting children takes the parent's whole core, and more threads
  of one process do not help (they share its address space); only more processes do.
"""

from __future__ import annotations

import asyncio
import os
import shutil
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


def _spawn_and_reap(count: int) -> list[int]:
    """Start ``count`` children, stdout and stderr on pipes; wait for all; their exit codes."""
    program = shutil.which(ARGV[0])
    assert program is not None
    children = []
    for _ in range(count):
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        actions = [(os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, err_w, 2)]
        pid = os.posix_spawn(program, list(ARGV), os.environ, file_actions=actions)
        os.close(out_w)
        os.close(err_w)
        children.append((pid, out_r, err_r))
    codes = []
    for pid, out_r, err_r in children:
        codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        os.close(out_r)
        os.close(err_r)
    return codes


def _spawn_in(processes: int) -> list[int]:
    """All the children from ``processes`` forked helpers (each its share, its verdict as its
    exit code), or from this process alone; the exit codes."""
    if processes == 1:
        return _spawn_and_reap(AGENTS)
    helpers = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:
            codes = _spawn_and_reap(AGENTS // processes)
            os._exit(0 if all(c == 0 for c in codes) else 1)
        helpers.append(pid)
    return [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in helpers]


def _floor(processes: int) -> Metrics:
    seconds, codes = timed(lambda: _spawn_in(processes))
    check(all(c == 0 for c in codes), "every child exited 0")
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
            Variant("posix_spawn + waitpid, one process", "floor", lambda: _floor(1)),
            Variant(
                "posix_spawn + waitpid, two processes",
                "floor",
                lambda: _floor(2),
                note="500 children each, forked helpers",
            ),
        ],
        notes=["truepar: metric from trace.totals.wall_s; outer = around the whole call"],
        repeats=3,
    )
