"""Run truepar's benchmarks next to their peers, in one process, one after another.

    python benchmarks/run.py                      # all of them
    python benchmarks/run.py dispatch io          # some of them
    python benchmarks/run.py --quick --json out.json

See benchmarks/README.md for what each one measures and how to read the table.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import truepar
from common import Benchmark, measure, report

#: Other processes using more than this many cores make the run's numbers suspect.
BUSY_WARNING = 0.15

# name -> (module, function). Imported only when run: worker processes started by a fork server
# or by spawn re-import this script as ``__mp_main__``, and must not pay for joblib & co. here.
BENCHMARKS: dict[str, tuple[str, str]] = {
    "dispatch": ("bench_dispatch", "benchmark"),
    "io": ("bench_io", "benchmark"),
    "subprocess": ("bench_subprocess", "benchmark_true"),
    "subprocess-sleep": ("bench_subprocess", "benchmark_sleep"),
    "cpu": ("bench_cpu", "benchmark"),
    "overhead": ("bench_overhead", "benchmark"),
    "agents": ("bench_agents", "benchmark"),
    "worktrees-create": ("bench_worktrees", "benchmark_create"),
    "worktrees-remove": ("bench_worktrees", "benchmark_remove"),
    "mcp-overhead": ("bench_mcp", "benchmark_overhead"),
    "mcp-batch": ("bench_mcp", "benchmark_batch"),
    "mcp-startup": ("bench_mcp", "benchmark_startup"),
    "scheduler": ("bench_scheduler", "benchmark"),
    # Last: they start a local Ray instance, whose threads stay alive in this process.
    "ray-dispatch": ("bench_ray", "benchmark_dispatch"),
    "ray-cpu": ("bench_ray", "benchmark_cpu"),
}


def load(name: str) -> Benchmark:
    module, function = BENCHMARKS[name]
    make: Callable[[], Benchmark] = getattr(importlib.import_module(module), function)
    return make()


def _cpu_model() -> str:
    from truepar.evidence.metadata import cpu_model  # noqa: PLC0415 - see BENCHMARKS

    return cpu_model()


def background_load(seconds: float = 1.0) -> dict[str, Any]:
    """How busy the machine is without us: CPU of the other processes while we sleep."""
    import psutil  # noqa: PLC0415 - see BENCHMARKS

    me = os.getpid()
    procs = [p for p in psutil.process_iter(["name"]) if p.pid != me]
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.cpu_percent(None)
    time.sleep(seconds)
    busy: list[tuple[float, int, str]] = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            command = " ".join(" ".join(p.cmdline()).split())[:70] or p.name()
            busy.append((p.cpu_percent(None), p.pid, command))
    busy.sort(reverse=True)
    total = sum(b[0] for b in busy)
    top = [{"cpu_percent": c, "pid": pid, "command": cmd} for c, pid, cmd in busy[:3] if c >= 5]
    return {"cores_busy": total / 100, "loadavg_1m": os.getloadavg()[0], "top": top}


def _system_busy_s() -> float:
    import psutil  # noqa: PLC0415 - see BENCHMARKS

    t = psutil.cpu_times()
    return sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal"))


def _own_cpu_s() -> float:
    """CPU of this process and everything it started: reaped (rusage) or still alive (psutil)."""
    import psutil  # noqa: PLC0415 - see BENCHMARKS

    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            t = child.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


class OthersMeter:
    """Cores that other processes kept busy while a benchmark ran (system CPU minus ours)."""

    def __enter__(self) -> OthersMeter:
        self.t0, self.sys0, self.own0 = time.perf_counter(), _system_busy_s(), _own_cpu_s()
        self.cores = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        elapsed = time.perf_counter() - self.t0
        others = (_system_busy_s() - self.sys0) - (_own_cpu_s() - self.own0)
        self.cores = max(0.0, others / elapsed) if elapsed > 0 else 0.0


def print_load(when: str, load: dict[str, Any]) -> None:
    line = (
        f"background load {when}: other processes kept {load['cores_busy']:.2f} cores busy "
        f"(load average {load['loadavg_1m']:.2f})"
    )
    print(line)
    if load["cores_busy"] > BUSY_WARNING:
        print("   WARNING: the machine is not idle, so these numbers are pessimistic. Busiest:")
        for t in load["top"]:
            print(f"     pid {t['pid']} {t['cpu_percent']:.0f}% {t['command']}")


def machine() -> dict[str, Any]:
    import joblib  # noqa: PLC0415 - see BENCHMARKS

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "cpu": _cpu_model(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "truepar": truepar.__version__,
        "joblib": joblib.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default all): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--quick", action="store_true", help="2 repetitions instead of 5")
    parser.add_argument("--repeats", type=int, help="repetitions of every benchmark")
    parser.add_argument("--json", metavar="OUT", type=Path, help="write all numbers as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a goal is missed")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; one of: {', '.join(BENCHMARKS)}")
    names = args.names or list(BENCHMARKS)
    default_repeats = 2 if args.quick else 5

    info = machine()
    print(
        f"truepar {info['truepar']} benchmarks — {info['cores']} cores "
        f"({info['usable_cores']} usable), {info['cpu']}"
    )
    print(
        f"{info['implementation']} {info['python']} on {info['platform']}, joblib {info['joblib']}"
    )
    print("ratios: '÷ headline' = the row's median ÷ the headline (*) truepar row's median")
    load_before = background_load()
    print_load("before", load_before)

    started = time.perf_counter()
    results: dict[str, Any] = {}
    for name in names:
        bench = load(name)
        repeats = args.repeats or min(bench.repeats or default_repeats, default_repeats)
        t0 = time.perf_counter()
        with OthersMeter() as others:
            measured = measure(bench, repeats)
        data = report(bench, measured, repeats)
        data["seconds"] = time.perf_counter() - t0
        data["other_processes_cores"] = others.cores
        results[name] = data
        print(
            f"   ({data['seconds']:.1f} s; other processes kept ~{others.cores:.2f} cores busy "
            "meanwhile)"
        )
        if others.cores > BUSY_WARNING:
            print("   WARNING: other processes competed for the CPU during this benchmark;")
            print("   its numbers are pessimistic (see min – max). Re-run it on an idle machine.")

    print("\n== goals")
    missed = 0
    for name, data in results.items():
        goal = data["goal"]
        for r in goal["results"]:
            missed += not r["met"]
            mark = "met   " if r["met"] else "MISSED"
            print(
                f"   {mark} {name}: {r['variant']} {r['median']:.3g} {goal['op']} "
                f"{goal['threshold']:g} {data['unit']}"
            )
    total = time.perf_counter() - started
    print(f"   {missed} missed; whole run {total:.1f} s")
    load_after = background_load()
    print_load("after", load_after)
    info["background_load"] = {"before": load_before, "after": load_after}
    if args.json:
        args.json.write_text(
            json.dumps({"machine": info, "total_seconds": total, "benchmarks": results}, indent=2)
            + "\n"
        )
        print(f"   numbers written to {args.json}")
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
