"""Plan files (TOML, or YAML) → :class:`Plan`, with one-line errors naming file, op and field.

TOML::

    name = "example"
    [defaults]
    backend = "threads"
    workers = 8
    [resources.db]
    max_concurrent = 2
    [[op]]
    id = "a"
    tool = "sleep"
    seconds = 0.2
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from truepar.errors import PlanError
from truepar.plan.models import Plan, op_from_dict
from truepar.tools.base import describe_validation_error, labelled


def load_plan(path: str | Path) -> Plan:
    """Read, validate and check a plan file. Raises :class:`PlanError` with one line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(f"{p}: no such plan file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"{p}: cannot read plan file: {exc}") from None
    data = parse_plan_text(text, p)
    return plan_from_dict(data, source=str(p), base_dir=p.resolve().parent)


def parse_plan_text(text: str, path: Path) -> dict[str, Any]:
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise PlanError(f"{path}: invalid YAML{where}: {problem}") from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PlanError(f"{path}: invalid TOML: {exc}") from None
    if not isinstance(data, dict):
        raise PlanError(f"{path}: a plan must be a table/mapping at the top level")
    return data


def plan_from_dict(data: Mapping[str, Any], *, source: str, base_dir: Path) -> Plan:
    """Build and check a plan from parsed data (``[[op]]`` or ``ops`` for the op list)."""
    data = dict(data)
    raw_ops = data.pop("op", None)
    if raw_ops is None:
        raw_ops = data.pop("ops", None)
    elif "ops" in data:
        raise PlanError(f"{source}: give the ops as [[op]] or ops = [...], not both")
    if raw_ops is None:
        raise PlanError(f"{source}: the plan has no ops; add at least one [[op]]")
    if not isinstance(raw_ops, list):
        raise PlanError(f"{source}: 'op' must be a list of tables ([[op]])")
    ops = []
    for i, raw in enumerate(raw_ops):
        label = f"op #{i + 1}"
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            label = f"op {raw['id']!r}"
        try:
            ops.append(op_from_dict(raw))
        except ValidationError as exc:
            raise PlanError(labelled(f"{source}: {label}", exc)) from None
        except ValueError as exc:
            raise PlanError(f"{source}: {label} field 'tool': {exc}") from None
    try:
        plan = Plan.model_validate({**data, "ops": ops, "source": source, "base_dir": base_dir})
    except ValidationError as exc:
        raise PlanError(f"{source}: {describe_validation_error(exc)}") from None
    plan.check()
    return plan
