"""Reading evidence: the file as JSON, checked against ``schema.json`` (JSON Schema draft
2020-12, shipped with the package), and typed (:class:`Evidence`) once it conforms.
"""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict

from truepar.errors import UsageError


class PlanGraph(BaseModel):
    model_config = ConfigDict(frozen=True)

    ids: tuple[str, ...]
    preds: tuple[tuple[int, ...], ...]


class PlanSection(BaseModel):
    """The plan as evidence records it: where it was, its hash, its (redacted) ops, its graph."""

    model_config = ConfigDict(frozen=True)

    name: str
    path: str
    sha256: str
    ops: tuple[Mapping[str, Any], ...]
    graph: PlanGraph


class Signature(BaseModel):
    model_config = ConfigDict(frozen=True)

    alg: str
    key_id: str
    public_key: str
    value: str


class Evidence(BaseModel):
    """An evidence document, typed: the envelope every kind shares. ``data`` is the kind's own
    section (run trace, bench data, prove data), kept as JSON: it is what :mod:`recompute
    <truepar.evidence.recompute>` derives the numbers from and what the signature covers."""

    model_config = ConfigDict(frozen=True)

    schema_version: int
    kind: Literal["run", "bench", "prove"]
    truepar_version: str
    started_utc: str
    ended_utc: str
    plan: PlanSection
    environment: Mapping[str, Any]
    data: Mapping[str, Any]
    signature: Signature | None = None

    @property
    def cores_available(self) -> int | None:
        cores = self.environment.get("cores_available")
        return cores if isinstance(cores, int) else None


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


def typed(doc: Mapping[str, Any]) -> Evidence:
    """``doc`` as :class:`Evidence`; call only once :func:`check_schema` found no problem."""
    return Evidence.model_validate(doc)
