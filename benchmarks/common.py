"""Shared helpers: a benchmark's variants, repeated timing, median/min/max, table, goal check.

A benchmark is a list of variants (truepar's and its peers'), each a function that does the
whole job once and returns its metrics (a dict of numbers). The runner repeats the variants in
round-robin order — rep 1 of every variant, then rep 2, ... — so slow drift of the machine hits
all of them alike, and reports the median of each metric with its min and max.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import statistics
import time
from collections.abc import Callable
from typing import Any, Literal

Metrics = dict[str, float]
Kind = Literal["truepar", "peer", "floor"]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds ``fn()`` took on the monotonic high-resolution clock, and what it returned."""
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def check(condition: bool, what: str) -> None:
    """A benchmark that computed the wrong thing must not report a number."""
    if not condition:
        raise RuntimeError(f"benchmark result check failed: {what}")


@dataclasses.dataclass
class Variant:
    label: str
    kind: Kind
    #: Does the whole job once and returns its metrics (must include the benchmark's metric).
    fn: Callable[[], Metrics]
    #: Run, untimed, before every repetition (e.g. start or stop a reusable pool).
    setup: Callable[[], None] | None = None
    #: Run, untimed, after every repetition (e.g. stop a pool so it cannot disturb the others).
    teardown: Callable[[], None] | None = None
    note: str = ""

    def once(self) -> Metrics:
        """Setup, the timed job, teardown."""
        if self.setup is not None:
            self.setup()
        gc.collect()
        try:
            return self.fn()
        finally:
            if self.teardown is not None:
                self.teardown()


@dataclasses.dataclass
class Column:
    key: str
    header: str
    fmt: str = "{:.3g}"


@dataclasses.dataclass
class Goal:
    threshold: float
    #: "<=" (lower is better) or ">=" (higher is better).
    op: Literal["<=", ">="]
    #: Labels of the truepar variants the goal applies to; the first one is the headline.
    applies_to: tuple[str, ...]

    def met(self, value: float) -> bool:
        return value <= self.threshold if self.op == "<=" else value >= self.threshold


@dataclasses.dataclass
class Benchmark:
    name: str
    title: str
    #: The key of the metric that is compared, with its unit and direction.
    metric: str
    unit: str
    better: Literal["lower", "higher"]
    goal: Goal
    variants: list[Variant]
    #: More metrics to show (medians), e.g. the outer wall next to truepar's own.
    columns: list[Column] = dataclasses.field(default_factory=list)
    fmt: str = "{:.3g}"
    notes: list[str] = dataclasses.field(default_factory=list)
    #: Run every variant once, untimed, before the timed repetitions.
    warmup: bool = True
    #: Called once, untimed, before anything else (e.g. a small warm-up instead of ``warmup``).
    prepare: Callable[[], None] | None = None
    #: Repetitions for this benchmark, if not the runner's (long ones may use fewer).
    repeats: int | None = None

    @property
    def headline(self) -> str:
        return self.goal.applies_to[0]


@dataclasses.dataclass
class Stats:
    median: float
    min: float
    max: float
    samples: list[float]

    @classmethod
    def of(cls, samples: list[float]) -> Stats:
        return cls(statistics.median(samples), min(samples), max(samples), samples)


def measure(bench: Benchmark, repeats: int) -> dict[str, dict[str, Stats]]:
    """Every variant's metrics over ``repeats`` round-robin repetitions."""
    if bench.prepare is not None:
        bench.prepare()
    if bench.warmup:
        for v in bench.variants:
            v.once()
    samples: dict[str, dict[str, list[float]]] = {v.label: {} for v in bench.variants}
    for _ in range(repeats):
        for v in bench.variants:
            metrics = v.once()
            for key, value in metrics.items():
                samples[v.label].setdefault(key, []).append(value)
    return {
        label: {key: Stats.of(vals) for key, vals in by_key.items()}
        for label, by_key in samples.items()
    }


