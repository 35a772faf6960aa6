"""The evidence document: one JSON file per ``run`` or ``bench`` that a third party can check.

It holds the plan (path, content hash, its ops with secrets redacted, and its dependency graph),
the environment it was measured in, and the raw data (every span, every trial's sample) next to
the statistics and verdicts derived from them. :func:`recompute` derives those numbers again from
the raw samples and names every one that does not follow — so an edited number is caught even
when the document is re-signed with someone else's key — and then checks that the raw samples
themselves are physically possible (:mod:`truepar.evidence.physics`), so that samples made up to
fit the numbers are caught too. :func:`check_schema` validates a document against
``schema.json`` (JSON Schema draft 2020-12), which ships with the package.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import truepar
from truepar.backends import baseline_for
from truepar.errors import UsageError
from truepar.evidence.canonical import canonical_bytes
from truepar.evidence.metadata import collect, redact_plan
from truepar.measure.results import BenchReport, Config, Sample
from truepar.measure.verdict import Thresholds
from truepar.plan.models import Plan
from truepar.records import RunTrace, finite, jsonable

SCHEMA_VERSION = 1
#: Relative tolerance of float comparisons between stored and recomputed numbers.
REL_TOL = 1e-9
#: Absolute tolerance, for numbers that should be zero (a CV of 1.7e-16 is zero).
ABS_TOL = 1e-12
#: The USL fit is an optimization (scipy): its last digits may differ between machines.
FIT_REL_TOL = 1e-6


# --------------------------------------------------------------------------- building


def _op_json(op: truepar.OpBase) -> dict[str, Any]:
    raw = op.model_dump(mode="python", exclude={"call"} if op.tool == "python" else None)
    out: dict[str, Any] = finite(jsonable(raw))
    if isinstance(op, truepar.PythonOp):
        out["call"] = op.call_name()
    return out


def plan_section(plan: Plan) -> dict[str, Any]:
    """The plan as evidence records it: path, content hash, redacted ops and the graph."""
    redacted = redact_plan({"ops": [_op_json(op) for op in plan.ops]})
    source = Path(plan.source)
    try:
        data = source.read_bytes() if plan.source != "<python>" and source.is_file() else None
    except OSError:
        data = None
    if data is None:
        data = canonical_bytes(
            {
                "name": plan.name,
                "defaults": plan.defaults.model_dump(mode="json"),
                "resources": {k: v.model_dump(mode="json") for k, v in plan.resources.items()},
                "ops": redacted["ops"],
            }
        )
    graph = truepar.build_graph(plan)
    return {
        "name": plan.name,
        # Absolute for a file, so that ``verify --reproduce`` finds it from any folder.
        "path": str(source.resolve())
        if plan.source != "<python>" and source.is_file()
        else plan.source,
        "sha256": hashlib.sha256(data).hexdigest(),
        "ops": redacted["ops"],
        "graph": {"ids": list(graph.ids), "preds": [list(p) for p in graph.preds]},
    }


def _document(
    kind: str, plan: Plan, data: dict[str, Any], started_utc: str, ended_utc: str
) -> dict[str, Any]:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "truepar_version": truepar.__version__,
        "started_utc": started_utc,
        "ended_utc": ended_utc,
        "plan": plan_section(plan),
        "environment": collect(plan.base_dir),
        "data": data,
    }
    out: dict[str, Any] = finite(jsonable(doc))
    canonical_bytes(out)  # raises UsageError if anything is not JSON
    return out


def bench_evidence(
    report: BenchReport,
    plan: Plan,
    *,
    started_utc: str,
    ended_utc: str,
    cores: int | None = None,
) -> dict[str, Any]:
    """The evidence of a bench. ``cores`` is what was given to ``bench(cores=...)`` (the cores
    behind the physical lower bound); it is recorded as ``data.cores`` so that the bounds can be
    recomputed on another machine. Default: this machine's available cores."""
    data = report.to_json()
    data["cores"] = cores or collect()["cores_available"]
    return _document("bench", plan, data, started_utc, ended_utc)


def run_evidence(
    trace: RunTrace, plan: Plan, *, started_utc: str, ended_utc: str
) -> dict[str, Any]:
    """The evidence of one run: every span and result, with the totals derived from them."""
    return _document("run", plan, trace.to_json(), started_utc, ended_utc)


# --------------------------------------------------------------------------- reading


def load_evidence(path: str | Path) -> dict[str, Any]:
    """Read an evidence file; :class:`UsageError` in one line naming the file if it cannot be."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read evidence: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not evidence: not UTF-8 text ({exc.reason})") from exc
    try:
        doc = json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as exc:
        cut = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        what = "truncated JSON" if cut else "not JSON"
        raise UsageError(
            f"{path}: not evidence: {what} ({exc.msg}: line {exc.lineno} column {exc.colno})"
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{path}: not evidence: {str(exc).splitlines()[0]}") from exc
    if not isinstance(doc, dict):
        raise UsageError(f"{path}: not evidence: a JSON {type(doc).__name__}, not an object")
    return doc


def load_schema() -> dict[str, Any]:
    text = importlib.resources.files("truepar.evidence").joinpath("schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def check_schema(doc: Any) -> list[str]:
    """One line per place where ``doc`` breaks the evidence schema (empty: it conforms)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema())
    lines = []
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path))):
        where = _path_text(error.absolute_path) or "the document"
        message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
        lines.append(f"{where}: {message}")
    return lines


