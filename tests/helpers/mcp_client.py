"""A real ``truepar mcp`` process, driven by the official MCP Python SDK's client over stdio,
and the process bookkeeping the server tests need (find by command line, wait, reap)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters

#: Environment the server needs from the test: its data folder (evidence, ledger, keys).
_PASS_ENV = (
    "XDG_DATA_HOME",
    "XDG_CONFIG_HOME",
    "TRUEPAR_LEDGER",
    "TRUEPAR_EVIDENCE_DIR",
    "TRUEPAR_KEYS",
    "PYTHONPATH",
)


def server_args(root: Path, session: Path, *extra: str) -> list[str]:
    return ["-m", "truepar", "mcp", "--root", str(root), "--session", str(session), *extra]


def server_env() -> dict[str, str]:
    return {k: os.environ[k] for k in _PASS_ENV if k in os.environ}


@contextlib.asynccontextmanager
async def connect(root: Path, session: Path, *extra: str) -> AsyncIterator[Client]:
    """A connected SDK client; leaving the block closes stdin and the SDK reaps the server."""
    params = StdioServerParameters(
        command=sys.executable, args=server_args(root, session, *extra), env=server_env()
    )
    async with Client(params, read_timeout_seconds=60) as client:
        yield client


def load_session(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())["data"]
    return data


def pids_with(marker: str) -> list[int]:
    """Processes whose command line contains ``marker`` (this test's own, by a unique string)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie (a zombie has ended; only its parent has yet to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait up to ``timeout`` for ``pids`` to end; the ones still alive."""
    deadline = time.monotonic() + timeout
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if alive(p)]
    return left


def kill_all(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
