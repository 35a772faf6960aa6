"""The loop a ``processes`` worker runs: receive a call, run it, send the outcome back.

Imported by the fork server ahead of time (``set_forkserver_preload``), so a new worker starts
with truepar and its tools already imported. Each reply ends with the worker's cumulative CPU
seconds (its own and its reaped subprocesses'), which is how the parent counts worker CPU.

A worker never outlives the process that started it: it asks the kernel for SIGTERM when its
parent dies (``PR_SET_PDEATHSIG``; for a fork server's worker, the fork server, which exits with
truepar), and on SIGTERM kills its whole process group — itself and every subprocess its op
started — at once. The parent's watchdog (:mod:`truepar.lifeline`) kills the group too.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import pickle
import resource
import signal
import sys
import time
from multiprocessing.connection import Connection
from types import FrameType

from truepar.backends.base import OpCall, Outcome
from truepar.backends.invoke import describe_error, invoke
from truepar.records import Status
from truepar.tools import bash
from truepar.tools.base import ToolContext


def cumulative_cpu_s() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


#: ``prctl(PR_SET_PDEATHSIG, ...)``: Linux's "signal me when my parent dies".
_PR_SET_PDEATHSIG = 1


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    # The worker leads its group, and its op's subprocesses stay in it: one kill ends them all.
    with contextlib.suppress(OSError):
        os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(128 + signal.SIGTERM)


def die_with_parent(parent_pid: int | None) -> None:
    """SIGTERM this process when its parent dies; exit now if that already happened.

    ``parent_pid`` is the parent's pid when known (a forked worker), to close the race of a
    parent dying before the request was made; a fork server's worker passes ``None``.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        _on_sigterm(signal.SIGTERM, None)


def main(conn: Connection, worker_id: int, parent_pid: int | None = None) -> None:
    # Ctrl-C in a terminal reaches the whole process group; the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    bash.become_worker()
    die_with_parent(parent_pid)
    conn.send_bytes(pickle.dumps(("ready", cumulative_cpu_s())))
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        call = pickle.loads(data)
        if call is None:
            return
        assert isinstance(call, OpCall)
        ctx = ToolContext(call.root, call.plan_dir)
        outcome = invoke(call, ctx, worker_id, cpu_clock=time.process_time_ns)
        conn.send_bytes(_reply(outcome))


def _reply(outcome: Outcome) -> bytes:
    try:
        return pickle.dumps(("done", outcome, cumulative_cpu_s()))
    except Exception as exc:  # the op's value cannot travel back
        failed = dataclasses.replace(
            outcome,
            status=Status.FAILED,
            value=None,
            error=f"the op's result cannot be pickled back to the parent: {describe_error(exc)}",
        )
        return pickle.dumps(("done", failed, cumulative_cpu_s()))
