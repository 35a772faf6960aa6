"""``python``: call a Python function, ``call = "module:function"`` or a callable (Python API).

The module is imported with the plan's folder on ``sys.path``. An ``async def`` function is awaited
on the async backend and run with its own event loop elsewhere. A plain function on the async
backend runs inline on the event loop and blocks it while it runs: that is what such code does in
an agent framework, and truepar measures it rather than hiding it.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
import threading
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, field_validator

from truepar.errors import OpError
from truepar.tools.base import OpBase, Tool, ToolContext, ToolOutput

_PATH_LOCK = threading.Lock()


class PythonOp(OpBase):
    tool: Literal["python"] = "python"
    #: ``"package.module:function"`` (or ``module:Class.method``), or a callable from the API.
    call: str | Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("call")
    @classmethod
    def _module_colon_function(cls, v: str | Callable[..., Any]) -> str | Callable[..., Any]:
        if isinstance(v, str):
            module, sep, name = v.partition(":")
            if not sep or not module or not name:
                raise ValueError(f"call {v!r} must look like 'module:function'")
        return v

    def call_name(self) -> str:
        if isinstance(self.call, str):
            return self.call
        return f"{getattr(self.call, '__module__', '?')}:{getattr(self.call, '__qualname__', '?')}"


def resolve(op: PythonOp, ctx: ToolContext) -> Callable[..., Any]:
    """The function an op names, imported with the plan's folder importable."""
    if not isinstance(op.call, str):
        return op.call
    module_name, _, attr = op.call.partition(":")
    folder = str(ctx.plan_dir)
    with _PATH_LOCK:
        if folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise OpError(f"cannot import {module_name!r} for call {op.call!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise OpError(f"{module_name!r} has no {attr!r} (call {op.call!r})") from None
    if not callable(target):
        raise OpError(f"{op.call!r} is not callable")
    return target  # type: ignore[no-any-return]


def _output(op: PythonOp, value: Any) -> ToolOutput:
    text = value if isinstance(value, str) else repr(value)
    shown = text if len(text) <= 60 else text[:57] + "..."
    size = len(value) if isinstance(value, bytes) else len(text.encode("utf-8", "replace"))
    return ToolOutput(value, f"{op.call_name()} → {shown}", size)


def run(op: PythonOp, ctx: ToolContext) -> ToolOutput:
    fn = resolve(op, ctx)
    if inspect.iscoroutinefunction(fn):
        value = asyncio.run(fn(*op.args, **op.kwargs))
    else:
        value = fn(*op.args, **op.kwargs)
        if inspect.isawaitable(value):
            value = asyncio.run(_await(value))
    return _output(op, value)


async def arun(op: PythonOp, ctx: ToolContext) -> ToolOutput:
    fn = resolve(op, ctx)
    value = fn(*op.args, **op.kwargs)  # a sync function blocks the loop here, honestly
    if inspect.isawaitable(value):
        value = await value
    return _output(op, value)


async def _await(awaitable: Any) -> Any:
    return await awaitable


PYTHON = Tool("python", PythonOp, run, arun)
