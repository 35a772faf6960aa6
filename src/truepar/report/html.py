"""Evidence as one self-contained HTML file: open it anywhere, no network, no script.

Per evidence document: the signature status, the configurations with their verdicts and reasons,
the scaling curve with the USL fit, a Gantt timeline per configuration (its median-wall trial,
one row per worker, coloured by status, all on one time scale) and the environment. Several
documents (``truepar demo``'s three scenarios) go in one file. Rendered with Jinja2, with
autoescaping: nothing in a plan or an error message can inject markup.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from truepar._version import __version__
from truepar.evidence.keys import Trust
from truepar.evidence.signing import check_signature
from truepar.report import svg
from truepar.report.timeline import Timeline, bench_timelines, benches, timelines
from truepar.units import fmt_num as num
from truepar.units import fmt_s3

KINDS = ("bench", "run", "prove")


def _ci(value: Any, ci: Any, fmt: Callable[[float], str]) -> str:
    lo, hi = (ci or [None, None])[:2]
    if not isinstance(value, int | float):
        return "—"
    if isinstance(lo, int | float) and isinstance(hi, int | float):
        return f"{fmt(value)} [{fmt(lo)}–{fmt(hi)}]"
    return fmt(value)


def _ratio(value: Any) -> str:
    return num(value, ".2f", "×")


def signature_status(doc: Mapping[str, Any], trust: Trust | None) -> dict[str, Any]:
    check = check_signature(doc, trust)
    if "signature" not in doc:
        return {"valid": False, "text": "unsigned (truepar keys init, then write it again)"}
    if not check.valid:
        return {"valid": False, "text": f"INVALID — {check.reason}"}
    if trust is None:
        text = f"valid, key {check.key_id} (no trust list given: trust not checked)"
    elif check.trusted:
        text = f"valid and trusted: {check.signer} (key {check.key_id})"
    else:
        text = f"valid but UNTRUSTED: key {check.key_id} is not in the trust list"
    return {"valid": check.valid and (trust is None or check.trusted), "text": text}


def _rows(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    baseline = data.get("baseline")
    best = data.get("best")
    out = []
    for r in ([baseline] if baseline else []) + list(data.get("results") or []):
        label = f"{r['backend']} ×{r['workers']}"
        out.append(
            {
                "label": label,
                "baseline": r is baseline,
                "best": label == best and r is not baseline,
                "wall": _ci(r.get("wall_s"), r.get("wall_ci_s"), fmt_s3),
                "speedup": _ci(r.get("speedup"), r.get("speedup_ci"), _ratio),
                "efficiency": num(r.get("efficiency"), ".0%"),
                "cores": num(r.get("cores_used")),
                "work_ratio": num(r.get("work_ratio")),
                "bound": num(r.get("bound_efficiency")),
                "verdict": r.get("verdict"),
                "reasons": list(r.get("reasons") or []) if r is not baseline else [],
            }
        )
    return out


def _bench_view(title: str, data: Mapping[str, Any], chart_id: str, scale: float) -> dict[str, Any]:
    results = list(data.get("results") or [])
    baseline = data.get("baseline")
    points = ([baseline] if baseline else []) + results
    scaling = data.get("scaling") or {}
    return {
        "title": title,
        "rows": _rows(data),
        "scaling_svg": Markup(svg.scaling(points, scaling, chart_id)) if results else None,
        "diagnoses": [
            f"{backend}: {fit['diagnosis']}"
            for backend, fit in scaling.items()
            if isinstance(fit, Mapping) and fit.get("diagnosis")
        ],
        "warnings": list(data.get("warnings") or []),
        "timelines": [
            _timeline_view(t, scale, f"gantt-{chart_id}-{i}")
            for i, t in enumerate(bench_timelines(data, title))
        ],
    }


def _binary_bytes(n: float) -> str:
    """Memory as a person reads it: ``512 B``, ``1.5 MiB``, ``23.4 GiB``."""
    size, unit = float(n), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(size) < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{size:.0f} B" if unit == "B" else f"{size:.1f} {unit}"


def _env_value(key: str, value: Any) -> str:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if key.endswith("_bytes") and number:
        return _binary_bytes(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.2f}" if key.startswith("load_average") else f"{value:.4g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_env_value(str(k), v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_env_value(key, v) for v in value)
    return str(value)


def _environment(env: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The environment as label and value: bytes in KiB/MiB/GiB, load averages to two
    decimals, yes/no for flags."""
    return [
        (key.removesuffix("_bytes").replace("_", " "), _env_value(key, value))
        for key, value in env.items()
    ]


