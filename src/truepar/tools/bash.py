"""``bash``: run a command as a real subprocess and capture what it says.

``argv`` (a list, no shell) by default; a shell only when ``shell = true`` is asked for. Each child
leads its own process group, so a timeout or cancel kills it *and* whatever it started; its CPU
comes from its own rusage (``os.wait4``), not from guesses. The sync path waits with a selector,
the async path with the event loop's readers and a pidfd — same spawn, same capture, same result.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import selectors
import shlex
import shutil
import signal
import subprocess
import threading
from typing import Any, Literal

from pydantic import Field, model_validator

from truepar.errors import OpError
from truepar.tools.base import DEFAULT_MAX_BYTES, OpBase, Tool, ToolContext, ToolOutput

_READ_CHUNK = 1 << 16

#: Process groups of children still running in this process, so that a worker told to stop
#: (SIGTERM from the processes backend) can kill them before it exits.
_LIVE_GROUPS: set[int] = set()
_LIVE_LOCK = threading.Lock()
#: In a ``processes`` worker, children stay in the worker's own process group, so that killing
#: the group kills the worker and everything its op started, at once.
_OWN_GROUPS = True


class BashOp(OpBase):
    tool: Literal["bash"] = "bash"
    argv: tuple[str, ...] | None = None
    #: A shell command line; only with ``shell = true``.
    command: str | None = None
    shell: bool = False
    #: Working directory, relative to the plan's root (confined to it).
    cwd: str = "."
    env: dict[str, str] = Field(default_factory=dict)
    #: Start from an empty environment (plus ``env``) instead of inheriting this one.
    env_clear: bool = False
    stdin: str | None = None
    #: Bytes kept of stdout and of stderr each; the rest is read and counted, not kept.
    max_output_bytes: int = Field(default=DEFAULT_MAX_BYTES, gt=0)
    #: A non-zero exit code fails the op (its output is kept either way).
    check: bool = True

    @model_validator(mode="after")
    def _argv_or_command(self) -> BashOp:
        if self.shell:
            if not self.command and not self.argv:
                raise ValueError("shell = true needs command = '...'")
        elif self.command is not None:
            raise ValueError("command needs shell = true; or give argv = ['prog', 'arg', ...]")
        elif not self.argv:
            raise ValueError("give argv = ['prog', 'arg', ...] (or command with shell = true)")
        return self

    def args(self) -> list[str]:
        if self.shell:
            line = self.command if self.command else shlex.join(self.argv or ())
            return ["/bin/sh", "-c", line]
        return list(self.argv or ())

    def display(self) -> str:
        return self.command if self.shell and self.command else shlex.join(self.argv or ())


@functools.lru_cache(maxsize=256)
def _which(program: str, path: str) -> str | None:
    """Where ``program`` is on ``path``, looked up once: the child then execs it directly
    instead of trying each ``PATH`` folder in turn (tens of µs of failed ``execve`` a spawn).
    ``None`` (a path with a slash, or not found) leaves the search to the child, as usual."""
    if "/" in program:
        return None
    return shutil.which(program, path=path)


class _Capture:
    """Bytes of one stream, kept up to a cap and counted beyond it."""

    __slots__ = ("cap", "chunks", "kept", "total")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.chunks: list[bytes] = []
        self.kept = 0
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.cap - self.kept
        if room > 0:
            piece = data[:room]
            self.chunks.append(piece)
            self.kept += len(piece)

    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", "replace")


class _Child:
    """A spawned command: its process, pipes and captures. Shared by the sync and async waits."""

    def __init__(self, op: BashOp, ctx: ToolContext) -> None:
        self.op = op
        cwd = ctx.resolve(op.cwd)
        if not cwd.is_dir():
            raise OpError(f"cwd {op.cwd!r} is not a directory")
        env: dict[str, str] | None = None  # inherit, without copying os.environ per spawn
        if op.env_clear or op.env:
            env = {} if op.env_clear else dict(os.environ)
            env.update(op.env)
        args = op.args()
        try:
            self.proc = subprocess.Popen(
                args,
                executable=_which(args[0], (env or os.environ).get("PATH", os.defpath)),
                cwd=cwd,
                env=env,
                stdin=subprocess.PIPE if op.stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                process_group=0 if _OWN_GROUPS else None,
            )
        except OSError as exc:
            raise OpError(f"cannot start {op.display()!r}: {exc.strerror or exc}") from exc
        self.pid = self.proc.pid
        with _LIVE_LOCK:
            _LIVE_GROUPS.add(self.pid)
        self.out = _Capture(op.max_output_bytes)
        self.err = _Capture(op.max_output_bytes)
        self.stdin_data = op.stdin.encode() if op.stdin is not None else b""
        ctx.on_cancel(self.kill)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if _OWN_GROUPS:
                os.killpg(self.pid, signal.SIGKILL)
            else:
                os.kill(self.pid, signal.SIGKILL)

    def reap(self, ctx: ToolContext) -> int:
        """Wait for the child (it has exited or been killed) and take its rusage."""
        if _OWN_GROUPS:
            # Kill what the child left behind in its group (``cmd &``): nothing outlives its op.
            # Wait for the leader to exit but leave it a zombie first: while it is unreaped its
            # group id cannot be given to anyone else, so the kill cannot hit a stranger.
            with contextlib.suppress(ChildProcessError):
                os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        try:
            _, status, usage = os.wait4(self.pid, 0)
        except ChildProcessError:  # already reaped (cannot happen unless someone else waited)
            status, usage = 0, None
        finally:
            with _LIVE_LOCK:
                _LIVE_GROUPS.discard(self.pid)
        if usage is not None:
            ctx.child_cpu_s += usage.ru_utime + usage.ru_stime
        code = os.waitstatus_to_exitcode(status)
        self.proc.returncode = code
        return code

    def output(self, code: int) -> ToolOutput:
        op = self.op
        value: dict[str, Any] = {
            "argv": op.args(),
            "exit_code": code,
            "stdout": self.out.text(),
            "stderr": self.err.text(),
            "stdout_bytes": self.out.total,
            "stderr_bytes": self.err.total,
            "stdout_truncated": self.out.total > self.out.kept,
            "stderr_truncated": self.err.total > self.err.kept,
        }
        shown = op.display()
        if len(shown) > 60:
            shown = shown[:57] + "..."
        summary = f"{shown} → exit {code} ({self.out.total + self.err.total} B out)"
        error = None
        if code < 0:
            error = f"killed by {signal.Signals(-code).name}"
        elif code != 0 and op.check:
            last = self.err.text().strip().splitlines()[-1:] or [""]
            error = f"exit code {code}" + (f": {last[0][:200]}" if last[0] else "")
        return ToolOutput(value, summary, self.out.kept + self.err.kept, error)


def run(op: BashOp, ctx: ToolContext) -> ToolOutput:
    child = _Child(op, ctx)
    proc = child.proc
    assert proc.stdout is not None and proc.stderr is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, child.out)
        sel.register(proc.stderr, selectors.EVENT_READ, child.err)
        pending = memoryview(child.stdin_data)
        if proc.stdin is not None:
            if pending:
                os.set_blocking(proc.stdin.fileno(), False)
                sel.register(proc.stdin, selectors.EVENT_WRITE)
            else:
                proc.stdin.close()
        while sel.get_map():
            for key, _ in sel.select():
                if key.fileobj is proc.stdin:
                    assert proc.stdin is not None
                    try:
                        pending = pending[os.write(proc.stdin.fileno(), pending[:_READ_CHUNK]) :]
                    except BrokenPipeError:
                        pending = pending[:0]
                    if not pending:
                        sel.unregister(proc.stdin)
                        proc.stdin.close()
                    continue
                data = os.read(key.fd, _READ_CHUNK)
                if data:
                    key.data.add(data)
                else:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()  # type: ignore[union-attr]
    return child.output(child.reap(ctx))


async def arun(op: BashOp, ctx: ToolContext) -> ToolOutput:
    loop = asyncio.get_running_loop()
    child = _Child(op, ctx)
    proc = child.proc
    assert proc.stdout is not None and proc.stderr is not None
    done = loop.create_future()
    open_fds: set[int] = set()
    pidfd = os.pidfd_open(child.pid)

    def finish_one(fd: int) -> None:
        loop.remove_reader(fd)
        open_fds.discard(fd)
        if not open_fds and not done.done():
            done.set_result(None)

    def make_reader(fd: int, capture: _Capture) -> None:
        os.set_blocking(fd, False)
        open_fds.add(fd)

        def on_readable() -> None:
            try:
                data = os.read(fd, _READ_CHUNK)
            except BlockingIOError:
                return
            if data:
                capture.add(data)
            else:
                finish_one(fd)

        loop.add_reader(fd, on_readable)

    make_reader(proc.stdout.fileno(), child.out)
    make_reader(proc.stderr.fileno(), child.err)
    open_fds.add(pidfd)
    loop.add_reader(pidfd, finish_one, pidfd)
    writer: asyncio.Task[None] | None = None
    if proc.stdin is not None:
        writer = asyncio.ensure_future(_feed(proc.stdin, child.stdin_data))
    try:
        await done
    except BaseException:
        child.kill()
        raise
    finally:
        for fd in list(open_fds):
            loop.remove_reader(fd)
        if writer is not None:
            writer.cancel()
        os.close(pidfd)
        for stream in (proc.stdout, proc.stderr, proc.stdin):
            if stream is not None:
                stream.close()
        code = child.reap(ctx)
    return child.output(code)


async def _feed(stream: Any, data: bytes) -> None:
    """Write ``data`` to a child's stdin without blocking the loop, then close it."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, stream)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    try:
        writer.write(data)
        await writer.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        writer.close()


def become_worker() -> None:
    """In a new worker process: lead a process group that the op's children join.

    The children already in the list (a forked worker inherits it) belong to the parent.
    """
    global _OWN_GROUPS
    os.setpgrp()
    _OWN_GROUPS = False
    with _LIVE_LOCK:
        _LIVE_GROUPS.clear()


def kill_all_children() -> None:
    """Kill every child process group this process started and has not reaped yet."""
    with _LIVE_LOCK:
        groups = list(_LIVE_GROUPS)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


BASH = Tool("bash", BashOp, run, arun)
