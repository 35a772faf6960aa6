"""The timelines an evidence document holds: one per run, each a list of spans in seconds.

Run evidence has one run. Bench evidence keeps every span of every trial; a report shows, per
configuration, its *representative* run — the measured (not warmup) trial whose wall time is
the median of that configuration's — so that a picture of "threads ×4" is a typical run of it,
not its luckiest. Prove evidence holds one bench per experiment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class Bar:
    """One span, in seconds from the start of its run."""

    op_id: str
    attempt: int
    tool: str
    status: str
    worker: int | None
    start_s: float
    end_s: float
    cpu_s: float | None
    bytes_out: int | None
    error: str | None
    #: The cluster node that ran it (a Ray node id); ``None`` on this machine.
    node: str | None = None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def row(self) -> Row:
        return (self.node, self.worker)


#: A timeline row: (node, worker). ``node`` is ``None`` for a run on one machine.
Row = tuple[str | None, int | None]


def row_label(row: Row) -> str:
    """ "worker 3", or "node 1a2b3c4d · worker 3" for a run over several machines."""
    node, worker = row
    what = "no worker" if worker is None else f"worker {worker}"
    return what if node is None else f"node {node[:8]} · {what}"


@dataclasses.dataclass(frozen=True, slots=True)
class Timeline:
    """One run: what it was (backend × workers, which trial), its wall time and its bars."""

    label: str
    backend: str
    workers: int
    wall_s: float
    bars: tuple[Bar, ...]
    #: Where it came from: "run", or "trial 2 of 3 (median wall)".
    note: str
    #: The bench (or prove experiment) it belongs to, for reports of several.
    group: str = ""

    @property
    def rows(self) -> list[Row]:
        """The (node, worker) pairs that ran something, in order: one timeline row each —
        grouped by node, workers in order, "no worker" last."""
        keys = {bar.row for bar in self.bars}
        return sorted(keys, key=lambda r: (r[0] or "", r[1] is None, r[1] or 0))

    @property
    def nodes(self) -> list[str | None]:
        """The nodes that ran something, in order (``[None]`` for a run on one machine)."""
        return list(dict.fromkeys(row[0] for row in self.rows))


def _worker(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def bars(spans: Sequence[Mapping[str, Any]], start_ns: int) -> tuple[Bar, ...]:
    out = []
    for span in spans:
        cpu = span.get("cpu_s")
        out.append(
            Bar(
                op_id=str(span["op_id"]),
                attempt=int(span.get("attempt") or 1),
                tool=str(span.get("tool") or "op"),
                status=str(span.get("status") or "ok"),
                worker=_worker(span.get("worker")),
                start_s=(int(span["start_ns"]) - start_ns) / 1e9,
                end_s=(int(span["end_ns"]) - start_ns) / 1e9,
                cpu_s=float(cpu) if isinstance(cpu, int | float) else None,
                bytes_out=span.get("bytes_out"),
                error=span.get("error"),
                node=str(span["node"]) if span.get("node") else None,
            )
        )
    return tuple(sorted(out, key=lambda b: (b.start_s, b.op_id)))


def run_timeline(data: Mapping[str, Any], group: str = "") -> Timeline:
    """The timeline of run evidence's ``data`` (or ``RunTrace.to_json()``)."""
    backend, workers = str(data.get("backend") or "run"), int(data.get("workers") or 1)
    start = int(data["start_ns"])
    wall = (int(data["end_ns"]) - start) / 1e9
    return Timeline(
        label=f"{backend} ×{workers}",
        backend=backend,
        workers=workers,
        wall_s=wall,
        bars=bars(data["spans"], start),
        note="run",
        group=group,
    )


def representative(trials: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The measured trial with the median wall time (the lower middle one of an even count)."""
    measured = [t for t in trials if not t.get("warmup")] or list(trials)
    if not measured:
        return None
    ordered = sorted(measured, key=lambda t: float(t["wall_s"]))
    return ordered[(len(ordered) - 1) // 2]


def bench_timelines(data: Mapping[str, Any], group: str = "") -> list[Timeline]:
    """One timeline per configuration of bench ``data``, baseline first, in measured order."""
    by_config: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for trial in data.get("trials") or []:
        key = (str(trial["backend"]), int(trial["workers"]))
        by_config.setdefault(key, []).append(trial)
    out = []
    for (backend, workers), trials in by_config.items():
        chosen = representative(trials)
        if chosen is None or "spans" not in chosen:
            continue
        measured = [t for t in trials if not t.get("warmup")]
        where = (
            f"the median-wall run of its {len(measured)} measured trial"
            + ("s" if len(measured) != 1 else "")
            if measured
            else "a warmup run (nothing was measured)"
        )
        out.append(
            Timeline(
                label=f"{backend} ×{workers}",
                backend=backend,
                workers=workers,
                wall_s=float(chosen["wall_s"]),
                bars=bars(chosen["spans"], int(chosen.get("start_ns") or 0)),
                note=where,
                group=group,
            )
        )
    return out


def benches(doc: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(title, bench data)`` for every bench in ``doc``: one for bench evidence, one per
    experiment for prove evidence, none for run evidence."""
    kind = doc.get("kind")
    if kind == "bench":
        yield str((doc.get("plan") or {}).get("name") or "bench"), doc["data"]
    elif kind == "prove":
        for experiment in doc["data"]["experiments"]:
            yield str(experiment["plan"]["name"]), experiment["bench"]


def timelines(doc: Mapping[str, Any]) -> list[Timeline]:
    """Every timeline of an evidence document, in the order a report shows them."""
    if doc.get("kind") == "run":
        return [run_timeline(doc["data"], str((doc.get("plan") or {}).get("name") or ""))]
    out: list[Timeline] = []
    for title, data in benches(doc):
        out += bench_timelines(data, title)
    return out
