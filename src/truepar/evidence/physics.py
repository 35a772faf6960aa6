"""What physics allows: the raw samples of evidence checked against the machine they claim.

:func:`~truepar.evidence.recompute.recompute` proves that every derived number follows from the
raw samples; it cannot see raw samples that were made up. Someone who halves a run's ``wall_s``,
recomputes the statistics with truepar's own code and re-signs with a key of their own passes
it. But the run they describe is impossible: its spans end after it does, it used more cores
than the machine has, its ops cannot fit in its wall. :func:`check_physics` names each such run,
one line per law it breaks, for every kind of evidence with raw samples (``run``: the run;
``bench``: each trial's sample; ``prove``: each experiment's bench). The laws:

* **time**: a span ends after it starts and starts after its op was ready; a run's wall and CPU
  are not negative; every span lies inside its run's wall; a bench's trials are recorded in
  the order they ran and, on a real clock, each run starts after the one before it ended;
* **cores**: a run's CPU, the sum of its spans' CPU, and each span's CPU fit in its wall times
  the cores available (cores used at most the cores there are);
* **bound**: a run's ops fit in its wall: their critical path does, and so does their total
  time spread over its workers (its bound efficiency is at most 1); and a bench
  configuration's median wall is not below that bound from the fastest baseline run's op times.

Time laws are exact up to :data:`TIME_SLACK_NS`: every timestamp of a run comes from one
monotonic clock, which worker processes share. CPU laws allow :data:`CPU_REL_TOL` plus an
absolute margin for CPU read in clock ticks, and a CPU quota's burst. The bench bound allows
:data:`BOUND_REL_TOL`: its op times are another run's.

The ``fake`` backend runs on a virtual clock and *declares* each op's CPU, for a machine of
``bench(cores=...)`` cores that need not be this one: its time laws hold and are checked, its CPU
laws do not apply. A bench's stored ``bound_efficiency`` is not itself a law: its CPU term (the
baseline's CPU over the cores) may honestly exceed the wall when the work shrank, as in a
``suspect`` configuration (a loop bounded by the clock does less work on more threads).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from truepar.backends import known_backend_class
from truepar.evidence.stand_in import stand_in_plan
from truepar.plan.graph import Graph, build_graph

#: Slack of the time laws (1 ms): a run's timestamps are one monotonic clock, so these laws are
#: exact; the slack covers ``wall_s``, stored as a float, and a coarse clock's rounding.
TIME_SLACK_NS = 1_000_000
#: Relative slack of the CPU laws.
CPU_REL_TOL = 0.05
#: Absolute slack of the CPU laws, per run and per span: two readings of a CPU clock that may
#: count in 10 ms ticks (as ``getrusage`` and ``/proc`` do on short samples).
CPU_ABS_S = 0.02
#: More absolute slack per worker of a run: each may be a process whose CPU is read in ticks.
CPU_ABS_PER_WORKER_S = 0.02
#: A cgroup CPU quota is enforced per period (100 ms by default): within one, a process may use
#: more cores than the quota gives, up to the machine's.
QUOTA_PERIOD_S = 0.1
#: Relative slack of a configuration's bound from the baseline's op times: the same work, but
#: run another time, where an op may go a little faster than in the fastest baseline run.
BOUND_REL_TOL = 0.10


@dataclasses.dataclass(frozen=True, slots=True)
class _Machine:
    cores: int  # cores available
    total: int  # cores in the machine

    def cpu_limit_s(self, wall_s: float, abs_s: float) -> float:
        """The most CPU seconds that ``wall_s`` of wall can hold here, slack included."""
        burst = max(0.0, min((self.total - self.cores) * wall_s, self.cores * QUOTA_PERIOD_S))
        return self.cores * wall_s * (1 + CPU_REL_TOL) + abs_s + burst

    def words(self) -> str:
        if self.total > self.cores:
            return f"with {self.cores} of the machine's {self.total} cores available"
        return f"on a {self.cores}-core machine"


@dataclasses.dataclass(frozen=True, slots=True)
class _Run:
    """One run as its evidence records it: a run document's data, or one bench sample."""

    label: str
    where: str
    backend: str
    workers: int
    start_ns: int | None  # None: the evidence has no timeline for it
    wall_ns: int
    cpu_s: float
    spans: Sequence[Mapping[str, Any]]

    @property
    def fake(self) -> bool:
        """Its clock is virtual and its CPU declared (a backend not installed here: real)."""
        cls = known_backend_class(self.backend)
        return cls is not None and (cls.virtual_clock or not cls.measures_real_cpu)

    @property
    def end_ns(self) -> int | None:
        return None if self.start_ns is None else self.start_ns + self.wall_ns