def _path_text(parts: Sequence[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# --------------------------------------------------------------------------- recomputing


def recompute(doc: Mapping[str, Any]) -> list[str]:
    """Derive every number of ``doc`` again from its raw data; one line per number that differs,
    then one per law of physics a raw sample breaks (:mod:`truepar.evidence.physics`): raw
    samples made up to fit the numbers are caught too."""
    from truepar.evidence.physics import check_physics

    try:
        if doc.get("kind") == "bench":
            out = _recompute_bench(doc)
        elif doc.get("kind") == "run":
            out = _recompute_run(doc)
        elif doc.get("kind") == "prove":
            from truepar.evidence.prove_doc import recompute_prove

            out = recompute_prove(doc)
        else:
            return [f"unknown evidence kind {doc.get('kind')!r}: nothing can be recomputed"]
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        return [f"cannot recompute from this evidence: {type(exc).__name__}: {exc}"]
    return out + check_physics(doc)


def stand_in_plan(plan: Mapping[str, Any]) -> Plan:
    """A plan with the evidence's op ids and dependency edges (conflict edges made explicit):
    it has the same graph, hence the same critical path, as the plan that was measured."""
    ids = [str(i) for i in plan["graph"]["ids"]]
    preds = plan["graph"]["preds"]
    if len(preds) != len(ids):
        raise ValueError("plan.graph.preds does not have one entry per id")
    ops = [
        truepar.SleepOp(id=op_id, seconds=0, after=tuple(ids[int(p)] for p in preds[i]))
        for i, op_id in enumerate(ids)
    ]
    return Plan(
        name=str(plan["name"]),
        source=str(plan["path"]),
        ops=ops,
        defaults=truepar.Defaults(backend="fake"),
    )


def _key(result: Mapping[str, Any]) -> Config:
    return (str(result["backend"]), int(result["workers"]))


def bench_report_of(
    plan: Mapping[str, Any], data: Mapping[str, Any], environment: Mapping[str, Any]
) -> BenchReport:
    """The bench report that bench ``data`` derives from its raw samples (for its ``plan``
    section, measured in ``environment``): what a report shows and what ``verify`` compares."""
    from truepar.measure.bench import summarize

    samples = [Sample.from_json(t) for t in data["trials"]]
    configs: list[Config] = []
    if data["baseline"] is not None:
        configs.append(_key(data["baseline"]))
    else:
        configs.append(baseline_for({s.backend for s in samples}))
    for key in [*(_key(r) for r in data["results"]), *((s.backend, s.workers) for s in samples)]:
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
    return _recompute_bench_data(doc["plan"], doc["data"], doc["environment"])


def _recompute_bench_data(
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
    mine = {_key(r): r for r in again["results"]}
    theirs = {_key(r): r for r in stored}
    for key, result in theirs.items():
        label = f"{key[0]} ×{key[1]}"
        if key not in mine:
            out.append(f"{label}: in the evidence, but its samples give no result")
        else:
            out += _compare(result, mine[key], label)
    for key in mine:
        if key not in theirs:
            out.append(f"{key[0]} ×{key[1]}: its samples give a result the evidence lacks")
    if [_key(r) for r in stored] != [k for k in mine if k in theirs]:
        out.append("results: not in the order the configurations were measured")
    if (data["baseline"] is None) != (again["baseline"] is None):
        out.append("baseline: present in only one of the evidence and the recomputation")
    elif data["baseline"] is not None:
        label = f"baseline ({data['baseline']['backend']} ×{data['baseline']['workers']})"
        out += _compare(data["baseline"], again["baseline"], label)
    for field in ("best", "warnings"):
        out += _compare(data[field], again[field], field)
    out += _compare(data["scaling"], again["scaling"], "scaling", rel_tol=FIT_REL_TOL)
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
        out += _compare(raw[name], value, f"{label}: {name}", from_what="its spans")
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
        out += _compare(span["duration_s"], duration, f"{label}: duration_s", from_what="times")
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
        out += _compare(totals.get(name), value, f"totals: {name}", from_what="spans and results")
    return out


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return repr(value if len(value) <= 80 else value[:77] + "...")
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def _compare(
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
                out += _compare(stored[k], again[k], sub, rel_tol=rel_tol, from_what=from_what)
        return out
    elif isinstance(stored, list) and isinstance(again, list) and len(stored) == len(again):
        out = []
        for i, (a, b) in enumerate(zip(stored, again, strict=True)):
            out += _compare(a, b, f"{where}[{i}]", rel_tol=rel_tol, from_what=from_what)
        return out
    elif stored == again and type(stored) is type(again):
        return []
    shown, recomputed = _show(stored), _show(again)
    if shown == recomputed:
        shown, recomputed = repr(stored), repr(again)
    return [f"{where} is {shown} in the evidence, {recomputed} recomputed from {from_what}"]
