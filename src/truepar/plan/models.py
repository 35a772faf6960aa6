"""The plan: ops plus defaults plus named resources, validated with pydantic.

A plan is built from a TOML/YAML file (:mod:`truepar.plan.load`) or in Python::

    Plan(name="demo", ops=[SleepOp(id="a", seconds=0.2),
                           BashOp(id="b", argv=["true"], after=["a"])])

Field-level errors come from pydantic; plan-level ones (duplicate or unknown ids, unknown resources
or backends, cycles) from :meth:`Plan.check`, which names the file and the op.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from truepar.errors import PlanError

if TYPE_CHECKING:
    from truepar.plan.graph import Graph
from truepar.tools import TOOLS, OpBase

BACKEND_NAMES = ("sequential", "async", "threads", "processes", "fake")
OnError = Literal["continue", "fail-fast"]


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str = "threads"
    workers: int = Field(default=8, ge=1)
    timeout: float | None = Field(default=None, gt=0)
    retries: int = Field(default=0, ge=0)
    #: First retry waits this long; each later one twice as long as the one before.
    retry_backoff_s: float = Field(default=0.1, ge=0)
    on_error: OnError = "continue"
    #: The folder file tools are confined to, relative to the plan file's folder.
    root: str = "."


class Resource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_concurrent: int | None = Field(default=None, ge=1)


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    name: str = "plan"
    defaults: Defaults = Field(default_factory=Defaults)
    resources: dict[str, Resource] = Field(default_factory=dict)
    ops: tuple[OpBase, ...] = ()
    #: The file the plan came from ("<python>" when built in code); errors name it.
    source: str = "<python>"
    #: The folder ``root`` and ``python`` imports are relative to.
    base_dir: Path = Field(default_factory=Path.cwd)
    _graph: Graph | None = PrivateAttr(default=None)

    def cached_graph(self) -> Graph | None:
        return self._graph

    def cache_graph(self, graph: Graph) -> None:
        self._graph = graph

    @field_validator("ops", mode="before")
    @classmethod
    def _ops_by_tool(cls, v: Any) -> Any:
        if isinstance(v, Iterable) and not isinstance(v, str | bytes | dict):
            return tuple(op if isinstance(op, OpBase) else op_from_dict(op) for op in v)
        return v

    @property
    def root(self) -> Path:
        return Path(os.path.realpath(self.base_dir / self.defaults.root))

    def op(self, op_id: str) -> OpBase:
        for op in self.ops:
            if op.id == op_id:
                return op
        raise KeyError(op_id)

    def error(self, message: str, op: OpBase | None = None, field: str | None = None) -> PlanError:
        where = f"op {op.id!r}" if op is not None else ""
        if field:
            where += f" field {field!r}" if where else f"field {field!r}"
        return PlanError(f"{self.source}: {where + ': ' if where else ''}{message}")

    def check(self) -> None:
        """Plan-level rules pydantic cannot see: raise :class:`PlanError` naming what to fix."""
        if not self.ops:
            raise self.error("the plan has no ops; add at least one [[op]]")
        seen: dict[str, int] = {}
        for i, op in enumerate(self.ops):
            if op.id in seen:
                raise self.error(f"duplicate id (op #{seen[op.id] + 1} has it too)", op)
            seen[op.id] = i
        backends = {self.defaults.backend} | {op.backend for op in self.ops if op.backend}
        for op in self.ops:
            for dep in op.after:
                if dep not in seen:
                    raise self.error(f"unknown op id {dep!r}", op, "after")
                if dep == op.id:
                    raise self.error("an op cannot come after itself", op, "after")
            if op.resource is not None and op.resource not in self.resources:
                known = ", ".join(sorted(self.resources)) or "none declared"
                raise self.error(f"unknown resource {op.resource!r} ({known})", op, "resource")
            if op.backend is not None and op.backend not in BACKEND_NAMES:
                raise self.error(_unknown_backend(op.backend), op, "backend")
        if self.defaults.backend not in BACKEND_NAMES:
            raise self.error(_unknown_backend(self.defaults.backend), field="defaults.backend")
        if "fake" in backends and len(backends) > 1:
            raise self.error("the fake backend cannot be mixed with real ones")
        from truepar.plan.graph import build_graph

        build_graph(self)  # raises on a cycle

    def with_defaults(self, **changes: Any) -> Plan:
        """A copy with some ``defaults`` replaced (``backend=``, ``workers=`` ...)."""
        copy = self.model_copy(update={"defaults": self.defaults.model_copy(update=changes)})
        copy._graph = None  # the root may have moved, and with it what paths mean
        return copy


def _unknown_backend(name: str) -> str:
    return f"unknown backend {name!r} (one of: {', '.join(BACKEND_NAMES)})"


def op_from_dict(raw: Any) -> OpBase:
    """Validate one op's fields with its tool's model. Raises ``ValueError`` naming the problem."""
    if not isinstance(raw, dict):
        raise ValueError(f"an op must be a table of fields, not {type(raw).__name__}")
    tool = raw.get("tool")
    known = ", ".join(TOOLS)
    if tool is None:
        raise ValueError(f"missing: every op needs tool = one of {known}")
    if tool not in TOOLS:
        raise ValueError(f"unknown tool {tool!r} (one of: {known})")
    return TOOLS[tool].spec.model_validate(raw)


def tools_used(ops: Sequence[OpBase]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op in ops:
        counts[op.tool] = counts.get(op.tool, 0) + 1
    return counts
