"""Deriving every number of an evidence document again from its raw samples.

:func:`recompute` names every stored number that does not follow — so an edited number is caught
even when the document is re-signed with someone else's key — and then checks that the raw
samples themselves are physically possible (:mod:`truepar.evidence.physics`), so that samples
made up to fit the numbers are caught too. It expects a document that conforms to the schema
(:func:`truepar.evidence.read.check_schema`): verify checks that first.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from truepar.backends import baseline_for
from truepar.evidence.physics import check_physics
from truepar.evidence.read import check_schema
from truepar.evidence.stand_in import config_key, stand_in_plan
from truepar.measure.bench import summarize
from truepar.measure.experiments import experiment_results
from truepar.measure.results import BenchReport, Config, Sample
from truepar.measure.verdict import Thresholds
from truepar.records import finite

#: Relative tolerance of float comparisons between stored and recomputed numbers.
REL_TOL = 1e-9
#: Absolute tolerance, for numbers that should be zero (a CV of 1.7e-16 is zero).
ABS_TOL = 1e-12
#: The USL fit is an optimization (scipy): its last digits may differ between machines.
FIT_REL_TOL = 1e-6


def recompute(doc: Mapping[str, Any]) -> list[str]:
    """Derive every number of ``doc`` again from its raw data; one line per number that differs,
    then one per law of physics a raw sample breaks (:mod:`truepar.evidence.physics`): raw
    samples made up to fit the numbers are caught too.

    A document that does not conform to the schema is not recomputed (one line says so): what
    follows relies on the fields the schema requires.
    """
    if check_schema(doc):
        return ["not recomputed: the document does not conform to the evidence schema"]
    try:
        if doc.get("kind") == "bench":
            out = _recompute_bench(doc)
        elif doc.get("kind") == "run":
            out = _recompute_run(doc)
        elif doc.get("kind") == "prove":
            out = recompute_prove(doc)
        else:
            return [f"unknown evidence kind {doc.get('kind')!r}: nothing can be recomputed"]
    except (KeyError, TypeError, ValueError) as exc:  # consistent in shape, not in content
        return [f"cannot recompute from this evidence: {type(exc).__name__}: {exc}"]
    return out + check_physics(doc)


def bench_report_of(
    plan: Mapping[str, Any], data: Mapping[str, Any], environment: Mapping[str, Any]
) -> BenchReport:
    """The bench report that bench ``data`` derives from its raw samples (for its ``plan``
    section, measured in ``environment``): what a report shows and what ``verify`` compares."""
    samples = [Sample.from_json(t) for t in data["trials"]]
    configs: list[Config] = []
    if data["baseline"] is not None:
        configs.append(config_key(data["baseline"]))
    else:
        configs.append(baseline_for({s.backend for s in samples}))
    for key in [
        *(config_key(r) for r in data["results"]),
        *((s.backend, s.workers) for s in samples),
    ]:
        if key not in configs:
            configs.append(key)
    cores = data.get("cores") or environment["cores_available"]
    load = data.get("environment", {}).get("load_average_1m")
    return summarize(
        stand_in_plan(plan),
        configs,
        samples,
        Thresholds(**data["thresholds"]),
        None if load is None else float(load),
        int(data["repeat"]),
        int(data["warmup"]),
        bool(data["complete"]),
        int(cores),
    )


def _recompute_bench(doc: Mapping[str, Any]) -> list[str]:
    return recompute_bench_data(doc["plan"], doc["data"], doc["environment"])


def recompute_bench_data(
    plan: Mapping[str, Any], data: Mapping[str, Any], environment: Mapping[str, Any]
) -> list[str]:
    out = []
    for i, raw in enumerate(data["trials"]):
        failed = sorted(str(k) for k, v in raw["op_status"].items() if v != "ok")
        if raw.get("failed_ops") != failed:
            out.append(
                f"trial sample {i}: failed_ops is {raw.get('failed_ops')} in the evidence, "
                f"{failed} from its op_status"
            )
        out += _check_sample_spans(i, raw)
    stored = list(data["results"])
    report = bench_report_of(plan, data, environment)
    again = report.to_json()
    mine = {config_key(r): r for r in again["results"]}
    theirs = {config_key(r): r for r in stored}
    for key, result in theirs.items():
        label = f"{key[0]} ×{key[1]}"
        if key not in mine:
            out.append(f"{label}: in the evidence, but its samples give no result")
        else:
            out += compare(result, mine[key], label)
    for key in mine:
        if key not in theirs:
            out.append(f"{key[0]} ×{key[1]}: its samples give a result the evidence lacks")
    if [config_key(r) for r in stored] != [k for k in mine if k in theirs]:
        out.append("results: not in the order the configurations were measured")
    if (data["baseline"] is None) != (again["baseline"] is None):
        out.append("baseline: present in only one of the evidence and the recomputation")
    elif data["baseline"] is not None:
        label = f"baseline ({data['baseline']['backend']} ×{data['baseline']['workers']})"
        out += compare(data["baseline"], again["baseline"], label)
    for field in ("best", "warnings"):
        out += compare(data[field], again[field], field)
    out += compare(data["scaling"], again["scaling"], "scaling", rel_tol=FIT_REL_TOL)
    return out


def _check_sample_spans(i: int, raw: Mapping[str, Any]) -> list[str]:
    """A sample's per-op times, bytes and total against its spans, the data they sum."""
    op_s: dict[str, float] = {}
    op_bytes: dict[str, int] = {}
    for span in raw["spans"]:
        op_id = str(span["op_id"])
        duration = (int(span["end_ns"]) - int(span["start_ns"])) / 1e9
        op_s[op_id] = op_s.get(op_id, 0.0) + duration
        if span["status"] == "ok":
            op_bytes[op_id] = int(span["bytes_out"])
    label = f"trial sample {i}"
    derived = {"op_s": op_s, "op_bytes": op_bytes, "sum_op_s": sum(op_s.values())}
    out: list[str] = []
    for name, value in derived.items():
        out += compare(raw[name], value, f"{label}: {name}", from_what="its spans")
    return out


