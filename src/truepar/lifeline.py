"""Everything truepar starts dies with it, even when truepar itself is killed with SIGKILL.

A process killed by SIGKILL or the out-of-memory killer runs no clean-up code, so the process
groups it started (the subprocesses of ``bash`` and ``agent`` ops, the ``processes`` backend's
workers) would run on as orphans. So the first time a process of ours starts one, it also
starts a *watchdog*: a tiny Python process in its own session that learns on a pipe which groups
are live (``+PGID`` when one starts, ``-PGID`` once it is reaped). When the pipe closes — the
kernel closes it whatever killed us — or its parent's pid changes, the watchdog SIGKILLs every
group still live and exits. A normal exit ends it the same way, with nothing left to kill.

The pipe must have a single writer for its end-of-file to mean "truepar died": the fd is not
inherited across ``exec`` (Python's default), and a process forked from ours without ``exec``
(a ``processes`` worker, a user's ``multiprocessing``) closes its copy at once
(``os.register_at_fork``); such a child is covered by its own group's registration instead.

Starting the watchdog costs one ``posix_spawn`` (about a millisecond here); its Python starts
in the background while the op that caused it goes on. Each registration is one ``write`` of a
few bytes. Linux and other POSIX systems; elsewhere, nothing is watched.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

#: The watchdog's program: stdlib only, no site packages (``-I -S``), so it starts fast.
_WATCHDOG = r"""
import os, select, signal, sys
def stop(signum, frame):
    raise SystemExit
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, stop)
parent = int(sys.argv[1])
groups = set()
rest = b""
try:
    while True:
        ready, _, _ = select.select([0], [], [], 1.0)
        if not ready:
            if os.getppid() != parent:
                break
            continue
        data = os.read(0, 65536)
        if not data:
            break
        *lines, rest = (rest + data).split(b"\n")
        for line in lines:
            if line[:1] == b"+":
                groups.add(int(line[1:]))
            elif line[:1] == b"-":
                groups.discard(int(line[1:]))
finally:
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
"""
_lock = threading.Lock()
#: The write end of the pipe to this process's watchdog, and the pid that owns it.
_fd: int | None = None
_owner = 0
_pid: int | None = None


def _start() -> int | None:
    global _fd, _owner, _pid
    # A bare pipe and posix_spawn rather than Popen: the write end is a bare fd, which a forked
    # child can close without a file object that would close the same number again later, and
    # no Popen object is left to warn at exit that its (deliberately immortal) child still runs.
    read_end, write_end = os.pipe()
    try:
        pid = os.posix_spawn(
            sys.executable,
            [sys.executable, "-I", "-S", "-c", _WATCHDOG, str(os.getpid())],
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, read_end, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
            ],
            setsid=True,  # Ctrl-C at a terminal and a killpg of ours do not reach it
        )
    except (OSError, AttributeError):
        os.close(write_end)
        return None  # no watchdog: the op still runs; only SIGKILL clean-up is lost
    finally:
        os.close(read_end)
    _pid, _fd, _owner = pid, write_end, os.getpid()
    return _fd


def _send(line: bytes) -> None:
    with _lock:
        fd = _fd if _owner == os.getpid() else None
        if fd is None:
            if line[:1] != b"+":
                return
            fd = _start()
            if fd is None:
                return
        with contextlib.suppress(OSError):
            os.write(fd, line)


def watch(pgid: int) -> None:
    """Kill process group ``pgid`` if this process dies before :func:`release` is called."""
    if os.name == "posix":
        _send(b"+%d\n" % pgid)


def release(pgid: int) -> None:
    """Group ``pgid`` is gone (reaped): the watchdog forgets it."""
    if os.name == "posix":
        _send(b"-%d\n" % pgid)


def watchdog_pid() -> int | None:
    """This process's watchdog, if it has one (for tests and diagnostics)."""
    with _lock:
        return _pid if _owner == os.getpid() else None


def _forget_in_child() -> None:
    """In a child forked without ``exec``: drop the parent's pipe, so only the parent writes it.

    Runs right after the fork, when the child has a single thread: no lock is needed (and the
    parent's lock may have been held by another thread at the fork).
    """
    global _fd, _owner, _pid, _lock
    if _fd is not None:
        with contextlib.suppress(OSError):
            os.close(_fd)
    _fd, _owner, _pid, _lock = None, 0, None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