def check_physics(doc: Mapping[str, Any]) -> list[str]:
    """One line per law of physics that a raw sample of ``doc`` breaks (empty: none)."""
    try:
        kind = doc.get("kind")
        machine = _machine(doc)
        data = doc["data"]
        if kind == "run":
            return _check_run_doc(doc["plan"], data, machine)
        if kind == "bench":
            return _check_bench("bench", doc["plan"], data, machine)
        if kind == "prove":
            out: list[str] = []
            for j, exp in enumerate(data["experiments"]):
                label = f"prove experiments[{j}] ({exp['prefix']})"
                out += _check_bench(label, exp["plan"], exp["bench"], machine)
            return out
        return []
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        return [f"cannot check the physics of this evidence: {type(exc).__name__}: {exc}"]


def _machine(doc: Mapping[str, Any]) -> _Machine:
    """The cores the evidence says it ran on: the most that any of its environments records."""
    data = doc.get("data") or {}
    envs = [doc.get("environment") or {}, data.get("environment") or {}]
    envs += [exp["bench"].get("environment") or {} for exp in data.get("experiments") or ()]
    cores = max([int(e["cores_available"]) for e in envs if e.get("cores_available")] or [0])
    total = max([int(e["cores_total"]) for e in envs if e.get("cores_total")] or [0])
    if cores < 1:
        raise ValueError("the environment records no cores_available")
    return _Machine(cores, max(total, cores))


def _graph(plan: Mapping[str, Any]) -> Graph:
    return build_graph(stand_in_plan(plan))


def _sec(x: float) -> str:
    return f"{x:.2f} s" if abs(x) >= 1 else f"{x:.3g} s"


def _workers(n: int) -> str:
    return f"{n} worker{'s' * (n != 1)}"


def _cores(cpu_s: float, wall_s: float) -> str:
    return f"{cpu_s / wall_s:.2f} cores" if wall_s > 0 else "infinitely many cores"


# --------------------------------------------------------------------------- kinds


def _check_run_doc(plan: Mapping[str, Any], data: Mapping[str, Any], m: _Machine) -> list[str]:
    start, end = int(data["start_ns"]), int(data["end_ns"])
    run = _Run(
        label=f"run ({data['backend']}, {_workers(int(data['workers']))})",
        where="data",
        backend=str(data["backend"]),
        workers=int(data["workers"]),
        start_ns=start,
        wall_ns=end - start,
        cpu_s=float(data["totals"]["cpu_s"]),
        spans=list(data["spans"]),
    )
    return _check_run(run, _graph(plan), m)


def _check_bench(
    label: str, plan: Mapping[str, Any], data: Mapping[str, Any], m: _Machine
) -> list[str]:
    graph = _graph(plan)
    trials = list(data["trials"])
    out: list[str] = []
    runs: list[_Run] = []
    for i, raw in enumerate(trials):
        trial = int(raw["trial"])
        when = "priming run" if trial < 0 else f"{'warmup ' if raw['warmup'] else ''}trial {trial}"
        spans = list(raw.get("spans") or ())
        start = raw.get("start_ns")
        run = _Run(
            label=f"{label} trials[{i}] ({raw['backend']}, {_workers(int(raw['workers']))}, "
            f"{when})",
            where=f"trials[{i}]",
            backend=str(raw["backend"]),
            workers=int(raw["workers"]),
            # Evidence written before timelines were recorded has neither start nor spans.
            start_ns=int(start) if start is not None and (start or spans) else None,
            wall_ns=round(float(raw["wall_s"]) * 1e9),
            cpu_s=float(raw["cpu_s"]),
            spans=spans,
        )
        out += _check_run(run, graph, m)
        if i and trial < int(trials[i - 1]["trial"]):
            out.append(
                f"{run.label}: recorded after trial {trials[i - 1]['trial']}: "
                "the trials are not in the order they ran"
            )
        out += _check_one_at_a_time(run, runs)
        runs.append(run)
    out += _check_config_bounds(label, data, trials, runs, graph)
    return out


