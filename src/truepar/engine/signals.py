"""Signals during a run: the first Ctrl-C or SIGTERM stops it cleanly, the second at once.

Installed by :func:`truepar.engine.run.run` on the main thread only (where Python delivers
signals). The same SIGINT handler lets the loop's guard interrupt an op that holds the loop past
its deadline (see :mod:`truepar.backends.inline`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import threading
from collections.abc import Iterator
from typing import Any

from truepar.backends import Backend
from truepar.backends.inline import handle_watchdog_signal, loop_guard
from truepar.engine.scheduler import Scheduler
from truepar.errors import Terminated


class Interrupt:
    """What the signal handler needs to stop a run, and what it saw."""

    scheduler: Scheduler | None = None
    backends: tuple[Backend, ...] = ()
    hits = 0
    #: The signal that interrupted the run: ``"SIGINT"`` or ``"SIGTERM"``.
    signal_name: str | None = None


#: How a run stopped by each signal says so (the ``not run: ...`` of the ops it cancelled).
_REASONS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "terminated (SIGTERM)"}


@contextlib.contextmanager
def interrupts(loop: asyncio.AbstractEventLoop) -> Iterator[Interrupt]:
    """First Ctrl-C or SIGTERM: cancel the run cleanly (the trace says which signal). Second:
    ``KeyboardInterrupt`` (``Terminated`` for SIGTERM) now.

    The same SIGINT handler lets the loop's guard interrupt an op that holds the loop past its
    deadline (see :mod:`truepar.backends.inline`): only on the main thread, where signals go.
    """
    state = Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    guard = loop_guard()

    def on_signal(signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and handle_watchdog_signal(guard):
            return  # the guard's own signal, for an op that already gave the loop back
        state.hits += 1
        if state.hits > 1 or state.scheduler is None:
            raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        state.signal_name = signal.Signals(signum).name
        sched = state.scheduler
        for backend in state.backends:  # now, even if the loop is busy inside an inline op
            backend.interrupt()
        guard.stop_holder()  # an op holding the loop: asked now, interrupted if it ignores it
        reason = _REASONS[signal.Signals(signum)]
        loop.call_soon_threadsafe(functools.partial(sched.stop, reason, interrupted=True))

    previous = {sig: signal.signal(sig, on_signal) for sig in _REASONS}
    guard.can_interrupt = True
    try:
        yield state
    finally:
        guard.can_interrupt = False
        for sig, handler in previous.items():
            signal.signal(sig, handler)
