"""The loop a ``processes`` worker runs: receive a call, run it, send the outcome back.

Imported by the fork server ahead of time (``set_forkserver_preload``), so a new worker starts
with truepar and its tools already imported. Each reply ends with the worker's cumulative CPU
seconds (its own and its reaped subprocesses'), which is how the parent counts worker CPU.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import resource
import signal
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


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    bash.kill_all_children()
    os._exit(128 + signal.SIGTERM)


def main(conn: Connection, worker_id: int) -> None:
    # Ctrl-C in a terminal reaches the whole process group; the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    bash.become_worker()
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
