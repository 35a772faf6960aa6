"""Built-in tools and the registry that maps a plan's ``tool = "..."`` to one of them.

Tools are near the bottom floor: importing them loads no engine. (Running one LLM message's tool
calls in parallel is :mod:`truepar.tool_calls`, above the engine.)
"""

from __future__ import annotations

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

#: Every built-in tool by name, in the order ``truepar`` lists them.
TOOLS: dict[str, Tool] = {
    t.name: t for t in (READ, LS, GREP, BASH, PYTHON, HTTP, SLEEP, LLM, AGENT)
}


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
    "resolve_in_root",
)
