"""10-12. The MCP server: per-call overhead, batch vs one call per op, startup.

- *overhead*: the round trip of a ``read`` of a small file through the official SDK client over
  stdio, minus the same read in-process (the floor, subtracted per repetition) — next to the
  same round trip to a bare SDK low-level server that reads the file with ``open().read()``
  (what the SDK itself costs), and truepar's in-process path (the engine, one op per call, on
  the session's warm backend: what the server adds inside);
- *batch*: ten reads as one ``batch`` call, as ten calls one after another, and as ten calls
  sent at once, each as a ratio to the ten calls one by one;
- *startup*: from starting the server process to the answer of its first ``read`` (raw
  JSON-RPC over the pipes, so the client costs nothing) — truepar next to the bare SDK server
  and to ``python -c "import mcp"`` alone.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters

import truepar
from common import Benchmark, Column, Goal, Metrics, Variant, check
from truepar.backends import backend_class
from truepar.tools import READ, ReadOp, ToolContext

CALLS = 200
FOLDER = Path(tempfile.mkdtemp(prefix="truepar-bench-mcp-"))
(FOLDER / "small.txt").write_text("hello, world\n" * 8)
for _i in range(10):
    (FOLDER / f"f{_i}.txt").write_text(f"file {_i}\n" * 20)

BARE_SERVER = FOLDER / "bare_server.py"
BARE_SERVER.write_text(
    textwrap.dedent(
        '''
        """A bare MCP server on the SDK's low-level Server: one read tool, nothing else."""
        import sys
        from pathlib import Path

        import anyio
        from mcp import types
        from mcp.server.lowlevel import Server
        from mcp.server.stdio import stdio_server

        ROOT = Path(sys.argv[1])
        TOOL = types.Tool(
            name="read",
            input_schema={"type": "object", "properties": {"path": {"type": "string"}}},
        )


        async def list_tools(ctx, params):
            return types.ListToolsResult(tools=[TOOL])


        async def call_tool(ctx, params):
            text = (ROOT / params.arguments["path"]).read_text()
            return types.CallToolResult(content=[types.TextContent(type="text", text=text)])


        async def main():
            server = Server("bare", on_list_tools=list_tools, on_call_tool=call_tool)
            async with stdio_server() as (r, w):
                await server.run(r, w, server.create_initialization_options())


        anyio.run(main)
        '''
    )
)


def _truepar_cmd() -> list[str]:
    session = FOLDER / "session.json"
    ledger = FOLDER / "ledger.sqlite"
    return [
        sys.executable,
        "-m",
        "truepar",
        "mcp",
        "--root",
        str(FOLDER),
        "--session",
        str(session),
        "--ledger",
        str(ledger),
    ]


def _bare_cmd() -> list[str]:
    return [sys.executable, str(BARE_SERVER), str(FOLDER)]


def _params(cmd: list[str]) -> StdioServerParameters:
    return StdioServerParameters(command=cmd[0], args=cmd[1:])


# --------------------------------------------------------------------------- overhead


class _Floor:
    per_call_s = 0.0


def _in_process_read() -> Metrics:
    op = ReadOp(id="r", path="small.txt")
    t0 = time.perf_counter()
    for _ in range(CALLS):
        out = READ.run(op, ToolContext(FOLDER, FOLDER))
    seconds = time.perf_counter() - t0
    check(out.value["content"].startswith("hello"), "read content")
    _Floor.per_call_s = seconds / CALLS
    return {"overhead_us": 0.0, "per_call_us": seconds / CALLS * 1e6}


def _in_process_engine() -> Metrics:
    plan = truepar.Plan(
        name="r",
        defaults=truepar.Defaults(root=str(FOLDER), backend="async", workers=8),
        ops=[ReadOp(id="r", path="small.txt")],
        base_dir=FOLDER,
    )

    async def job() -> float:
        backend = backend_class("async")(8)
        await backend.start(8)
        try:
            await truepar.arun(plan, backend_instance=backend, checks=False)  # warm its thread
            t0 = time.perf_counter()
            for _ in range(CALLS):
                trace = await truepar.arun(plan, backend_instance=backend, checks=False)
            check(trace.ok, "engine read ok")
            return time.perf_counter() - t0
        finally:
            await backend.aclose()

    return _per_call(asyncio.run(job()))


def _round_trips(cmd: list[str]) -> Metrics:
    async def job() -> float:
        async with Client(_params(cmd), read_timeout_seconds=60) as client:
            await client.call_tool("read", {"path": "small.txt"})  # warm
            t0 = time.perf_counter()
            for _ in range(CALLS):
                result = await client.call_tool("read", {"path": "small.txt"})
            seconds = time.perf_counter() - t0
            check(not result.is_error, "read through the server")
            return seconds

    return _per_call(asyncio.run(job()))


def _per_call(seconds: float) -> Metrics:
    per_call = seconds / CALLS
    return {"overhead_us": (per_call - _Floor.per_call_s) * 1e6, "per_call_us": per_call * 1e6}


def benchmark_overhead() -> Benchmark:
    server = Variant(
        "truepar mcp: SDK client → read → answer",
        "truepar",
        lambda: _round_trips(_truepar_cmd()),
        note="over stdio; the session recorded as usual",
    )
    return Benchmark(
        name="mcp-overhead",
        title=f"MCP server overhead per call ({CALLS} sequential reads of a small file)",
        metric="overhead_us",
        unit="µs per call over the in-process read",
        better="lower",
        goal=Goal(1000.0, "<=", (server.label,)),
        fmt="{:.0f}",
        columns=[Column("per_call_us", "µs/call", "{:.0f}")],
        variants=[
            Variant(
                "in-process read (the floor)",
                "floor",
                _in_process_read,
                note="measured first in each repetition; subtracted from the others",
            ),
            Variant(
                "truepar engine in-process: one-op plan per call",
                "truepar",
                _in_process_engine,
                note="what the server runs per call, without the protocol",
            ),
            server,
            Variant(
                "bare SDK low-level server: open().read()",
                "peer",
                lambda: _round_trips(_bare_cmd()),
            ),
        ],
        notes=["overhead = µs per call − the in-process read's µs per call"],
        repeats=3,
    )


# --------------------------------------------------------------------------- batch


class _OneByOne:
    seconds = 0.0


def _ten(way: str) -> Metrics:
    paths = [f"f{i}.txt" for i in range(10)]

    async def job() -> float:
        async with Client(_params(_truepar_cmd()), read_timeout_seconds=60) as client:
            await client.call_tool("read", {"path": "small.txt"})  # warm
            best = float("inf")
            for _ in range(10):
                t0 = time.perf_counter()
                if way == "batch":
                    ops = [{"id": f"r{i}", "tool": "read", "path": p} for i, p in enumerate(paths)]
                    result = await client.call_tool("batch", {"ops": ops})
                    check(result.structured_content is not None, "batch results")
                elif way == "together":
                    await asyncio.gather(*(client.call_tool("read", {"path": p}) for p in paths))
                else:
                    for p in paths:
                        await client.call_tool("read", {"path": p})
                best = min(best, time.perf_counter() - t0)
            return best

    seconds = asyncio.run(job())
    if way == "one-by-one":
        _OneByOne.seconds = seconds
    ratio = seconds / _OneByOne.seconds if _OneByOne.seconds else 1.0
    return {"ratio": ratio, "wall_ms": seconds * 1e3}


def benchmark_batch() -> Benchmark:
    batch = Variant("truepar mcp: 10 reads in one batch call", "truepar", lambda: _ten("batch"))
    return Benchmark(
        name="mcp-batch",
        title="10 reads of small files through truepar mcp (best of 10 per repetition)",
        metric="ratio",
        unit="× the wall of 10 calls one by one",
        better="lower",
        goal=Goal(1.0, "<=", (batch.label,)),
        fmt="{:.2f}",
        columns=[Column("wall_ms", "wall ms", "{:.2f}")],
        variants=[
            Variant(
                "10 read calls one by one",
                "peer",
                lambda: _ten("one-by-one"),
                note="measured first; the others are ratios to it",
            ),
            batch,
            Variant("10 read calls sent at once", "truepar", lambda: _ten("together")),
        ],
        repeats=3,
    )


# --------------------------------------------------------------------------- startup


def _first_answer(cmd: list[str]) -> Metrics:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert proc.stdin is not None and proc.stdout is not None

    def send(message: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write((json.dumps(message) + "\n").encode())
        proc.stdin.flush()

    try:
        hello = {"name": "bench", "version": "1"}
        init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": hello}
        send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})
        proc.stdout.readline()
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        call = {"name": "read", "arguments": {"path": "small.txt"}}
        send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call})
        answer = proc.stdout.readline()
        seconds = time.perf_counter() - t0
        check(b"hello" in answer, "first answer")
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    return {"seconds": seconds}


def _import_mcp() -> Metrics:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import mcp.server.lowlevel, mcp.server.stdio"], check=True
    )
    return {"seconds": time.perf_counter() - t0}


def benchmark_startup() -> Benchmark:
    server = Variant(
        "truepar mcp: start → first read answered", "truepar", lambda: _first_answer(_truepar_cmd())
    )
    return Benchmark(
        name="mcp-startup",
        title="MCP server startup to the first answered call",
        metric="seconds",
        unit="s",
        better="lower",
        goal=Goal(0.5, "<=", (server.label,)),
        fmt="{:.3f}",
        variants=[
            Variant('python -c "import mcp.server.lowlevel" (the SDK alone)', "floor", _import_mcp),
            Variant(
                "bare SDK low-level server: start → first read answered",
                "peer",
                lambda: _first_answer(_bare_cmd()),
            ),
            server,
        ],
        repeats=5,
    )
