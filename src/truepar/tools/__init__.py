"""Built-in tools and the registry that maps a plan's ``tool = "..."`` to one of them.

``execute`` / ``aexecute`` (run one LLM message's tool calls in parallel) and ``ToolSpec`` are
re-exported from :mod:`truepar.agents.tool_calls` on first use: tools are the bottom floor and
must not import the engine when they are imported, but ``from truepar.tools import execute``
is where a user looks for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from truepar.tools.agent import AGENT, AgentOp
from truepar.tools.base import (
    DEFAULT_MAX_BYTES,
    FakeSpec,
    OpBase,
    Tool,
    ToolContext,
    ToolOutput,
    resolve_in_root,
)
from truepar.tools.bash import BASH, BashOp
from truepar.tools.files import LS, READ, LsOp, ReadOp
from truepar.tools.grep import GREP, GrepOp
from truepar.tools.http import HTTP, HttpOp
from truepar.tools.llm import LLM, LlmOp
from truepar.tools.python import PYTHON, PythonOp
from truepar.tools.sleep import SLEEP, SleepOp

if TYPE_CHECKING:
    from truepar.agents.tool_calls import ToolSpec, aexecute, execute

#: Every built-in tool by name, in the order ``truepar`` lists them.
TOOLS: dict[str, Tool] = {
    t.name: t for t in (READ, LS, GREP, BASH, PYTHON, HTTP, SLEEP, LLM, AGENT)
}

_LAZY = frozenset({"ToolSpec", "aexecute", "execute"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module("truepar.agents.tool_calls"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = (
    "AGENT",
    "BASH",
    "DEFAULT_MAX_BYTES",
    "GREP",
    "HTTP",
    "LLM",
    "LS",
    "PYTHON",
    "READ",
    "SLEEP",
    "TOOLS",
    "AgentOp",
    "BashOp",
    "FakeSpec",
    "GrepOp",
    "HttpOp",
    "LlmOp",
    "LsOp",
    "OpBase",
    "PythonOp",
    "ReadOp",
    "SleepOp",
    "Tool",
    "ToolContext",
    "ToolOutput",
    "ToolSpec",
    "aexecute",
    "execute",
    "resolve_in_root",
)
