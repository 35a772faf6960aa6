"""The plan: ops plus defaults plus named resources, validated with pydantic.

A plan is built from a TOML/YAML file (:mod:`truepar.plan.load`) or in Python::

    Plan(name="demo", ops=[SleepOp(id="a", seconds=0.2),
                           BashOp(id="b", argv=["true"], after=["a"])])

Field-level errors come from pydantic; plan-level ones (duplicate or unknown ids, unknown resources
or backends, cycles) from :meth:`Plan.check`, which names the file and the op.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from truepar.backends import backend_class, backend_names
from truepar.errors import PlanError
from truepar.plan.graph import Graph, build_graph
from truepar.tools import TOOLS, OpBase
from truepar.tools.bounds import (
    MAX_COUNT,
    MAX_DURATION_S,
    MAX_RETRIES,
    MAX_WORKERS,
    unsafe_char,
)
from truepar.tools.requests import FIELDS as REQUEST_FIELDS
from truepar.tools.requests import Requests

OnError = Literal["continue", "fail-fast"]
#: What the pre-dispatch check does when a provider's live budget is smaller than a run needs.
BudgetPolicy = Literal["reduce", "wait", "fail"]
#: Live budget sources: ``github`` alone means GitHub's ``core`` bucket.
PROVIDER_KINDS = ("github",)
_PROVIDER = re.compile(r"^(?P<kind>[a-z]+)(?::(?P<bucket>[a-z_]+))?$")
#: The token limiter counts in blocks, so that a window holds at most about this many of them.
_TOKEN_BLOCKS = 1000


class Defaults(Requests):
    """Run-wide settings, and the resource requests (``num_cpus``, ``num_gpus``,
    ``custom_resources``) of every op that gives none of its own."""

    #: Every float finite; durations at most :data:`~truepar.tools.bounds.MAX_DURATION_S`.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    backend: str = "threads"
    workers: int = Field(default=8, ge=1, le=MAX_WORKERS)
    timeout: float | None = Field(default=None, gt=0, le=MAX_DURATION_S)
    retries: int = Field(default=0, ge=0, le=MAX_RETRIES)
    #: First retry waits this long; each later one twice as long as the one before.
    retry_backoff_s: float = Field(default=0.1, ge=0, le=MAX_DURATION_S)
    on_error: OnError = "continue"
    #: The folder file tools are confined to, relative to the plan file's folder.
    root: str = "."
    #: Context budget: tokens of op results the run may bring back (none = no budget). At
    #: ``lower_at`` of it the worker cap halves, at ``truncate_at`` later results are cut to their
    #: op's ``max_output_tokens``, at ``stop_at`` nothing more starts and a handoff is written.
    context_tokens: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    lower_at: float = Field(default=0.70, gt=0, le=1)
    truncate_at: float = Field(default=0.90, gt=0, le=1)
    stop_at: float = Field(default=0.95, gt=0, le=1)

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> Defaults:
        if not self.lower_at <= self.truncate_at <= self.stop_at:
            raise ValueError(
                "context thresholds must satisfy 0 < lower_at <= truncate_at <= stop_at <= 1, "
                f"not {self.lower_at:g}, {self.truncate_at:g}, {self.stop_at:g}"
            )
        return self


class Resource(BaseModel):
    """A named thing ops share: a concurrency cap, request and token rates, a live budget.

    ``per_second``/``per_minute``/``per_hour`` *pace* requests: at most that many (Σ op ``cost``)
    start in any window of that length, and the run takes as long as it must. Only a
    ``provider``'s live ``remaining`` is a hard quota, checked before the run by
    :func:`truepar.preflight.budgets.preflight`, which applies ``policy`` when it is too small.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    max_concurrent: int | None = Field(default=None, ge=1)
    per_second: float | None = Field(default=None, gt=0, le=MAX_COUNT)
    per_minute: float | None = Field(default=None, gt=0, le=MAX_COUNT)
    per_hour: float | None = Field(default=None, gt=0, le=MAX_COUNT)
    #: LLM tokens (Σ op ``tokens``) that may start in any minute.
    tokens_per_minute: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    #: A live budget source: ``github:core``, ``github:search``, ``github:graphql``, ...
    provider: str | None = None
    #: The provider's API base URL (GitHub Enterprise: ``https://HOST/api/v3``); default: the
    #: ``GITHUB_API_URL`` environment variable, else ``https://api.github.com``.
    provider_url: str | None = None
    policy: BudgetPolicy = "fail"
    #: The longest ``policy = "wait"`` sleeps for the provider's reset before giving up.
    max_wait_s: float = Field(default=3600.0, gt=0, le=MAX_DURATION_S)
    #: A SQLite file holding this resource's limiter state, so that every truepar process naming
    #: the same file and resource stays under one limit together (relative to the plan's folder).
    limiter_file: str | None = None
    #: Adapt the concurrency cap to the server: on a 429/503 it halves, then climbs back by one
    #: per full window of unthrottled successes, up to ``max_concurrent``
    #: (:mod:`truepar.engine.adaptive`).
    adaptive: bool = False

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, v: str | None) -> str | None:
        if v is None:
            return v
        m = _PROVIDER.match(v)
        if m is None or m["kind"] not in PROVIDER_KINDS:
            raise ValueError(
                f"unknown provider {v!r} (use github:core, github:search or github:graphql)"
            )
        return f"{m['kind']}:{m['bucket'] or 'core'}"

    @model_validator(mode="after")
    def _adapts_from_a_cap(self) -> Resource:
        if self.adaptive and self.max_concurrent is None:
            raise ValueError(
                "adaptive = true needs max_concurrent: the limit it starts from and recovers to"
            )
        return self

    @model_validator(mode="after")
    def _rates_representable(self) -> Resource:
        for unit, value in self._rates():
            if Fraction(value).limit_denominator(1000) == 0:
                raise ValueError(f"per_{unit} = {value:g} is too small (at least 0.001)")
        return self

    @property
    def has_budget(self) -> bool:
        """Any rate limit or live budget: ops on it are paced or checked before a run."""
        return bool(self._rates() or self.tokens_per_minute or self.provider)

    def _rates(self) -> list[tuple[str, float]]:
        units = (("second", self.per_second), ("minute", self.per_minute))
        return [(u, v) for u, v in (*units, ("hour", self.per_hour)) if v is not None]

    def request_windows(self) -> tuple[tuple[int, int], ...]:
        """The request limits as ``(requests, window_ms)``, shortest window first.

        A fractional rate becomes whole requests over a longer window (2.5/s → 5 per 2 s). A
        limit that another already implies is dropped: 10/s with 1000/min keeps only 10/s (600 a
        minute at most), 10/s with 10/min keeps only 10/min. Each window kept allows more
        requests than the one before it, and fewer per second.
        """
        unit_ms = {"second": 1000, "minute": 60_000, "hour": 3_600_000}
        windows = []
        for unit, value in self._rates():
            f = Fraction(value).limit_denominator(1000)
            windows.append((f.numerator, unit_ms[unit] * f.denominator))
        kept: list[tuple[int, int]] = []
        for limit, ms in sorted(windows, key=lambda w: w[1]):
            while kept and limit <= kept[-1][0]:
                kept.pop()  # a longer window allowing no more is the stricter one
            if kept and limit * kept[-1][1] >= kept[-1][0] * ms:
                continue  # allows as much per ms as a shorter window: that one already binds
            kept.append((limit, ms))
        return tuple(kept)

    def token_block(self) -> int:
        """Tokens per limiter unit: ``ceil(tokens_per_minute / 1000)``, at least 1.

        Counting in blocks keeps the limiter's state small; each op's tokens round up and the
        limit rounds down, so the blocks never let more than ``tokens_per_minute`` through.
        """
        return max(1, math.ceil((self.tokens_per_minute or 0) / _TOKEN_BLOCKS))


