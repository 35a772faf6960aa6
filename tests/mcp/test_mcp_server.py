"""``truepar mcp`` as a client meets it: a real server process, the official SDK client, stdio.

Timing is asserted only where it is the subject (calls sent together overlap), by the spans'
order on the session's own timeline, with the wall-clock bound as loose as "not one by one".
Every process a test starts is found by a unique marker and reaped, whatever happens.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.types import CallToolResult

from helpers.cli import truepar
from helpers.http_server import serving
from helpers.mcp_client import (
    connect,
    kill_all,
    load_session,
    pids_with,
    server_args,
    server_env,
    wait_gone,
)
from helpers.throttle import Script

pytestmark = pytest.mark.timeout(120)


def text(result: CallToolResult) -> str:
    block = result.content[0]
    assert block.type == "text"
    return block.text


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "a.py").write_text("def a():\n    return 1\n")
    (folder / "src" / "b.py").write_text("def b():\n    return 2\n")
    (folder / "README.md").write_text("hello\n")
    return folder


def test_tools_are_listed_with_their_annotations(root: Path, tmp_path: Path) -> None:
    async def go() -> dict[str, Any]:
        async with connect(root, tmp_path / "s.json") as client:
            listed = await client.list_tools()
            return {t.name: t for t in listed.tools}

    tools = asyncio.run(go())
    assert list(tools) == ["read", "ls", "grep", "bash", "http", "batch", "session"]
    for name in ("read", "ls", "grep", "session"):
        assert tools[name].annotations is not None
        assert tools[name].annotations.read_only_hint is True
    assert tools["bash"].annotations is not None
    assert tools["bash"].annotations.destructive_hint is True
    assert tools["http"].annotations is not None
    assert tools["http"].annotations.open_world_hint is True
    assert tools["read"].input_schema["required"] == ["path"]
    assert "after" not in tools["read"].input_schema["properties"]  # the plan's, not a call's
    assert {"argv", "command", "shell", "writes"} <= set(tools["bash"].input_schema["properties"])


def test_calls_sent_at_once_run_at_once(root: Path, tmp_path: Path) -> None:
    session = tmp_path / "s.json"

    async def go() -> tuple[list[CallToolResult], float]:
        async with connect(root, session) as client:
            await client.list_tools()
            t0 = time.perf_counter()
            results = await asyncio.gather(
                *(client.call_tool("bash", {"argv": ["sleep", "0.5"]}) for _ in range(4))
            )
            return list(results), time.perf_counter() - t0

    results, wall = asyncio.run(go())
    assert [r.is_error for r in results] == [False] * 4
    assert wall < 2.0, f"4 × 0.5 s took {wall:.2f} s: the calls ran one by one"
    data = load_session(session)
    spans = [s for s in data["spans"] if s["tool"] == "bash"]
    assert len(spans) == 4
    assert max(s["start_ns"] for s in spans) < min(s["end_ns"] for s in spans), "no overlap"
    summary = data["session"]["summary"]
    assert summary["peak"] == 4 and summary["overlapped"] == 4
    assert len({s["worker"] for s in spans}) == 4  # one timeline row per op at once


def test_bad_calls_are_one_line_errors_and_the_server_keeps_serving(
    root: Path, tmp_path: Path
) -> None:
    session = tmp_path / "s.json"

    async def go() -> list[CallToolResult]:
        async with connect(root, session) as client:
            return [
                await client.call_tool("read", {"path": "../outside.txt"}),
                await client.call_tool("read", {"pth": "README.md"}),
                await client.call_tool("read", {"path": "README.md", "offset": -1}),
                await client.call_tool("batch", {"ops": []}),
                await client.call_tool("batch", {"ops": [{"id": "x", "tool": "python"}]}),
                await client.call_tool("nope", {}),
                await client.call_tool("read", {"path": "README.md"}),
            ]

    *bad, good = asyncio.run(go())
    for result in bad:
        assert result.is_error
        assert "\n" not in text(result).strip(), text(result)
    assert "leaves the plan root" in text(bad[0])
    assert "takes no argument 'pth'" in text(bad[1])
    assert "offset" in text(bad[2])
    assert "non-empty list" in text(bad[3])
    assert "tool must be one of" in text(bad[4])
    assert "unknown tool 'nope'" in text(bad[5])
    assert not good.is_error and text(good) == "hello\n"
    calls = load_session(session)["session"]["calls"]
    assert [c["status"] for c in calls] == ["failed", *["rejected"] * 5, "ok"]


def test_batch_orders_conflicts_and_overlaps_the_rest(root: Path, tmp_path: Path) -> None:
    ops = [
        {
            "id": "w",
            "tool": "bash",
            "command": "sleep 0.4; echo new > out.txt",
            "shell": True,
            "writes": ["out.txt"],
        },
        {"id": "r", "tool": "read", "path": "out.txt"},
        {"id": "s", "tool": "bash", "argv": ["sleep", "0.4"], "reads": ["src"]},
        {"id": "bad", "tool": "read", "path": "missing.txt"},
        {"id": "g", "tool": "grep", "pattern": "def", "path": "src"},
    ]

    async def go() -> CallToolResult:
        async with connect(root, tmp_path / "s.json") as client:
            return await client.call_tool("batch", {"ops": ops})

    result = asyncio.run(go())
    assert not result.is_error
    assert result.structured_content is not None
    results = {r["id"]: r for r in result.structured_content["results"]}
    assert [r["id"] for r in result.structured_content["results"]] == ["w", "r", "s", "bad", "g"]
    assert results["r"]["start_s"] >= results["w"]["end_s"]  # reads what w writes: after it
    assert results["r"]["value"]["content"] == "new\n"
    assert results["s"]["start_s"] < results["w"]["end_s"]  # independent: at the same time
    assert results["bad"]["status"] == "failed" and "no such file" in results["bad"]["error"]
    assert results["g"]["status"] == "ok"  # a failure cancels nothing that does not need it
    measured = result.structured_content["measured"]
    assert measured["critical_path_s"] >= 0.4
    assert measured["sum_op_s"] > measured["wall_s"]  # more op time than wall: overlap
    assert "── measured:" in text(result)


def test_one_by_one_calls_show_missed_parallelism(root: Path, tmp_path: Path) -> None:
    session = tmp_path / "s.json"

    async def go() -> CallToolResult:
        async with connect(root, session) as client:
            for name, args in (
                ("read", {"path": "src/a.py"}),
                ("read", {"path": "src/b.py"}),
                ("grep", {"pattern": "return", "path": "src"}),
            ):
                await client.call_tool(name, args)
                await asyncio.sleep(0.2)  # the model reading the answer before the next call
            return await client.call_tool("session", {})

    report = asyncio.run(go())
    assert report.structured_content is not None
    missed = report.structured_content["missed"]
    assert [m["calls"] for m in missed] == [[1, 2, 3]]
    assert "missed parallelism" in text(report) and "upper bound" in text(report)
    printed = truepar("mcp", "report", str(session))
    assert printed.returncode == 0, printed.stderr
    assert "calls 1-3 (2× read, grep)" in printed.stdout
    assert "3 calls (3 ok)" in printed.stdout  # asking for the session is not a tool call


def test_the_session_is_evidence_that_verifies_and_renders(root: Path, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    assert truepar("keys", "init", "--dir", str(keys)).returncode == 0
    session, ledger = tmp_path / "s.json", tmp_path / "ledger.sqlite"

    async def go() -> None:
        async with connect(root, session, "--keys", str(keys), "--ledger", str(ledger)) as c:
            await asyncio.gather(
                c.call_tool("read", {"path": "README.md"}), c.call_tool("ls", {"path": "src"})
            )

    asyncio.run(go())
    verified = truepar("verify", str(session), "--ledger", str(ledger))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "VALID" in verified.stdout
    html = tmp_path / "timeline.html"
    rendered = truepar("report", str(session), "--html", str(html))
    assert rendered.returncode == 0, rendered.stderr
    assert "c1" in html.read_text() and "c2" in html.read_text()
    data = load_session(session)
    assert data["status"] == "ok" and data["session"]["final"] is True


def test_a_killed_client_leaves_no_process_and_an_interrupted_session(
    root: Path, tmp_path: Path
) -> None:
    session = tmp_path / f"s-{random.randrange(10**9)}.json"
    marker = f"{random.uniform(500, 600):.6f}"  # the sleep's argument: unique to this test
    client_code = f"""
