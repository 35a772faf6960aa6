"""truepar — run it in parallel, and prove it.

Run a plan's independent operations at the same time on a chosen backend, and get back a trace
that says, for every op attempt, exactly when and where it ran and what it cost::

    import truepar
    trace = truepar.run("plan.toml", backend="threads", workers=8)
    print(trace.totals.wall_s, trace.totals.avg_concurrency, trace.totals.cores_used)

    squares = truepar.map(lambda x: x * x, range(10_000)).values
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from truepar._version import __version__
from truepar.backends import (
    BACKENDS,
    Backend,
    OpCall,
    Outcome,
    backend_class,
    backend_names,
    create_backend,
    register_backend,
)
from truepar.errors import (
    BackendUnavailable,
    BadInput,
    ConfinementError,
    InternalError,
    LedgerBusy,
    NotPicklableError,
    OpError,
    PlanError,
    Terminated,
    TrueparError,
    TrueparWarning,
    UsageError,
)
from truepar.plan import Defaults, Graph, Plan, Resource, build_graph, load_plan, plan_from_dict
from truepar.records import (
    Environment,
    OpResult,
    RunStatus,
    RunTotals,
    RunTrace,
    Span,
    Status,
    estimate_tokens,
)
from truepar.tools import (
    TOOLS,
    AgentOp,
    BashOp,
    FakeSpec,
    GrepOp,
    HttpOp,
    LlmOp,
    LsOp,
    OpBase,
    PythonOp,
    ReadOp,
    SleepOp,
    Tool,
    ToolContext,
    ToolOutput,
)

# The engine and what runs on it are loaded on first use: ``import truepar.tools`` (or plans,
# records, errors) does not start the engine's machinery. Type checkers see plain imports.
if TYPE_CHECKING:
    from truepar.engine import MapResult, Observer, arun, run
    from truepar.engine import map_calls as map
    from truepar.engine.resume import resume
    from truepar.tool_calls import ToolSpec
    from truepar.tool_calls import aexecute as aexecute_tool_calls
    from truepar.tool_calls import execute as execute_tool_calls

_LAZY = {
    "MapResult": ("truepar.engine.bulk", "MapResult"),
    "Observer": ("truepar.engine.observer", "Observer"),
    "arun": ("truepar.engine.run", "arun"),
    "run": ("truepar.engine.run", "run"),
    "map": ("truepar.engine.bulk", "map_calls"),
    "resume": ("truepar.engine.resume", "resume"),
    "ToolSpec": ("truepar.tool_calls", "ToolSpec"),
    "aexecute_tool_calls": ("truepar.tool_calls", "aexecute"),
    "execute_tool_calls": ("truepar.tool_calls", "execute"),
}
#: Subpackages reachable as attributes (``truepar.evidence.verify``) without importing them.
_SUBPACKAGES = frozenset(
    {"agents", "cli", "engine", "evidence", "git", "measure", "preflight", "report", "testing"}
)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f"truepar.{name}")
    raise AttributeError(f"module 'truepar' has no attribute {name!r}")


__all__ = (
    "BACKENDS",
    "TOOLS",
    "AgentOp",
    "Backend",
    "BackendUnavailable",
    "BadInput",
    "BashOp",
    "ConfinementError",
    "Defaults",
    "Environment",
    "FakeSpec",
    "Graph",
    "GrepOp",
    "HttpOp",
    "InternalError",
    "LedgerBusy",
    "LlmOp",
    "LsOp",
    "MapResult",
    "NotPicklableError",
    "Observer",
    "OpBase",
    "OpCall",
    "OpError",
    "OpResult",
    "Outcome",
    "Plan",
    "PlanError",
    "PythonOp",
    "ReadOp",
    "Resource",
    "RunStatus",
    "RunTotals",
    "RunTrace",
    "SleepOp",
    "Span",
    "Status",
    "Terminated",
    "Tool",
    "ToolContext",
    "ToolOutput",
    "ToolSpec",
    "TrueparError",
    "TrueparWarning",
    "UsageError",
    "__version__",
    "aexecute_tool_calls",
    "arun",
    "backend_class",
    "backend_names",
    "build_graph",
    "create_backend",
    "estimate_tokens",
    "execute_tool_calls",
    "load_plan",
    "map",
    "plan_from_dict",
    "register_backend",
    "resume",
    "run",
)
