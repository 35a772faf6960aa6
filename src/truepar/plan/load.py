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
from truepar.fileio import read_bounded
from truepar.plan.models import Plan, op_from_dict
from truepar.tools.base import describe_validation_error, labelled

#: The largest plan file read: a plan of 100,000 ops is a few MiB; beyond this, the wrong file
#: (``/dev/zero`` would otherwise be read until memory runs out).
MAX_PLAN_BYTES = 64 << 20


def read_plan_text(path: Path) -> str:
    """A plan file's text, at most :data:`MAX_PLAN_BYTES`, a UTF-8 byte-order mark dropped."""
    data = read_bounded(
        path,
        MAX_PLAN_BYTES,
        lambda why: PlanError(f"{path}: {why}"),
        missing="no such plan file",
        unreadable="cannot read plan file",
        not_this="not a plan file",
    )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlanError(f"{path}: not UTF-8 text (byte {exc.start}): not a plan file") from None


def load_plan(path: str | Path) -> Plan:
    """Read, validate and check a plan file. Raises :class:`PlanError` with one line."""
    p = Path(path)
    data = parse_plan_text(read_plan_text(p), p)
    return plan_from_dict(data, source=str(p), base_dir=p.resolve().parent)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error — not the
    silent last-one-wins of PyYAML (TOML refuses it too)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_plan_text(text: str, path: Path, *, toml: bool = False) -> dict[str, Any]:
    """The table a plan (or swarm) file holds: TOML, or YAML by the file's suffix unless
    ``toml``. :class:`PlanError` in one line for a file that is not one."""
    text = text.removeprefix("\ufeff")
    try:
        data = _parse(text, path, toml=toml)
    except RecursionError:
        raise PlanError(f"{path}: nested too deeply to be a plan") from None
    if not isinstance(data, dict):
        raise PlanError(f"{path}: a plan must be a table/mapping at the top level")
    return data


def _parse(text: str, path: Path, *, toml: bool) -> Any:
    if not toml and path.suffix.lower() in (".yaml", ".yml"):
        try:
            return yaml.load(text, Loader=_UniqueKeyLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise PlanError(f"{path}: invalid YAML{where}: {problem}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(f"{path}: invalid TOML: {exc}") from None


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