# --------------------------------------------------------------------------- one run


def _check_run(run: _Run, graph: Graph, m: _Machine) -> list[str]:
    out: list[str] = []
    wall_s = run.wall_ns / 1e9
    if run.wall_ns < 0:
        out.append(f"{run.label}: its wall time is negative ({_sec(wall_s)})")
    if run.cpu_s < 0:
        out.append(f"{run.label}: its CPU time is negative ({_sec(run.cpu_s)})")
    out += [f"{run.label}: {line}" for line in _check_spans(run, m)]
    if not run.fake:  # the fake backend's CPU is declared, for a machine of its own
        limit = m.cpu_limit_s(wall_s, CPU_ABS_S + CPU_ABS_PER_WORKER_S * run.workers)
        span_cpu = sum(float(s["cpu_s"]) for s in run.spans if s.get("cpu_s") is not None)
        for what, cpu in (("CPU", run.cpu_s), ("its spans' CPU", span_cpu)):
            if cpu > limit:
                out.append(
                    f"{run.label}: {what} {_sec(cpu)} in {_sec(wall_s)} of wall is "
                    f"{_cores(cpu, wall_s)} {m.words()}"
                )
    if run.spans:
        bound, why = _bound(graph, _op_times(run.spans), run.workers)
        if bound * 1e9 > run.wall_ns + TIME_SLACK_NS:
            out.append(
                f"{run.label}: {why}, more than its {_sec(wall_s)} of wall "
                f"(bound efficiency {_ratio(bound, wall_s)} > 1)"
            )
    return out


def _ratio(bound: float, wall_s: float) -> str:
    return f"{bound / wall_s:.2f}" if wall_s > 0 else "infinite"


def _check_spans(run: _Run, m: _Machine) -> list[str]:
    """Per law, one line naming the span that breaks it most, and how many more do."""
    broken: dict[str, list[tuple[float, str]]] = {}

    def breaks(law: str, by: float, text: str) -> None:
        broken.setdefault(law, []).append((by, text))

    for i, span in enumerate(run.spans):
        name = f"span {i} (op {span.get('op_id')}, attempt {span.get('attempt')})"
        start, end, ready = int(span["start_ns"]), int(span["end_ns"]), int(span["ready_ns"])
        if end < start:
            breaks("end", start - end, f"{name} ends {_sec((start - end) / 1e9)} before it starts")
        if ready - start > TIME_SLACK_NS:
            gap = _sec((ready - start) / 1e9)
            breaks("ready", ready - start, f"{name} starts {gap} before its op was ready")
        if run.start_ns is not None and run.end_ns is not None:
            early = run.start_ns - min(start, ready)
            if early > TIME_SLACK_NS:
                breaks("early", early, f"{name} starts {_sec(early / 1e9)} before the run began")
            late = end - run.end_ns
            if late > TIME_SLACK_NS:
                wall = _sec(run.wall_ns / 1e9)
                text = f"{name} ends {_sec(late / 1e9)} after the run ended (its wall: {wall})"
                breaks("late", late, text)
        if span.get("cpu_s") is None:
            continue
        cpu = float(span["cpu_s"])
        duration = max(0, end - start) / 1e9
        if cpu < 0:
            breaks("negative", -cpu, f"{name} has negative CPU ({_sec(cpu)})")
        elif not run.fake and cpu > m.cpu_limit_s(duration, CPU_ABS_S):
            text = f"{name}: CPU {_sec(cpu)} in {_sec(duration)} is {_cores(cpu, duration)}"
            breaks("cpu", cpu - duration * m.cores, f"{text} {m.words()}")
    out = []
    for cases in broken.values():
        worst = max(cases, key=lambda c: c[0])[1]
        out.append(worst if len(cases) == 1 else f"{worst}; and {len(cases) - 1} more spans")
    return out


