"""Spawn a child in its own process group, capture what it says, reap it with its rusage.

Shared by ``bash`` and ``agent``: both need the same guarantees — a timeout or cancel kills the
child *and* whatever it started, nothing outlives its op, its CPU comes from ``os.wait4`` rather
than guesses. The sync wait uses a selector, the async wait the event loop's readers and a
pidfd — same spawn, same capture, same result. Each tool only shapes its own value.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import selectors
import shutil
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from truepar.errors import OpError
from truepar.lifeline import release as lifeline_release
from truepar.lifeline import watch as lifeline_watch
from truepar.tools.base import ToolContext

_READ_CHUNK = 1 << 16

#: Process groups of children still running in this process, so that a worker told to stop
#: (SIGTERM from the processes backend) can kill them before it exits.
_LIVE_GROUPS: set[int] = set()
_LIVE_LOCK = threading.Lock()
#: In a ``processes`` worker, children stay in the worker's own process group, so that killing
#: the group kills the worker and everything its op started, at once.
_OWN_GROUPS = True


@functools.lru_cache(maxsize=256)
def _which(program: str, path: str) -> str | None:
    """Where ``program`` is on ``path``, looked up once: the child then execs it directly
    instead of trying each ``PATH`` folder in turn (tens of µs of failed ``execve`` a spawn).
    ``None`` (a path with a slash, or not found) leaves the search to the child, as usual."""
    if "/" in program:
        return None
    return shutil.which(program, path=path)


class Capture:
    """Bytes of one stream, kept up to a cap and counted beyond it.

    With ``tail_bytes``, the stream's last bytes are kept too, past the cap: an agent's final
    line (its JSON result) must survive a chatty run that filled the cap long before.
    """

    __slots__ = ("cap", "chunks", "kept", "tail", "tail_bytes", "total")

    def __init__(self, cap: int, tail_bytes: int = 0) -> None:
        self.cap = cap
        self.chunks: list[bytes] = []
        self.kept = 0
        self.total = 0
        self.tail_bytes = tail_bytes
        self.tail = b""

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.cap - self.kept
        if room > 0:
            piece = data[:room]
            self.chunks.append(piece)
            self.kept += len(piece)
        if self.tail_bytes:
            self.tail = (self.tail + data)[-self.tail_bytes :]

    @property
    def truncated(self) -> bool:
        return self.total > self.kept

    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", "replace")

    def last_line(self) -> str:
        """The last non-blank line of the stream (from the tail when one is kept)."""
        data = self.tail if self.tail_bytes else b"".join(self.chunks)
        for line in reversed(data.decode("utf-8", "replace").splitlines()):
            if line.strip():
                return line.strip()
        return ""


class Child:
    """A spawned command: its process, pipes and captures. Shared by the sync and async waits.

    ``env`` is the whole environment (``None`` inherits this process's without copying it);
    ``cwd`` is relative to the root and confined to it; ``display`` names the command in errors.
    """

    def __init__(
        self,
        ctx: ToolContext,
        args: Sequence[str],
        *,
        display: str,
        cwd: str = ".",
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        max_output_bytes: int,
        tail_bytes: int = 0,
    ) -> None:
        resolved = ctx.resolve(cwd)
        if not resolved.is_dir():
            raise OpError(f"cwd {cwd!r} is not a directory")
        try:
            self.proc = subprocess.Popen(
                list(args),
                executable=_which(args[0], (env or os.environ).get("PATH", os.defpath)),
                cwd=resolved,
                env=env,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                process_group=0 if _OWN_GROUPS else None,
            )
        except OSError as exc:
            raise OpError(f"cannot start {display!r}: {exc.strerror or exc}") from exc
        self.pid = self.proc.pid
        with _LIVE_LOCK:
            _LIVE_GROUPS.add(self.pid)
        if _OWN_GROUPS:  # in a worker, the child is in the worker's group, which is watched
            lifeline_watch(self.pid)
        self.out = Capture(max_output_bytes, tail_bytes)
        self.err = Capture(max_output_bytes)
        self.stdin_data = stdin or b""
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
            if _OWN_GROUPS:
                lifeline_release(self.pid)
        if usage is not None:
            ctx.child_cpu_s += usage.ru_utime + usage.ru_stime
        code = os.waitstatus_to_exitcode(status)
        self.proc.returncode = code
        return code

    def error(self, code: int, *, check: bool) -> str | None:
        """Why the op failed, in one line: a signal always; a non-zero exit with ``check``."""
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        if code != 0 and check:
            last = self.err.text().strip().splitlines()[-1:] or [""]
            return f"exit code {code}" + (f": {last[0][:200]}" if last[0] else "")
        return None


def wait(child: Child, ctx: ToolContext) -> int:
    """Feed stdin, drain stdout and stderr until both close, reap; the exit code."""
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
    return child.reap(ctx)


async def await_child(child: Child, ctx: ToolContext) -> int:
    """:func:`wait` on the running event loop: readers for the pipes, a pidfd for the exit."""
    loop = asyncio.get_running_loop()
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

    def make_reader(fd: int, capture: Capture) -> None:
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
        rest = _write_now(proc.stdin, child.stdin_data)
        if rest:
            writer = asyncio.ensure_future(_feed(proc.stdin, rest))
        else:
            proc.stdin.close()
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
    return code


def _write_now(stream: Any, data: bytes) -> bytes:
    """Write what a child's fresh stdin pipe takes at once (a whole prompt, usually: the pipe
    holds 64 KiB); what is left, for :func:`_feed`. A child gone already takes nothing more."""
    if not data:
        return b""
    os.set_blocking(stream.fileno(), False)
    try:
        return data[os.write(stream.fileno(), data) :]
    except BlockingIOError:
        return data
    except BrokenPipeError:
        return b""


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
