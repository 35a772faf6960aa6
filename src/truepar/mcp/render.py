"""The text a model reads back from a call: the op's output as a person would show it.

The same value travels whole in the call's structured content; the text is what most clients
put in front of the model, so it is the output itself (a file's content, a command's stdout),
not a JSON dump, with truncation and failures said in brackets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from truepar.units import fmt_s


def op_text(tool: str, value: Any, error: str | None, summary: str) -> str:
    """``tool``'s output as text; ``error`` (one line) after whatever output there was."""
    body = _body(tool, value) if value is not None else ""
    if error is None:
        return body if body else summary
    return f"{body}\n[error] {error}" if body else error


def _body(tool: str, value: Any) -> str:
    if not isinstance(value, Mapping):
        return str(value)
    if tool == "read":
        content = value.get("content", "")
        text = content if isinstance(content, str) else repr(content)
        if value.get("truncated"):
            text += f"\n[truncated: {value.get('bytes_read')} of {value.get('size')} bytes shown]"
        return text
    if tool == "ls":
        lines = [e["name"] + ("/" if e.get("type") == "dir" else "") for e in value["entries"]]
        if value.get("truncated"):
            lines.append("[truncated]")
        return "\n".join(lines) if lines else "(empty)"
    if tool == "grep":
        lines = [f"{m['path']}:{m['line']}:{m['text']}" for m in value["matches"]]
        if value.get("truncated"):
            lines.append("[truncated]")
        return "\n".join(lines) if lines else f"(no matches in {value['files_scanned']} files)"
    if tool == "bash":
        text = str(value.get("stdout", ""))
        if value.get("stdout_truncated"):
            text += f"\n[stdout truncated: {value.get('stdout_bytes')} bytes in all]"
        if value.get("stderr"):
            text += f"\n[stderr]\n{value['stderr']}"
        if value.get("exit_code"):
            text += f"\n[exit {value['exit_code']}]"
        return text
    if tool == "http":
        text = f"HTTP {value.get('status')}\n{value.get('body', '')}"
        if value.get("truncated"):
            text += "\n[truncated]"
        return text
    return str(dict(value))


def batch_text(results: Sequence[Mapping[str, Any]], measured: Mapping[str, Any]) -> str:
    """Each op's output under a header line, then what was measured."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    parts = [", ".join(f"{n} {status}" for status, n in counts.items())]
    for r in results:
        took = (
            fmt_s(r["end_s"] - r["start_s"])
            if r.get("start_s") is not None and r.get("end_s") is not None
            else "not run"
        )
        parts.append(f"── {r['id']} ({r['status']}, {took})")
        tool = str(r.get("tool", ""))
        parts.append(op_text(tool, r.get("value"), r.get("error"), str(r.get("summary", ""))))
    parts.append(
        f"── measured: wall {fmt_s(measured['wall_s'])}, Σ op time {fmt_s(measured['sum_op_s'])}, "
        f"{measured['avg_concurrency']:.2f} ops in flight on average, critical path "
        f"{fmt_s(measured['critical_path_s'])}"
    )
    return "\n".join(parts)
