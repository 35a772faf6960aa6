"""Run the tool calls of one LLM message at the same time, where they do not conflict.

A model that asks for several tools in one message means them to be independent, yet most agent
loops run them one after another. :func:`execute` takes the calls in either API's shape — OpenAI's
``message.tool_calls`` or Anthropic's ``tool_use`` content blocks, as dicts or SDK objects — and
a registry of Python functions with what each reads and writes, makes each call a ``python`` op,
and runs them through the ordinary engine: the plan graph orders the calls that conflict (both
write a path, or one writes what another reads) in the order the model gave them, and lets the
rest overlap. The results come back in call order, ready to send: OpenAI ``role = "tool"``
messages or Anthropic ``tool_result`` blocks, with the run's trace to show what overlapped.

Nothing the model wrote raises: an unknown tool, arguments that are not a JSON object, arguments
the function does not take, and an exception in the tool each become an error result that names
the problem, for the model to read and correct.

On the async backend a plain (sync) function would run on the event loop and block it, so calls
that "run at the same time" would in fact take turns. By default such functions run on the
threads backend instead (their spans say ``threads``); ``offload_sync=False`` keeps them inline,
where truepar's measurements show the serialization rather than hiding it.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, overload

from truepar.backends import backend_class
from truepar.engine.run import arun, run
from truepar.errors import UsageError
from truepar.plan.models import Defaults, Plan
from truepar.records import RunTrace, Status, jsonable
from truepar.tools.python import PythonOp

Shape = Literal["openai", "anthropic"]
#: Paths (relative to the root) or resource names, or a function of a call's arguments giving them.
Paths = Sequence[str] | Callable[[dict[str, Any]], Iterable[str]]


@dataclasses.dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call: the function, and what a call of it reads and writes.

    ``reads``/``writes`` are fixed paths, or a function of the call's arguments returning them
    (``writes=lambda a: [a["path"]]``). A tool that declares neither conflicts with nothing.
    ``writes=["."]`` makes a tool run alone: ``.`` contains every path.
    """

    fn: Callable[..., Any]
    reads: Paths = ()
    writes: Paths = ()
    #: Seconds allowed per call of this tool (``execute``'s ``timeout`` when unset).
    timeout: float | None = None

    def paths(self, which: Literal["reads", "writes"], args: dict[str, Any]) -> tuple[str, ...]:
        declared = self.reads if which == "reads" else self.writes
        if callable(declared):
            declared = tuple(declared(args))
        if isinstance(declared, str):
            return (declared,)
        return tuple(declared)


@dataclasses.dataclass(frozen=True)
class ToolCall:
    """One call the model asked for, as parsed: ``problem`` says why it cannot run, if it can't."""

    index: int
    id: str
    name: str
    arguments: dict[str, Any] | None
    problem: str | None = None


@dataclasses.dataclass(frozen=True)
class ToolCallResult:
    """The outcome of one call, ready to send back to the model."""

    call: ToolCall
    value: Any = None
    error: str | None = None
    #: How its op ended; ``None`` when it never became one (unknown tool, bad arguments).
    status: Status | None = None
    op_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        """The value as the model reads it: a string as it is, anything else as JSON."""
        if isinstance(self.value, str):
            return self.value
        return json.dumps(jsonable(self.value), ensure_ascii=False)

    def to_openai(self) -> dict[str, Any]:
        """A ``{"role": "tool", "tool_call_id", "content"}`` message."""
        content = self.text if self.error is None else f"Error: {self.error}"
        return {"role": "tool", "tool_call_id": self.call.id, "content": content}

    def to_anthropic(self) -> dict[str, Any]:
        """A ``{"type": "tool_result", "tool_use_id", "content", "is_error"}`` block."""
        return {
            "type": "tool_result",
            "tool_use_id": self.call.id,
            "content": self.text if self.error is None else self.error,
            "is_error": self.error is not None,
        }


@dataclasses.dataclass(frozen=True)
class ToolCallResults(Sequence[ToolCallResult]):
    """Every call's result in the order of the calls, the shape they came in, and the trace.

    ``trace`` is ``None`` when no call could run (none given, or every one rejected).
    """

    results: tuple[ToolCallResult, ...]
    shape: Shape
    trace: RunTrace | None

    @overload
    def __getitem__(self, i: int) -> ToolCallResult: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[ToolCallResult]: ...
    def __getitem__(self, i: int | slice) -> ToolCallResult | Sequence[ToolCallResult]:
        return self.results[i]

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[ToolCallResult]:
        return iter(self.results)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def to_openai(self) -> list[dict[str, Any]]:
        """``role = "tool"`` messages, one per call, to append after the assistant message."""
        return [r.to_openai() for r in self.results]

    def to_anthropic(self) -> list[dict[str, Any]]:
        """``tool_result`` blocks, the content of the next ``role = "user"`` message."""
        return [r.to_anthropic() for r in self.results]

    def to_api(self) -> list[dict[str, Any]]:
        """The results in the shape the calls came in."""
        return self.to_openai() if self.shape == "openai" else self.to_anthropic()