class Plan(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, arbitrary_types_allowed=True, allow_inf_nan=False
    )

    name: str = "plan"
    defaults: Defaults = Field(default_factory=Defaults)
    resources: dict[str, Resource] = Field(default_factory=dict)
    ops: tuple[OpBase, ...] = ()
    #: The file the plan came from ("<python>" when built in code); errors name it.
    source: str = "<python>"
    #: The folder ``root`` and ``python`` imports are relative to.
    base_dir: Path = Field(default_factory=Path.cwd)
    _graph: Graph | None = PrivateAttr(default=None)
    #: What :meth:`check` last passed: the ids of the ops, defaults and resources it read (a
    #: plan is immutable; a copy with other ops or defaults is checked again).
    _checked: tuple[int, int, int] | None = PrivateAttr(default=None)

    def cached_graph(self) -> Graph | None:
        return self._graph

    def cache_graph(self, graph: Graph) -> None:
        self._graph = graph

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        bad = unsafe_char(v)
        if bad is not None:
            raise ValueError(f"{v!r} holds {bad}: a plan's name is printable text, one line")
        return v

    @field_validator("resources")
    @classmethod
    def _plain_resource_names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for name in v:
            bad = unsafe_char(name)
            if bad is not None:
                raise ValueError(f"resource {name!r} holds {bad}: names are printable, one line")
        return v

    @field_validator("ops", mode="before")
    @classmethod
    def _ops_by_tool(cls, v: Any) -> Any:
        if isinstance(v, Iterable) and not isinstance(v, str | bytes | dict):
            return tuple(op if isinstance(op, OpBase) else op_from_dict(op) for op in v)
        return v

    @model_validator(mode="after")
    def _requests_from_defaults(self) -> Plan:
        """Fill each op's unset resource requests from ``[defaults]``, field by field, so a
        backend reads an op's requests from the op alone."""
        given = self.defaults.request_fields()
        if given:
            ops = tuple(_with_requests(op, given) for op in self.ops)
            object.__setattr__(self, "ops", ops)  # frozen: set once, while being validated
        return self

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
        """Plan-level rules pydantic cannot see: raise :class:`PlanError` naming what to fix.

        Once per plan: a plan run again (a bench runs it dozens of times) is not checked again.
        """
        key = (id(self.ops), id(self.defaults), id(self.resources))
        if self._checked == key:
            return
        if not self.ops:
            raise self.error("the plan has no ops; add at least one [[op]]")
        seen: dict[str, int] = {}
        for i, op in enumerate(self.ops):
            if op.id in seen:
                raise self.error(f"duplicate id (op #{seen[op.id] + 1} has it too)", op)
            seen[op.id] = i
        backends = {self.defaults.backend}
        names = backend_names()
        resources = self.resources
        limits = {
            name: (r.request_windows(), r.tokens_per_minute)
            for name, r in resources.items()
            if r.has_budget
        }
        # Run for every plan a run is given, once per op: most ops name no resource or backend.
        for op in self.ops:
            for dep in op.after:
                if dep not in seen:
                    raise self.error(f"unknown op id {dep!r}", op, "after")
                if dep == op.id:
                    raise self.error("an op cannot come after itself", op, "after")
            resource = op.resource
            if resource is not None:
                if resource not in resources:
                    known = ", ".join(sorted(resources)) or "none declared"
                    raise self.error(f"unknown resource {resource!r} ({known})", op, "resource")
                if resource in limits:
                    self._check_fits(op, *limits[resource])
            if op.backend is not None:
                if op.backend not in names:
                    raise self.error(_unknown_backend(op.backend), op, "backend")
                backends.add(op.backend)
        if self.defaults.backend not in names:
            raise self.error(_unknown_backend(self.defaults.backend), field="defaults.backend")
        virtual = [b for b in sorted(backends) if backend_class(b).virtual_clock]
        if virtual and len(backends) > 1:
            raise self.error(
                f"the {virtual[0]} backend runs on a virtual clock: it cannot be mixed"
            )
        build_graph(self)  # raises on a cycle
        self._checked = key

    def _check_fits(
        self, op: OpBase, windows: tuple[tuple[int, int], ...], tpm: int | None
    ) -> None:
        """An op whose cost or tokens exceed a limit's whole window could never start."""
        weight = math.ceil(op.cost)
        for limit, ms in windows:
            if weight > limit:
                raise self.error(
                    f"cost {op.cost:g} exceeds the limit of resource {op.resource!r} ({limit} per "
                    f"{ms / 1000:g} s), so it could never start; raise the limit or split the op",
                    op,
                    "cost",
                )
        if tpm is not None and op.tokens > tpm:
            raise self.error(
                f"tokens {op.tokens} exceed the tokens_per_minute = {tpm} of resource "
                f"{op.resource!r}, so it could never start",
                op,
                "tokens",
            )

    def with_defaults(self, **changes: Any) -> Plan:
        """A copy with some ``defaults`` replaced (``backend=``, ``workers=`` ...)."""
        if changes.keys() & set(REQUEST_FIELDS):
            # the ops hold the defaults' requests already (filled when the plan was made)
            raise ValueError("resource requests are set in the plan, not by with_defaults")
        copy = self.model_copy(update={"defaults": self.defaults.model_copy(update=changes)})
        copy._graph = None  # the root may have moved, and with it what paths mean
        return copy


def _with_requests(op: OpBase, defaults: dict[str, Any]) -> OpBase:
    missing = {f: v for f, v in defaults.items() if getattr(op, f) is None}
    return op.model_copy(update=missing) if missing else op


def _unknown_backend(name: str) -> str:
    return f"unknown backend {name!r} (one of: {', '.join(backend_names())})"


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
