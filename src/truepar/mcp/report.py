"""``truepar mcp report SESSION``: a recorded session in words, recomputed from its calls."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from truepar.errors import UsageError
from truepar.evidence import load_evidence
from truepar.mcp.analysis import Call, summarize
from truepar.units import fmt_s


def load_session(path: Path) -> dict[str, Any]:
    """The session evidence at ``path``; :class:`UsageError` if it is not one."""
    doc = load_evidence(path)
    data = doc.get("data")
    if doc.get("kind") != "run" or not isinstance(data, Mapping) or "session" not in data:
        raise UsageError(f"{path}: not an MCP session (written by truepar mcp --session)")
    return doc


def session_report(doc: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The session's title (server, root, status) and its findings, the summary recomputed
    from the recorded calls.

    Apart, so that a terminal can print the title whole — the root is a path, to copy — and
    wrap the findings, sentences all, at its width.
    """
    data = doc["data"]
    session = data["session"]
    wall = (int(data["end_ns"]) - int(data["start_ns"])) / 1e9
    calls = session["calls"]
    ran = [Call.from_json(c, wall) for c in calls if c.get("status") != "rejected"]
    statuses: dict[str, int] = {}
    for c in calls:
        statuses[str(c.get("status"))] = statuses.get(str(c.get("status")), 0) + 1
    status = data["status"]
    if not session.get("final", True):
        status += " (the server stopped before it could finish the record)"
    elif data.get("interrupted_by"):
        status += f" ({data['interrupted_by']})"
    totals = data["totals"]
    title = f"session of {session.get('server', 'truepar mcp')} in {session.get('root')}: {status}"
    counts = ", ".join(f"{n} {s}" for s, n in statuses.items()) or "none"
    facts = (
        f"{len(calls)} calls ({counts}), {totals['ops']} ops, over {fmt_s(wall)}; "
        f"cores used {totals['cores_used']:.2f}"
    )
    return title, [facts, *summarize(ran).lines()]


def session_lines(doc: Mapping[str, Any]) -> list[str]:
    """The session's title, then its findings: one line each, however long (see
    :func:`session_report` for them apart)."""
    title, findings = session_report(doc)
    return [title, *findings]