def _as_dict(item: Any) -> dict[str, Any]:
    if isinstance(item, Mapping):
        return dict(item)
    dump = getattr(item, "model_dump", None)  # the openai and anthropic SDKs' pydantic models
    if callable(dump):
        dumped = dump()
        if isinstance(dumped, dict):
            return dumped
    raise UsageError(f"a tool call must be a dict or an SDK object, not {type(item).__name__}")


def _items(message: Any) -> list[Any]:
    """The calls or content blocks of a message, or the list given."""
    if message is None:
        return []
    if isinstance(message, Sequence) and not isinstance(message, str | bytes):
        return list(message)
    d = _as_dict(message)
    if "tool_calls" in d:  # an OpenAI assistant message
        return list(d["tool_calls"] or [])
    if isinstance(d.get("content"), list):  # an Anthropic message
        return list(d["content"])
    raise UsageError("give a message's tool_calls (OpenAI) or its content blocks (Anthropic)")


def _arguments(name: str, raw: Any) -> tuple[dict[str, Any] | None, str | None]:
    """A call's arguments as a dict, or why they are not one."""
    if isinstance(raw, str):
        if not raw.strip():
            return {}, None  # some servers send "" for a call without arguments
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            return None, f"arguments of {name!r} are not valid JSON: {exc.msg} at {exc.pos}"
    if raw is None:
        return {}, None
    if not isinstance(raw, dict):
        return None, f"arguments of {name!r} must be a JSON object, not {type(raw).__name__}"
    return raw, None


def parse_tool_calls(message: Any) -> tuple[Shape, list[ToolCall]]:
    """The calls in ``message`` (a list of calls or blocks, or a whole message) and their shape.

    Anthropic blocks other than ``tool_use`` (text, thinking ...) are skipped. A call without an
    id (Ollama's native shape) gets ``call_<index>``.
    """
    shapes: set[Shape] = set()
    calls: list[ToolCall] = []
    for item in _items(message):
        d = _as_dict(item)
        kind = d.get("type")
        index = len(calls)
        call_id = str(d.get("id") or f"call_{index}")
        problem: str | None
        if "function" in d or kind in ("function", "custom"):
            shapes.add("openai")
            if kind == "custom":
                name = str((d.get("custom") or {}).get("name") or "?")
                problem = f"{name!r} is a custom tool call; only function calls can run here"
                calls.append(ToolCall(index, call_id, name, None, problem))
                continue
            function = d.get("function") or {}
            name = str(function.get("name") or "")
            arguments, problem = _arguments(name, function.get("arguments"))
        elif kind == "tool_use":
            shapes.add("anthropic")
            name = str(d.get("name") or "")
            arguments, problem = _arguments(name, d.get("input"))
        elif isinstance(kind, str):
            shapes.add("anthropic")  # a text, thinking ... block: not a call
            continue
        else:
            raise UsageError(f"item #{index + 1} is neither a tool call nor a content block")
        if not name and problem is None:
            problem = "the call names no tool"
        calls.append(ToolCall(index, call_id, name, arguments, problem))
    if len(shapes) > 1:
        raise UsageError("the tool calls mix the OpenAI and Anthropic shapes; give one message")
    return (shapes.pop() if shapes else "openai"), calls


def _spec(entry: ToolSpec | Callable[..., Any]) -> ToolSpec:
    return entry if isinstance(entry, ToolSpec) else ToolSpec(entry)


def _check(call: ToolCall, spec: ToolSpec, arguments: dict[str, Any]) -> str | None:
    """Why the function cannot take these arguments, before anything runs."""
    try:
        signature = inspect.signature(spec.fn)
    except (TypeError, ValueError):  # a builtin without a signature: let the call decide
        return None
    try:
        signature.bind(**arguments)
    except TypeError as exc:
        return f"bad arguments for {call.name!r}: {exc}"
    return None


