"""Evidence as compact Markdown, for pull-request comments and GitHub's job summary.

Bench evidence: the configurations table (backend, workers, wall, speedup with its 95% CI, cores
used, work ratio, verdict), why the best configuration got its verdict, warnings, the environment
in one line and the signature status. Run evidence: the totals and one row per op.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from truepar.evidence.signing import check_signature
from truepar.units import fmt_num as num
from truepar.units import fmt_s

CONFIG_HEADER = "| Backend | W | Wall | Speedup [95% CI] | Cores | Work ratio | Verdict |"
OPS_HEADER = "| Op | Tool | Status | Duration | Worker |"


def _cell(value: Any) -> str:
    text = "—" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _row(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _environment(env: Mapping[str, Any]) -> str:
    gil = env.get("gil_enabled")
    parts = [
        f"Python {env.get('python_version', '?')} ({env.get('implementation', '?')})",
        "GIL " + ("on" if gil else "off" if gil is not None else "?"),
        f"{env.get('cores_available', '?')}/{env.get('cores_total', '?')} cores",
    ]
    if env.get("cpu_model"):
        parts.append(str(env["cpu_model"]))
    if env.get("platform"):
        parts.append(str(env["platform"]))
    return " · ".join(parts)


def _signature(doc: Mapping[str, Any]) -> str:
    if "signature" not in doc:
        return "not signed"
    check = check_signature(doc)
    if not check.valid:
        return f"INVALID — {check.reason}"
    return f"valid, key `{check.key_id}` (trust is checked by `truepar verify`)"


def footer(doc: Mapping[str, Any]) -> list[str]:
    return [
        "",
        f"**Environment:** {_environment(doc.get('environment') or {})}",
        "",
        f"**Signature:** {_signature(doc)}",
        "",
    ]


def _bench(doc: Mapping[str, Any]) -> list[str]:
    data = doc["data"]
    plan = (doc.get("plan") or {}).get("name") or data.get("plan") or "?"
    best = data.get("best")
    lines = [f"## truepar bench — {plan}", ""]
    if best:
        lines += [f"Best configuration: **{best}**", ""]
    if not data.get("complete", True):
        lines += ["> ⚠️ The bench was interrupted: not every configuration was measured.", ""]
    lines += [CONFIG_HEADER, "|---|--:|--:|--:|--:|--:|---|"]
    baseline = data.get("baseline")
    rows = ([baseline] if baseline else []) + list(data.get("results") or [])
    best_result = None
    for i, r in enumerate(rows):
        label = f"{r['backend']} ×{r['workers']}"
        if label == best:
            best_result = r
        name = str(r["backend"]) + (" (baseline)" if baseline and i == 0 else "")
        lo, hi = (r.get("speedup_ci") or [None, None])[:2]
        speedup = f"{num(r.get('speedup'))}× [{num(lo)}–{num(hi)}]"
        verdict = r.get("verdict")
        lines.append(
            _row(
                [
                    f"**{name}**" if label == best else name,
                    r["workers"],
                    fmt_s(r.get("wall_s")),
                    speedup,
                    num(r.get("cores_used")),
                    num(r.get("work_ratio")),
                    f"**{verdict}**" if verdict else None,
                ]
            )
        )
    if best_result is not None and best_result.get("reasons"):
        lines += ["", f"**Why {best} is {best_result.get('verdict')}:**", ""]
        lines += [f"- {reason}" for reason in best_result["reasons"]]
    warnings = list(data.get("warnings") or [])
    if warnings:
        lines += ["", "**Warnings:**", ""]
        lines += [f"- ⚠️ {w}" for w in warnings]
    return lines


def _run(doc: Mapping[str, Any]) -> list[str]:
    data = doc["data"]
    totals = data.get("totals") or {}
    plan = (doc.get("plan") or {}).get("name") or data.get("plan") or "?"
    lines = [
        f"## truepar run — {plan}",
        "",
        f"Backend **{data.get('backend')}** ×{data.get('workers')}"
        f" · status **{data.get('status')}**",
        "",
        "| Wall | CPU | Avg concurrency | Cores used | Ops | OK | Failed | Skipped | Cancelled |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        _row(
            [
                fmt_s(totals.get("wall_s")),
                fmt_s(totals.get("cpu_s")),
                num(totals.get("avg_concurrency")),
                num(totals.get("cores_used")),
                totals.get("ops"),
                totals.get("ok"),
                totals.get("failed"),
                totals.get("skipped"),
                totals.get("cancelled"),
            ]
        ),
        "",
        OPS_HEADER,
        "|---|---|---|--:|--:|",
    ]
    for span in data.get("spans") or []:
        op = str(span.get("op_id"))
        if (span.get("attempt") or 1) > 1:
            op += f" (attempt {span['attempt']})"
        duration = (int(span["end_ns"]) - int(span["start_ns"])) / 1e9
        lines.append(
            _row([op, span.get("tool"), span.get("status"), fmt_s(duration), span.get("worker")])
        )
    return lines


def _prove(doc: Mapping[str, Any]) -> list[str]:
    data = doc["data"]
    lines = ["## truepar prove — is parallelism real here?", ""]
    if not data.get("complete", True):
        lines += ["> ⚠️ Interrupted: not every experiment was measured.", ""]
    lines += [
        "| Name | W | Speedup [95% CI] | Cores | Work ratio | Verdict | Expected | |",
        "|---|--:|--:|--:|--:|---|---|---|",
    ]
    for r in data["results"]:
        lo, hi = (r.get("speedup_ci") or [None, None])[:2]
        good = r.get("as_expected") and r.get("checksums_ok")
        lines.append(
            _row(
                [
                    r["name"],
                    r["workers"],
                    f"{num(r.get('speedup'))}× [{num(lo)}–{num(hi)}]",
                    num(r.get("cores_used")),
                    num(r.get("work_ratio")),
                    f"**{r.get('verdict')}**",
                    r.get("expected"),
                    "✓" if good else "✗",
                ]
            )
        )
    lines.append("")
    lines += [f"- {line}" for line in data.get("conclusion") or []]
    return lines


def markdown(doc: Mapping[str, Any]) -> str:
    """The Markdown report of an evidence document (``kind`` ``bench``, ``run`` or ``prove``).
    Raises ``ValueError`` for another kind, ``KeyError``/``TypeError`` for malformed evidence."""
    kind = doc.get("kind")
    if kind == "bench":
        lines = _bench(doc)
    elif kind == "run":
        lines = _run(doc)
    elif kind == "prove":
        lines = _prove(doc)
    else:
        raise ValueError(f"unknown evidence kind {kind!r}: expected 'bench', 'run' or 'prove'")
    return "\n".join(lines + footer(doc))