def _cell(stats: Stats | None, fmt: str) -> str:
    return "-" if stats is None else fmt.format(stats.median)


def _spread(stats: Stats, fmt: str) -> str:
    return f"{fmt.format(stats.min)} – {fmt.format(stats.max)}"


def _table(rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(row)
        ]
        lines.append("  " + "  ".join(cells).rstrip())
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def report(bench: Benchmark, results: dict[str, dict[str, Stats]], repeats: int) -> dict[str, Any]:
    """Print the benchmark's table and goal lines; return everything as JSON-able data."""
    head = results[bench.headline][bench.metric].median
    direction = "lower is better" if bench.better == "lower" else "higher is better"
    print(f"\n== {bench.name}: {bench.title}")
    print(f"   metric: {bench.unit} ({direction}), median of {repeats} runs [min – max]")
    header = ["variant", "", f"{bench.unit}", "[min – max]", "÷ headline"]
    header += [c.header for c in bench.columns]
    rows = [header]
    for v in bench.variants:
        stats = results[v.label][bench.metric]
        ratio = stats.median / head if head else math.inf
        row = [
            v.label + (" *" if v.label == bench.headline else ""),
            v.kind,
            bench.fmt.format(stats.median),
            _spread(stats, bench.fmt),
            f"{ratio:.2f}",
        ]
        row += [_cell(results[v.label].get(c.key), c.fmt) for c in bench.columns]
        rows.append(row)
    print(_table(rows, right={2, 3, 4, *range(5, 5 + len(bench.columns))}))
    for v in bench.variants:
        if v.note:
            print(f"   - {v.label}: {v.note}")
    for note in bench.notes:
        print(f"   - {note}")

    def better(a: float, b: float) -> bool:
        return a < b if bench.better == "lower" else a > b

    peers = [v for v in bench.variants if v.kind == "peer"]
    best_peer = None
    for v in peers:
        m = results[v.label][bench.metric].median
        if best_peer is None or better(m, best_peer[1]):
            best_peer = (v.label, m)
    comparison = None
    if best_peer is not None and head and best_peer[1]:
        label, m = best_peer
        if bench.better == "lower":
            factor = m / head
            verdict = "faster" if factor >= 1 else "slower"
            shown = factor if factor >= 1 else 1 / factor
            print(
                f"   headline {bench.headline} {bench.fmt.format(head)} vs best peer {label} "
                f"{bench.fmt.format(m)} {bench.unit}: truepar is {shown:.2f}× {verdict}"
            )
        else:
            factor = head / m
            print(
                f"   headline {bench.headline} {bench.fmt.format(head)} vs best peer {label} "
                f"{bench.fmt.format(m)} {bench.unit}: truepar/peer = {factor:.3f}"
            )
        comparison = {"best_peer": label, "best_peer_median": m, "truepar_over_peer": head / m}

    goal_results = []
    for label in bench.goal.applies_to:
        value = results[label][bench.metric].median
        ok = bench.goal.met(value)
        goal_results.append({"variant": label, "median": value, "met": ok})
        mark = "met" if ok else "MISSED"
        print(
            f"   GOAL {bench.goal.op} {bench.fmt.format(bench.goal.threshold)} {bench.unit}"
            f" — {label}: {bench.fmt.format(value)} → {mark}"
        )
    return {
        "title": bench.title,
        "metric": bench.metric,
        "unit": bench.unit,
        "better": bench.better,
        "repeats": repeats,
        "goal": {
            "op": bench.goal.op,
            "threshold": bench.goal.threshold,
            "headline": bench.headline,
            "results": goal_results,
            "headline_met": goal_results[0]["met"],
        },
        "comparison": comparison,
        "notes": bench.notes,
        "variants": [
            {
                "label": v.label,
                "kind": v.kind,
                "note": v.note,
                "metrics": {
                    key: dataclasses.asdict(stats) for key, stats in results[v.label].items()
                },
            }
            for v in bench.variants
        ],
    }