@dataclasses.dataclass(frozen=True)
class _Batch:
    """One message's calls, the plan of those that can run, and why the others cannot."""

    shape: Shape
    calls: list[ToolCall]
    plan: Plan | None
    op_ids: dict[int, str]
    problems: dict[int, str]

    def results(self, trace: RunTrace | None) -> ToolCallResults:
        out: list[ToolCallResult] = []
        for call in self.calls:
            op_id = self.op_ids.get(call.index)
            result = trace.results.get(op_id) if trace is not None and op_id else None
            if result is None:
                error = self.problems.get(call.index, "not run (the run was interrupted)")
                out.append(ToolCallResult(call, error=error, op_id=op_id))
            elif result.status is Status.OK:
                out.append(ToolCallResult(call, result.value, None, result.status, op_id))
            else:
                error = result.error or result.status.value
                out.append(ToolCallResult(call, result.value, error, result.status, op_id))
        return ToolCallResults(tuple(out), self.shape, trace)


def _batch(
    tool_calls: Any,
    registry: Mapping[str, ToolSpec | Callable[..., Any]],
    *,
    backend: str,
    workers: int,
    root: str | Path | None,
    timeout: float | None,
    retries: int,
    offload_sync: bool,
) -> _Batch:
    if not backend_class(backend).runs_real_ops:
        raise UsageError(f"the {backend} backend does not call functions; pick a real backend")
    on_loop = backend_class(backend).event_loop
    shape, calls = parse_tool_calls(tool_calls)
    ops: list[PythonOp] = []
    op_ids: dict[int, str] = {}
    problems: dict[int, str] = {}
    for call in calls:
        if call.problem is not None or call.arguments is None:
            problems[call.index] = call.problem or "no arguments"
            continue
        if call.name not in registry:
            known = ", ".join(sorted(registry)) or "none"
            problems[call.index] = f"unknown tool {call.name!r} (known: {known})"
            continue
        spec = _spec(registry[call.name])
        problem = _check(call, spec, call.arguments)
        try:
            reads = spec.paths("reads", call.arguments)
            writes = spec.paths("writes", call.arguments)
        except Exception as exc:
            problem = problem or f"cannot tell what {call.name!r} touches: {exc!r}"
        if problem is not None:
            problems[call.index] = problem
            continue
        op_id = f"{call.index}-{call.name}"
        sync = not inspect.iscoroutinefunction(spec.fn)
        ops.append(
            PythonOp(
                id=op_id,
                call=spec.fn,
                kwargs=call.arguments,
                reads=reads,
                writes=writes,
                timeout=spec.timeout or timeout,
                backend="threads" if on_loop and sync and offload_sync else None,
            )
        )
        op_ids[call.index] = op_id
    plan = None
    if ops:
        plan = Plan(
            name="tool-calls",
            ops=ops,
            defaults=Defaults(backend=backend, workers=workers, retries=retries),
            base_dir=Path(root) if root is not None else Path.cwd(),
        )
    return _Batch(shape, calls, plan, op_ids, problems)


def execute(
    tool_calls: Any,
    registry: Mapping[str, ToolSpec | Callable[..., Any]],
    *,
    backend: str = "threads",
    workers: int = 8,
    root: str | Path | None = None,
    timeout: float | None = None,
    retries: int = 0,
    offload_sync: bool = True,
) -> ToolCallResults:
    """Run one message's tool calls, the independent ones at the same time; results in call order.

    ``tool_calls``: OpenAI ``message.tool_calls`` or Anthropic content blocks (dicts or SDK
    objects), or the whole message. ``registry``: tool name → :class:`ToolSpec` or a bare
    function (which conflicts with nothing). ``root``: what relative ``reads``/``writes`` are
    relative to (the current folder by default). ``timeout``: seconds per call, unless its
    ``ToolSpec`` says otherwise. Blocks; use :func:`aexecute` inside an event loop.
    """
    batch = _batch(
        tool_calls,
        registry,
        backend=backend,
        workers=workers,
        root=root,
        timeout=timeout,
        retries=retries,
        offload_sync=offload_sync,
    )
    return batch.results(run(batch.plan) if batch.plan is not None else None)


async def aexecute(
    tool_calls: Any,
    registry: Mapping[str, ToolSpec | Callable[..., Any]],
    *,
    backend: str = "async",
    workers: int = 8,
    root: str | Path | None = None,
    timeout: float | None = None,
    retries: int = 0,
    offload_sync: bool = True,
) -> ToolCallResults:
    """:func:`execute` from inside a running event loop (the async backend by default)."""
    batch = _batch(
        tool_calls,
        registry,
        backend=backend,
        workers=workers,
        root=root,
        timeout=timeout,
        retries=retries,
        offload_sync=offload_sync,
    )
    return batch.results(await arun(batch.plan) if batch.plan is not None else None)
