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


#: Names and ids (a plan's name, an op's id, a backend): every character Markdown or HTML
#: would act on is escaped, so a name shows as typed and can inject nothing.
_NAME = str.maketrans(
    {
        **{c: "\\" + c for c in "\\`*_[]~#|!"},
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "\n": " ",
        "\r": " ",
    }
)
#: Sentences truepar writes (reasons, warnings), which may quote a name: the same, but for the
#: brackets and ``#`` its own prose uses ("[95% CI 1.12–1.15]"); a link needs "](", escaped.
_TEXT = str.maketrans({k: v for k, v in _NAME.items() if chr(k) not in "[]#!>"})


def escape_name(value: Any) -> str:
    """A name or id as Markdown text: shown as typed, never markup or HTML."""
    return "—" if value is None else str(value).translate(_NAME)


def escape_text(value: Any) -> str:
    """A sentence as Markdown text: names quoted in it cannot add markup, HTML or links."""
    return str(value).translate(_TEXT).replace("](", "]\\(").replace("][", "]\\[")


def _row(cells: Sequence[Any]) -> str:
    """A table row of cells already escaped (:func:`escape_name`, :func:`escape_text`)."""
    return "| " + " | ".join("—" if c is None else str(c) for c in cells) + " |"


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
    return escape_text(" · ".join(parts))


def _signature(doc: Mapping[str, Any]) -> str:
    if "signature" not in doc:
        return "not signed"
    check = check_signature(doc)
    if not check.valid:
        return f"INVALID — {escape_text(check.reason)}"
    key = str(check.key_id)
    shown = f"`{key}`" if key.isalnum() else escape_name(key)
    return f"valid, key {shown} (trust is checked by `truepar verify`)"


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
    lines = [f"## truepar bench — {escape_name(plan)}", ""]
    if best:
        lines += [f"Best configuration: **{escape_name(best)}**", ""]
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
        shown = escape_name(r["backend"]) + (" (baseline)" if baseline and i == 0 else "")
        lo, hi = (r.get("speedup_ci") or [None, None])[:2]
        speedup = f"{num(r.get('speedup'))}× [{num(lo)}–{num(hi)}]"
        verdict = r.get("verdict")
        lines.append(
            _row(
                [
                    f"**{shown}**" if label == best else shown,
                    escape_name(r["workers"]),
                    fmt_s(r.get("wall_s")),
                    speedup,
                    num(r.get("cores_used")),
                    num(r.get("work_ratio")),
                    f"**{escape_name(verdict)}**" if verdict else None,
                ]
            )
        )
    if best_result is not None and best_result.get("reasons"):
        lines += [
            "",
            f"**Why {escape_name(best)} is {escape_name(best_result.get('verdict'))}:**",
            "",
        ]
        lines += [f"- {escape_text(reason)}" for reason in best_result["reasons"]]
    warnings = list(data.get("warnings") or [])
    if warnings:
        lines += ["", "**Warnings:**", ""]
        lines += [f"- ⚠️ {escape_text(w)}" for w in warnings]
    return lines


def _run(doc: Mapping[str, Any]) -> list[str]:
    data = doc["data"]
    totals = data.get("totals") or {}
    plan = (doc.get("plan") or {}).get("name") or data.get("plan") or "?"
    lines = [
        f"## truepar run — {escape_name(plan)}",
        "",
        f"Backend **{escape_name(data.get('backend'))}** ×{escape_name(data.get('workers'))}"
        f" · status **{escape_name(data.get('status'))}**",
        "",
        "| Wall | CPU | Avg concurrency | Cores used | Ops | OK | Failed | Skipped | Cancelled |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        _row(
            [
                fmt_s(totals.get("wall_s")),
                fmt_s(totals.get("cpu_s")),
                num(totals.get("avg_concurrency")),
                num(totals.get("cores_used")),
                escape_name(totals.get("ops")),
                escape_name(totals.get("ok")),
                escape_name(totals.get("failed")),
                escape_name(totals.get("skipped")),
                escape_name(totals.get("cancelled")),
            ]
        ),
        "",
        OPS_HEADER,
        "|---|---|---|--:|--:|",
    ]
    for span in data.get("spans") or []:
        op = escape_name(span.get("op_id"))
        if (span.get("attempt") or 1) > 1:
            op += f" (attempt {int(span['attempt'])})"
        duration = (int(span["end_ns"]) - int(span["start_ns"])) / 1e9
        cells = [span.get("tool"), span.get("status"), fmt_s(duration), span.get("worker")]
        lines.append(_row([op, *(escape_name(c) for c in cells)]))
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
                    escape_name(r["name"]),
                    escape_name(r["workers"]),
                    f"{num(r.get('speedup'))}× [{num(lo)}–{num(hi)}]",
                    num(r.get("cores_used")),
                    num(r.get("work_ratio")),
                    f"**{escape_name(r.get('verdict'))}**",
                    escape_name(r.get("expected")),
                    "✓" if good else "✗",
                ]
            )
        )
    lines.append("")
    lines += [f"- {escape_text(line)}" for line in data.get("conclusion") or []]
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