def _prove_view(data: Mapping[str, Any]) -> dict[str, Any]:
    results = [
        {
            "name": r["name"],
            "backend": r["backend"],
            "workers": r["workers"],
            "speedup": _ci(r.get("speedup"), r.get("speedup_ci"), _ratio),
            "cores": num(r.get("cores_used")),
            "work_ratio": num(r.get("work_ratio")),
            "verdict": r.get("verdict"),
            "expected": r.get("expected"),
            "ok": bool(r.get("as_expected")) and bool(r.get("checksums_ok")),
        }
        for r in data.get("results") or []
    ]
    return {"results": results, "conclusion": list(data.get("conclusion") or [])}


def _run_totals(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    totals = data.get("totals") or {}
    return [
        ("backend", f"{data.get('backend')} ×{data.get('workers')}"),
        ("status", str(data.get("status"))),
        ("wall", fmt_s3(float(totals.get("wall_s") or 0))),
        ("CPU", fmt_s3(float(totals.get("cpu_s") or 0))),
        ("avg concurrency", num(totals.get("avg_concurrency"))),
        ("cores used", num(totals.get("cores_used"))),
        ("ok", str(totals.get("ok"))),
        ("failed", str(totals.get("failed"))),
        ("skipped", str(totals.get("skipped"))),
        ("cancelled", str(totals.get("cancelled"))),
    ]


def _section(
    index: int, doc: Mapping[str, Any], trust: Trust | None, source: str | None
) -> dict[str, Any]:
    kind = doc.get("kind")
    if kind not in KINDS:
        raise ValueError(f"unknown evidence kind {kind!r}: expected one of {', '.join(KINDS)}")
    plan = doc.get("plan") or {}
    data = doc["data"]
    lines = timelines(doc)
    scale = max([t.wall_s for t in lines] + [b.end_s for t in lines for b in t.bars] + [1e-6])
    heading = {"bench": "bench", "run": "run", "prove": "prove"}[str(kind)]
    return {
        "kind": kind,
        "heading": f"truepar {heading} — {plan.get('name', '?')}"
        if kind != "prove"
        else "truepar prove — is parallelism real here?",
        "plan_path": plan.get("path", "?"),
        "plan_sha": str(plan.get("sha256", "")),
        "started": doc.get("started_utc", "?"),
        "ended": doc.get("ended_utc", "?"),
        "source": source,
        "signature": signature_status(doc, trust),
        "complete": bool(data.get("complete", True)) and data.get("status") != "interrupted",
        "prove": _prove_view(data) if kind == "prove" else None,
        "run": {"totals": _run_totals(data)} if kind == "run" else None,
        "benches": [
            _bench_view(title, bench, f"scaling-{index}-{i}", scale)
            for i, (title, bench) in enumerate(benches(doc))
        ],
        "timelines": [_timeline_view(t, scale, f"gantt-{index}-run") for t in lines]
        if kind == "run"
        else [],
        "scale_note": _scale_note(str(kind), len(lines), scale),
        "environment": _environment(doc.get("environment") or {}),
    }


def _scale_note(kind: str, count: int, scale: float) -> str:
    """What the timelines' time axis is, said only as far as it is true: one axis for every
    timeline of the evidence document (not across documents: each has its own)."""
    across = f"{fmt_s3(scale)} across"
    if count <= 1:
        return f"{across}, the red dashed line at the wall time"
    what = "every configuration" if kind == "bench" else "every experiment's configurations"
    return (
        f"{what} on one time scale ({across}), so a faster one looks shorter; "
        "the red dashed line at each one's wall time"
    )


def _timeline_view(t: Timeline, scale: float, chart_id: str) -> dict[str, Any]:
    return {
        "label": t.label,
        "group": t.group,
        "note": t.note,
        "wall": fmt_s3(t.wall_s),
        "bars": len(t.bars),
        "svg": Markup(svg.gantt(t, scale, chart_id)),
    }


def _template() -> jinja2.Template:
    text = resources.files("truepar.report").joinpath("templates/report.html.j2").read_text()
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(text)


def html(
    docs: Sequence[Mapping[str, Any]],
    *,
    trust: Trust | None = None,
    sources: Sequence[str | None] | None = None,
    title: str | None = None,
) -> str:
    """The HTML report of one or more evidence documents, as one self-contained page.

    Raises ``ValueError`` for an unknown kind and ``KeyError``/``TypeError`` for malformed
    evidence (a caller turns them into one-line errors)."""
    if not docs:
        raise ValueError("no evidence to report")
    names = list(sources) if sources is not None else [None] * len(docs)
    sections = [_section(i + 1, doc, trust, names[i]) for i, doc in enumerate(docs)]
    if title is None:
        title = sections[0]["heading"] if len(sections) == 1 else "truepar report"
    return _template().render(
        title=title,
        version=__version__,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        sections=sections,
        legend=Markup(svg.legend()),
    )
