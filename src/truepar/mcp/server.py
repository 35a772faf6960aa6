"""The MCP server over stdio, on the official MCP Python SDK's low-level ``Server``.

The low-level server, not ``MCPServer``'s decorators: each tool's input schema is generated from
truepar's own op model (one source of truth with plan files), and arguments are checked by that
model, so a bad argument is one line naming what to fix — not a multi-line validation dump.
The SDK handles each request in its own task, so calls sent together run together; every call
runs through :class:`~truepar.mcp.calls.Runner`, none blocks the event loop.

The session is written as evidence (see :mod:`truepar.mcp.session`): snapshots while it runs,
the final record when the client closes the connection, or on SIGTERM / Ctrl-C — then marked
interrupted, with the calls still in flight cancelled (their subprocesses killed).
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from truepar._version import __version__
from truepar.evidence.writer import Recorded
from truepar.mcp.calls import DEFAULT_TIMEOUT_S, SERVED, CallResult, Runner, input_schema
from truepar.mcp.session import SNAPSHOT_EVERY_S, Session, SessionRecorder
from truepar.records import RunTrace

_READ_ONLY = types.ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
_ANNOTATIONS: dict[str, types.ToolAnnotations] = {
    "read": _READ_ONLY,
    "ls": _READ_ONLY,
    "grep": _READ_ONLY,
    "bash": types.ToolAnnotations(
        read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True
    ),
    "http": types.ToolAnnotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
    ),
    "batch": types.ToolAnnotations(
        read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True
    ),
    "session": _READ_ONLY,
}

_SAME_TIME = "Calls sent together run at the same time."
_DESCRIPTIONS = {
    "read": "Read a file under the server's root (paths outside it are refused). Returns its "
    "text; offset, length and max_bytes select a part. " + _SAME_TIME,
    "ls": "List a directory under the root: pattern (globs), recursive, include_hidden. "
    + _SAME_TIME,
    "grep": "Search files under the root for a regular expression: path, include/exclude "
    "globs, ignore_case, max_matches. Returns path:line:text lines. " + _SAME_TIME,
    "bash": "Run a command in the root: argv (a list, no shell), or command with shell=true. "
    "cwd, env, stdin, timeout (seconds). A non-zero exit is an error unless check=false. "
    "Declare reads/writes (paths) so the session report can tell which calls could have run "
    "together; a command that declares neither is taken to change anything. " + _SAME_TIME,
    "http": "Send an HTTP request: url, method, headers, params, body or json, timeout. A 429 "
    "or 503 with Retry-After is waited for (bounded) and retried. " + _SAME_TIME,
    "batch": "Run several ops in one call, as a plan: ops is a list of {id, tool, ...tool "
    "fields, after, reads, writes} with tool one of read, ls, grep, bash, http. Ops that "
    "conflict (one writes what another reads or writes) or are ordered by after run in order, "
    "the rest at the same time; a failure never cancels ops that do not depend on it. Returns "
    "results (in the given order: id, status, value or error, start_s, end_s) and measured "
    "(wall_s, sum_op_s, avg_concurrency, cores_used, critical_path_s).",
    "session": "This session so far: calls, how many overlapped, the client's average "
    "concurrency, and missed parallelism — calls sent one after another with no read/write "
    "conflict, with the time batching them would at most have saved.",
}

_BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "ops": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "tool": {"enum": list(SERVED)},
                    "after": {"type": "array", "items": {"type": "string"}},
                    "reads": {"type": "array", "items": {"type": "string"}},
                    "writes": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["id", "tool"],
            },
        }
    },
    "required": ["ops"],
    "additionalProperties": False,
}
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}


def tool_list() -> list[types.Tool]:
    """Every tool the server offers, with its schema and annotations."""
    schemas = {name: input_schema(name) for name in SERVED}
    schemas |= {"batch": _BATCH_SCHEMA, "session": _EMPTY_SCHEMA}
    return [
        types.Tool(
            name=name,
            description=_DESCRIPTIONS[name],
            input_schema=schema,
            annotations=_ANNOTATIONS[name],
        )
        for name, schema in schemas.items()
    ]


def _result(result: CallResult) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=result.text)],
        structured_content=result.structured,
        is_error=result.is_error,
    )


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    root: Path
    workers: int = 8
    timeout_s: float = DEFAULT_TIMEOUT_S
    session_out: Path | None = None
    keys: Path | None = None
    ledger: Path | None = None


@dataclasses.dataclass(frozen=True)
class Served:
    """What a server's life left: the session's evidence and trace, and why it ended."""

    recorded: Recorded
    trace: RunTrace
    interrupted_by: str | None


def build_server(runner: Runner) -> Server[Any]:
    """The low-level SDK server answering ``tools/list`` and ``tools/call`` with ``runner``."""
    tools = tool_list()

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        if params.name == "session":
            summary = runner.session.summary()
            return _result(CallResult("\n".join(summary.lines()), summary.to_json()))
        return _result(await runner.call(params.name, params.arguments))

    return Server(
        "truepar",
        version=__version__,
        instructions="truepar runs file, search, shell and HTTP work at the same time and "
        "measures whether it really overlapped. Send independent calls together, or use batch.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def serve(config: ServeConfig, recorder: SessionRecorder | None = None) -> Served:
    """Serve MCP over stdin/stdout until the client closes it (or SIGTERM / Ctrl-C)."""
    if recorder is None:
        recorder = prepare(config)
    runner = Runner(recorder.session, timeout_s=config.timeout_s)
    server = build_server(runner)
    stopped_by: list[str] = []
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def on_signal(name: str) -> None:
        stopped_by.append(name)
        if main is not None:
            main.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)
    snapshots = asyncio.create_task(_snapshots(recorder))
    closed = _Closed()
    failure: str | None = None
    try:
        await runner.start()
        await _serve_stdio(server, closed)
    except asyncio.CancelledError:
        if not stopped_by:
            raise
    except BaseException as exc:  # recorded, then raised: the session is never lost
        failure = f"server error: {type(exc).__name__}"
        raise
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        snapshots.cancel()
        with anyio.CancelScope(shield=True):
            await runner.aclose()
        interrupted_by = stopped_by[0] if stopped_by else failure
        if interrupted_by is None and closed.cut_short(recorder.session):
            interrupted_by = "client disconnected"
        recorded, trace = recorder.finish(interrupted_by=interrupted_by)
    return Served(recorded, trace, interrupted_by)


async def _serve_stdio(server: Server[Any], closed: _Closed) -> None:
    """Serve until the client's side ends. A client killed mid-call leaves a broken pipe for
    the answer: that is the client gone, not a server failure."""
    try:
        async with stdio_server() as (read_stream, write_stream), anyio.create_task_group() as tg:
            ours, theirs = anyio.create_memory_object_stream[Any](0)
            tg.start_soon(_relay, read_stream, ours, closed)
            await server.run(theirs, write_stream, server.create_initialization_options())
            tg.cancel_scope.cancel()
    except* (BrokenPipeError, ConnectionResetError):
        if closed.at_ns is None:
            closed.at_ns = time.monotonic_ns()


def prepare(config: ServeConfig) -> SessionRecorder:
    """The session and its evidence writer: bad paths and keys fail here, before serving."""
    session = Session(config.root, config.workers)
    return SessionRecorder(session, config.session_out, keys=config.keys, ledger=config.ledger)


class _Closed:
    """When the client closed the connection: calls cancelled from then on were cut short."""

    at_ns: int | None = None

    def cut_short(self, session: Session) -> bool:
        """Whether calls were still in flight when the client left."""
        if self.at_ns is None:
            return False
        return any(
            c.status in ("running", "cancelled") and (c.finished_ns or self.at_ns) >= self.at_ns
            for c in session.calls
        )


async def _relay(source: Any, sink: Any, closed: _Closed) -> None:
    """Pass the client's messages on; note when its side of the connection ends."""
    async with sink:
        async for message in source:
            await sink.send(message)
    closed.at_ns = time.monotonic_ns()


async def _snapshots(recorder: SessionRecorder) -> None:
    """While serving: the evidence rewritten at most once a second, when something changed."""
    while True:
        await asyncio.sleep(SNAPSHOT_EVERY_S)
        if recorder.changed():
            await asyncio.to_thread(recorder.snapshot, recorder.session.copy())