import asyncio, sys
sys.path.insert(0, {str(Path(__file__).parents[1])!r})
from helpers.mcp_client import connect
from pathlib import Path
async def main():
    async with connect(Path({str(root)!r}), Path({str(session)!r})) as client:
        await client.list_tools()
        print("ready", flush=True)
        await client.call_tool("bash", {{"argv": ["sleep", {marker!r}]}})
asyncio.run(main())
"""
    client = subprocess.Popen(
        [sys.executable, "-c", client_code], stdout=subprocess.PIPE, env=None, text=True
    )
    started: list[int] = [client.pid]
    try:
        assert client.stdout is not None
        assert client.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 30
        while not pids_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        sleepers, servers = pids_with(marker), pids_with(str(session))
        started += sleepers + servers
        assert sleepers and servers
        client.kill()
        client.wait(timeout=10)
        assert wait_gone(servers + sleepers, timeout=30) == []
        data = load_session(session)
        assert data["status"] == "interrupted"
        assert data["interrupted_by"] == "client disconnected"
        assert data["session"]["final"] is True
        assert [c["status"] for c in data["session"]["calls"]] == ["cancelled"]
    finally:
        kill_all(started)
        client.wait(timeout=10)


def _rpc(proc: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
    assert proc.stdin is not None
    proc.stdin.write((json.dumps(message) + "\n").encode())
    proc.stdin.flush()


def test_sigterm_ends_the_session_interrupted_with_exit_143(root: Path, tmp_path: Path) -> None:
    session = tmp_path / "s.json"
    marker = f"{random.uniform(600, 700):.6f}"
    proc = subprocess.Popen(
        [sys.executable, *server_args(root, session)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**server_env(), "PATH": "/usr/bin:/bin"},
    )
    started = [proc.pid]
    try:
        init = {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        }
        _rpc(proc, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})
        assert proc.stdout is not None
        assert b'"id":1' in proc.stdout.readline()
        _rpc(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        call = {"name": "bash", "arguments": {"argv": ["sleep", marker]}}
        _rpc(proc, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call})
        deadline = time.monotonic() + 30
        while not pids_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        sleepers = pids_with(marker)
        started += sleepers
        assert sleepers
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 143, err.decode()
        assert wait_gone(sleepers, timeout=10) == []
        data = load_session(session)
        assert data["status"] == "interrupted" and data["interrupted_by"] == "SIGTERM"
        assert "session interrupted" in err.decode()
    finally:
        kill_all(started)
        proc.wait(timeout=10)


def test_cli_checks_its_options_before_serving(tmp_path: Path) -> None:
    assert truepar("mcp", "--help").returncode == 0
    missing = truepar("mcp", "--root", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "is not a directory" in missing.stderr
    workers = truepar("mcp", "--root", str(tmp_path), "--workers", "0")
    assert workers.returncode == 2 and "workers" in workers.stderr
    folder = truepar("mcp", "--root", str(tmp_path), "--session", str(tmp_path))
    assert folder.returncode == 2 and "--session" in folder.stderr
    not_session = tmp_path / "x.json"
    not_session.write_text("{}")
    report = truepar("mcp", "report", str(not_session))
    assert report.returncode == 2


def test_the_readmes_mcp_json_starts_a_server_as_written(root: Path, tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("a project `.mcp.json`:", 1)[1].split("```json\n", 1)[1].split("```")[0]
    entry = json.loads(block)["mcpServers"]["truepar"]
    assert entry["command"] == "truepar"
    bin_dir = str(Path(sys.executable).parent)  # where the install put `truepar`
    params = StdioServerParameters(
        command=entry["command"],
        args=entry["args"],
        cwd=root,  # "--root ." is the project the client runs in
        env={**server_env(), "PATH": f"{bin_dir}:/usr/bin:/bin"},
    )

    async def go() -> CallToolResult:
        async with Client(params, read_timeout_seconds=60) as client:
            return await client.call_tool("read", {"path": "README.md"})

    assert text(asyncio.run(go())) == "hello\n"
    for line in (
        "claude mcp add truepar -- truepar mcp --root .",
        "codex mcp add truepar -- truepar mcp --root .",
    ):
        assert line in readme
        assert line.split(" -- ", 1)[1].split() == [entry["command"], *entry["args"]]


def test_http_through_the_server_waits_out_retry_after(root: Path, tmp_path: Path) -> None:
    script = Script((429, {"Retry-After": "1"}), (503, {"Retry-After": "0"}))

    async def go(url: str) -> CallToolResult:
        async with connect(root, tmp_path / "s.json") as client:
            return await client.call_tool("http", {"url": url, "timeout": 30})

    with serving(script.handler()) as port:
        result = asyncio.run(go(f"http://127.0.0.1:{port}/x"))
    assert not result.is_error, text(result)
    assert text(result).startswith("HTTP 200")
    assert script.requests == 3
    assert result.structured_content is not None
    assert result.structured_content["duration_s"] >= 1.0  # waited as the server asked
    assert "after 1 × 429 + 1 × 503" in result.structured_content["summary"]
