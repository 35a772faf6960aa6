"""``verify --reproduce``: run a bench's plan again, here, and compare it with its evidence.

The same plan file (found at the path the evidence records), the same backends and worker counts,
the same ``repeat``, ``warmup``, ``cores`` and thresholds. A configuration reproduces when its
verdict is the same and its speedup is within ``tolerance`` (relative) of the recorded one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from truepar.errors import UsageError
from truepar.measure.bench import bench
from truepar.measure.results import BenchReport
from truepar.measure.verdict import Thresholds

OK, BAD = "✓", "✗"


@dataclass(frozen=True)
class Reproduction:
    """``ok`` when every configuration reproduced; one line per configuration (and warnings)."""

    ok: bool
    lines: list[str]
    report: BenchReport


def plan_path(doc: Mapping[str, Any]) -> Path:
    """The plan file a bench evidence names; :class:`UsageError` (one line) if it cannot rerun."""
    if doc.get("kind") != "bench":
        raise UsageError("--reproduce needs bench evidence")
    plan = doc.get("plan")
    path = plan.get("path") if isinstance(plan, Mapping) else None
    if not isinstance(path, str) or not path or path == "<python>":
        raise UsageError("--reproduce: the evidence names no plan file to rerun")
    if not Path(path).is_file():
        raise UsageError(f"--reproduce: plan file {path} not found; the plan must be at that path")
    return Path(path)


def _verdict(value: Any) -> str:
    return "none" if value is None else str(value)


def _key(entry: Mapping[str, Any]) -> tuple[str, int]:
    return str(entry["backend"]), int(entry["workers"])


def reproduce(doc: Mapping[str, Any], *, tolerance: float = 0.25) -> Reproduction:
    """Rerun the bench ``doc`` records and compare verdicts and speedups, configuration by one."""
    if not tolerance >= 0:
        raise UsageError(f"--tolerance must be 0 or more, not {tolerance}")
    path = plan_path(doc)
    data = doc["data"]
    lines: list[str] = []
    recorded_sha = doc["plan"].get("sha256")
    try:
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise UsageError(f"--reproduce: cannot read plan file {path}: {exc}") from exc
    if recorded_sha and sha != recorded_sha:
        lines.append(f"warning: plan file {path} changed since the evidence (sha256 differs)")
    try:
        then = {_key(r): r for r in data["results"]}
        repeat, warmup = int(data["repeat"]), int(data["warmup"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"--reproduce: the evidence's data cannot be rerun: {exc!r}") from exc
    backends = list(dict.fromkeys(b for b, _ in then))
    workers = list(dict.fromkeys(w for _, w in then))
    baseline = "fake" if "fake" in backends else "sequential"
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
    now = {(r.backend, r.workers): r for r in report.results}
    ok = bool(report.complete)
    if not report.complete:
        lines.append("the rerun did not complete")
    for key, old in then.items():
        label = f"{key[0]} ×{key[1]}"
        new = now.get(key)
        if new is None:
            lines.append(f"{BAD} {label}: not measured now")
            ok = False
            continue
        s_then, s_now = float(old["speedup"]), float(new.speedup)
        change = (s_now - s_then) / s_then if s_then else float("inf")
        pct = f"{change * 100:+.0f}%".replace("-", "−")
        speed_ok = abs(change) <= tolerance
        v_then, v_now = _verdict(old.get("verdict")), _verdict(new.verdict)
        verdict_ok = v_then == v_now
        text = f"{label}: speedup {s_then:.2f} then, {s_now:.2f} now ({pct})"
        problems = []
        if not speed_ok:
            problems.append(f"beyond ±{tolerance * 100:.0f}%")
        if verdict_ok:
            text += f", verdict {v_then} both"
        else:
            problems.append(f"verdict {v_then} then, {v_now} now")
        mark = OK if not problems else BAD
        lines.append(f"{mark} {text}" + ("" if not problems else " — " + "; ".join(problems)))
        ok &= not problems
    return Reproduction(ok=ok, lines=lines, report=report)
