"""``verify --reproduce``: run a bench's plan (or a prove) again, here, and compare it with its
evidence.

Bench evidence: the same plan file (found at the path the evidence records), the same backends
and worker counts, the same ``repeat``, ``warmup``, ``cores`` and thresholds. Prove evidence: the
same task count, trials and kernel size (``kernel.n``), so the work is identical. A configuration
reproduces when its verdict is the same and its speedup is within ``tolerance`` (relative) of the
recorded one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from truepar.backends import baseline_for
from truepar.errors import UsageError
from truepar.measure.bench import bench
from truepar.measure.prove import ProveReport, prove
from truepar.measure.results import BenchReport
from truepar.measure.verdict import Thresholds

OK, BAD = "✓", "✗"


@dataclass(frozen=True)
class Reproduction:
    """``ok`` when every configuration reproduced; one line per configuration (and warnings)."""

    ok: bool
    lines: list[str]
    report: BenchReport | ProveReport


def plan_path(doc: Mapping[str, Any]) -> Path | None:
    """The plan file a bench evidence names (``None`` for prove evidence, which needs none);
    :class:`UsageError` (one line) if it cannot rerun."""
    if doc.get("kind") == "prove":
        return None
    if doc.get("kind") != "bench":
        raise UsageError("only bench or prove evidence can be reproduced")
    plan = doc.get("plan")
    path = plan.get("path") if isinstance(plan, Mapping) else None
    if not isinstance(path, str) or not path or path == "<python>":
        raise UsageError("cannot reproduce: the evidence names no plan file to rerun")
    if not Path(path).is_file():
        raise UsageError(
            f"cannot reproduce: plan file {path} not found; the plan must be at that path"
        )
    return Path(path)


def _verdict(value: Any) -> str:
    return "none" if value is None else str(value)


def _key(entry: Mapping[str, Any]) -> tuple[str, int]:
    return str(entry["backend"]), int(entry["workers"])


def reproduce(doc: Mapping[str, Any], *, tolerance: float = 0.25) -> Reproduction:
    """Rerun what ``doc`` records and compare verdicts and speedups, configuration by one."""
    if not tolerance >= 0:
        raise UsageError(f"tolerance must be 0 or more, not {tolerance}")
    path = plan_path(doc)
    if path is None:
        return _reproduce_prove(doc, tolerance)
    data = doc["data"]
    lines: list[str] = []
    recorded_sha = doc["plan"].get("sha256")
    try:
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise UsageError(f"cannot reproduce: cannot read plan file {path}: {exc}") from exc
    if recorded_sha and sha != recorded_sha:
        lines.append(f"warning: plan file {path} changed since the evidence (sha256 differs)")
    try:
        then = {_key(r): r for r in data["results"]}
        repeat, warmup = int(data["repeat"]), int(data["warmup"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"cannot reproduce: the evidence's data cannot be rerun: {exc!r}") from exc
    backends = list(dict.fromkeys(b for b, _ in then))
    workers = list(dict.fromkeys(w for _, w in then))
    baseline, _ = baseline_for(backends)
    measured = [b for b in backends if b != baseline] or backends
    thresholds = Thresholds(**data["thresholds"]) if "thresholds" in data else None
    kwargs: dict[str, Any] = {} if thresholds is None else {"thresholds": thresholds}
    report = bench(
        str(path),
        backends=measured,
        workers=[w for w in workers if any((b, w) in then for b in measured)] or workers,
        repeat=repeat,
        warmup=warmup,
        cores=data.get("cores"),
        **kwargs,
    )
    now = {(r.backend, r.workers): (r.speedup, r.verdict) for r in report.results}
    ok = bool(report.complete)
    if not report.complete:
        lines.append("the rerun did not complete")
    recorded = {
        key: (f"{key[0]} ×{key[1]}", float(old["speedup"]), old.get("verdict"))
        for key, old in then.items()
    }
    ok &= _compare(recorded, now, tolerance, lines)
    return Reproduction(ok=ok, lines=lines, report=report)


def _compare(
    then: Mapping[Any, tuple[str, float, Any]],
    now: Mapping[Any, tuple[float, Any]],
    tolerance: float,
    lines: list[str],
) -> bool:
    """One line per recorded configuration; whether every one reproduced."""
    ok = True
    for key, (label, s_then, v_then_raw) in then.items():
        if key not in now:
            lines.append(f"{BAD} {label}: not measured now")
            ok = False
            continue
        s_now, v_now_raw = now[key]
        change = (s_now - s_then) / s_then if s_then else float("inf")
        pct = f"{change * 100:+.0f}%".replace("-", "−")
        v_then, v_now = _verdict(v_then_raw), _verdict(v_now_raw)
        text = f"{label}: speedup {s_then:.2f} then, {s_now:.2f} now ({pct})"
        problems = []
        if abs(change) > tolerance:
            problems.append(f"beyond ±{tolerance * 100:.0f}%")
        if v_then == v_now:
            text += f", verdict {v_then} both"
        else:
            problems.append(f"verdict {v_then} then, {v_now} now")
        mark = OK if not problems else BAD
        lines.append(f"{mark} {text}" + ("" if not problems else " — " + "; ".join(problems)))
        ok &= not problems
    return ok


def _reproduce_prove(doc: Mapping[str, Any], tolerance: float) -> Reproduction:
    """Prove again with the recorded tasks, trials and kernel size; compare by result name."""

    data = doc["data"]
    try:
        then = {
            str(r["name"]): (str(r["name"]), float(r["speedup"]), r.get("verdict"))
            for r in data["results"]
        }
        tasks, repeat, warmup = int(data["tasks"]), int(data["repeat"]), int(data["warmup"])
        kernel_n = int(data["kernel"]["n"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"cannot reproduce: the evidence's data cannot be rerun: {exc!r}") from exc
    report = prove(tasks=tasks, repeat=repeat, warmup=warmup, kernel_n=kernel_n)
    lines: list[str] = []
    if not report.complete:
        lines.append("the rerun did not complete")
    now = {r.name: (r.speedup, r.verdict) for r in report.results}
    ok = _compare(then, now, tolerance, lines) and report.complete
    if not report.checksums_ok:
        lines.append(f"{BAD} a task result was wrong or missing in the rerun")
        ok = False
    return Reproduction(ok=ok, lines=lines, report=report)