def _recompute_run(doc: Mapping[str, Any]) -> list[str]:
    data = doc["data"]
    totals = data["totals"]
    out = []
    sum_op_s = 0.0
    for i, span in enumerate(data["spans"]):
        duration = (int(span["end_ns"]) - int(span["start_ns"])) / 1e9
        sum_op_s += duration
        label = f"span {i} ({span.get('op_id')})"
        out += compare(span["duration_s"], duration, f"{label}: duration_s", from_what="times")
    wall_s = (int(data["end_ns"]) - int(data["start_ns"])) / 1e9
    cpu_s = float(totals["cpu_s"])
    statuses = [str(r["status"]) for r in data["results"].values()]
    derived: dict[str, Any] = {
        "wall_s": wall_s,
        "sum_op_s": sum_op_s,
        "avg_concurrency": sum_op_s / wall_s if wall_s > 0 else 0.0,
        "cores_used": cpu_s / wall_s if wall_s > 0 else 0.0,
        "ops": len(doc["plan"]["ops"]),
        "ok": statuses.count("ok"),
        "failed": sum(statuses.count(s) for s in ("failed", "timeout", "crashed")),
        "skipped": statuses.count("skipped"),
        "cancelled": statuses.count("cancelled"),
    }
    for name, value in derived.items():
        out += compare(totals.get(name), value, f"totals: {name}", from_what="spans and results")
    return out


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return repr(value if len(value) <= 80 else value[:77] + "...")
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def compare(
    stored: Any,
    again: Any,
    where: str,
    *,
    rel_tol: float = REL_TOL,
    from_what: str = "its samples",
) -> list[str]:
    """One line per leaf where ``stored`` and the recomputed ``again`` differ."""
    numbers = (int, float)
    if (
        isinstance(stored, numbers)
        and isinstance(again, numbers)
        and not isinstance(stored, bool)
        and not isinstance(again, bool)
    ):
        if math.isclose(stored, again, rel_tol=rel_tol, abs_tol=ABS_TOL):
            return []
    elif isinstance(stored, Mapping) and isinstance(again, Mapping):
        out = []
        for k in dict.fromkeys([*stored, *again]):
            sub = f"{where}: {k}" if ": " not in where and " ×" in where else f"{where}.{k}"
            if k not in stored:
                out.append(f"{sub}: missing from the evidence")
            elif k not in again:
                out.append(f"{sub}: in the evidence, but not a derived field")
            else:
                out += compare(stored[k], again[k], sub, rel_tol=rel_tol, from_what=from_what)
        return out
    elif isinstance(stored, list) and isinstance(again, list) and len(stored) == len(again):
        out = []
        for i, (a, b) in enumerate(zip(stored, again, strict=True)):
            out += compare(a, b, f"{where}[{i}]", rel_tol=rel_tol, from_what=from_what)
        return out
    elif stored == again and type(stored) is type(again):
        return []
    shown, recomputed = _show(stored), _show(again)
    if shown == recomputed:
        shown, recomputed = repr(stored), repr(again)
    return [f"{where} is {shown} in the evidence, {recomputed} recomputed from {from_what}"]


def recompute_prove(doc: Mapping[str, Any]) -> list[str]:
    """One line per number of prove evidence that its raw samples do not give again."""
    data, env = doc["data"], doc["environment"]
    gil = bool(env.get("gil_enabled", True))
    cores = int(data["experiments"][0]["bench"].get("cores") or env["cores_available"])
    tasks = int(data["tasks"])
    out: list[str] = []
    derived: list[dict[str, Any]] = []
    for exp in data["experiments"]:
        prefix = str(exp["prefix"])
        bench = exp["bench"]
        out += [f"{prefix}: {line}" for line in recompute_bench_data(exp["plan"], bench, env)]
        report = bench_report_of(exp["plan"], bench, env)
        want = {str(k): str(v) for k, v in exp["expected_digests"].items()}
        results = experiment_results(prefix, report, want, gil=gil, cores=cores, tasks=tasks)
        derived += [finite(r.to_json()) for r in results]
    stored = list(data["results"])
    if len(stored) != len(derived):
        out.append(f"results: {len(stored)} in the evidence, {len(derived)} from its experiments")
    for mine, theirs in zip(derived, stored, strict=False):
        out += compare(theirs, mine, f"prove {mine['name']} ×{mine['workers']}")
    ok = bool(data["complete"]) and all(r["as_expected"] and r["checksums_ok"] for r in derived)
    out += compare(data["ok"], ok, "ok")
    out += compare(data["checksums_ok"], all(r["checksums_ok"] for r in derived), "checksums_ok")
    return out