def _op_times(spans: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Per op, the time of all its attempts (they run one after another)."""
    op_s: dict[str, float] = {}
    for span in spans:
        duration = max(0, int(span["end_ns"]) - int(span["start_ns"])) / 1e9
        op_s[str(span["op_id"])] = op_s.get(str(span["op_id"]), 0.0) + duration
    return op_s


def _bound(graph: Graph, op_s: Mapping[str, float], workers: int) -> tuple[float, str]:
    """The least wall in which ops taking ``op_s`` fit on ``workers``, and why, in words: ops
    that depend on each other run one after another, and at most ``workers`` run at once."""
    crit, path = graph.critical_path(op_s)
    total = sum(op_s.values())
    spread = total / max(1, workers)
    if crit > spread:
        shown = " → ".join(path) if len(path) <= 4 else f"{path[0]} → … → {path[-1]}"
        return crit, f"its critical path ({shown}) takes {_sec(crit)}"
    return spread, f"{_sec(total)} of op time on {_workers(workers)} takes {_sec(spread)}"


# --------------------------------------------------------------------------- a bench's runs


def _check_one_at_a_time(run: _Run, before: Sequence[_Run]) -> list[str]:
    """A bench runs one run at a time: each starts after the one before it ended."""
    if run.fake or run.start_ns is None:
        return []  # each fake run has a virtual clock of its own, all starting at one instant
    real = [r for r in before if not r.fake and r.end_ns is not None]
    if not real or real[-1].end_ns is None:
        return []
    overlap = real[-1].end_ns - run.start_ns
    if overlap <= TIME_SLACK_NS:
        return []
    return [
        f"{run.label}: starts {_sec(overlap / 1e9)} before the run before it "
        f"({real[-1].where}) ended, but a bench runs one at a time"
    ]


def _check_config_bounds(
    label: str,
    data: Mapping[str, Any],
    trials: Sequence[Mapping[str, Any]],
    runs: Sequence[_Run],
    graph: Graph,
) -> list[str]:
    """Each configuration's median wall against the bound of the fastest baseline op times."""
    base = data.get("baseline")
    if base is None:
        return []
    key = (str(base["backend"]), int(base["workers"]))
    fastest: dict[str, float] = {}
    for r in runs:
        if (r.backend, r.workers) == key:
            for op_id, seconds in _op_times(r.spans).items():
                fastest[op_id] = min(seconds, fastest.get(op_id, seconds))
    out = []
    for i, result in enumerate(data["results"]):
        backend, workers = str(result["backend"]), int(result["workers"])
        mine = [
            raw
            for raw, r in zip(trials, runs, strict=True)
            if (r.backend, r.workers) == (backend, workers) and not raw["warmup"]
        ]
        if not mine or not fastest:
            continue
        # Only ops that did their work in every run count: an op that failed at once took no
        # time, however long it takes when it succeeds.
        done = {
            k: v for k, v in fastest.items() if all(t["op_status"].get(k) == "ok" for t in mine)
        }
        bound, why = _bound(graph, done, workers)
        wall_s = float(result["wall_s"])
        if bound <= wall_s * (1 + BOUND_REL_TOL) + TIME_SLACK_NS / 1e9:
            continue
        out.append(
            f"{label} results[{i}] ({backend}, {_workers(workers)}): at the fastest baseline "
            f"op times, {why}, more than its median wall {_sec(wall_s)} "
            f"(bound efficiency {_ratio(bound, wall_s)} > 1)"
        )
    return out
