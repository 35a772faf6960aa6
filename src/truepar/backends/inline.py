"""Ops that run on the event loop's own thread: stop them when they will not stop, and know
how long they held the loop.

Two backends run code on the loop's thread: ``sequential`` (every op, inline) and ``async``
(each step of a coroutine, and a plain sync function called from one runs to its end). While
such code runs the loop is blocked: no timer fires, so neither the op's deadline nor Ctrl-C can
reach it through the loop. Two things follow, both handled here.

**Stopping it.** A :class:`LoopGuard` knows which op holds the loop now (:meth:`~LoopGuard.enter`
/ :meth:`~LoopGuard.leave`, a few attribute writes) and its deadline. A watchdog thread, started
the first time a deadline is set, asks the op to stop at its deadline (its context's cancel: a
subprocess is killed, a sleep wakes) and, if it still holds the loop ``GRACE_S`` later, has the
op interrupted: the run's signal handler (installed by the engine on the main thread, see
:meth:`LoopGuard.interrupt_pending`) raises :class:`OpInterrupted` inside it — the way a
blocking ``read`` or ``time.sleep`` is interrupted by Ctrl-C, from the same signal. Ctrl-C does
the same without a deadline: the op is asked, then interrupted after the grace period. Off the
main thread no signal can reach the loop's thread: the op runs to its end, and its span says so.

**Not blaming others.** An op whose deadline timer fires late because another op held the loop
has not had its time. The guard records every stretch longer than ``BLOCK_NS`` that an op held
the loop (:meth:`~LoopGuard.blocked_ns`), so the scheduler can give the others back the time
they were kept from running.
"""

from __future__ import annotations

import collections
import dataclasses
import signal
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from truepar.tools.base import ToolContext

#: How long an op asked to stop (deadline, Ctrl-C) may take before it is interrupted.
GRACE_S = 0.5
#: Holding the loop longer than this counts as blocking it (1 ms: far above a normal step).
BLOCK_NS = 1_000_000
#: How often the watchdog looks at the op holding the loop while a deadline is near.
_POLL_S = 0.01
#: An idle watchdog thread ends after this long; the next deadline starts a new one.
_IDLE_S = 5.0


class OpInterrupted(BaseException):
    """Raised inside an op holding the loop's thread that did not stop when asked.

    A ``BaseException`` (as ``KeyboardInterrupt`` is) so that the op's own ``except
    Exception`` does not swallow it. ``reason``: ``"timeout"`` or ``"interrupted"``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass(slots=True)
class _Holder:
    """The op holding the loop now: its attempt, context, deadline and since when."""

    call: object
    ctx: ToolContext | None
    deadline_ns: int | None
    since_ns: int
    #: When the watchdog asked it to stop (set once); it is interrupted GRACE_S later.
    asked_ns: int | None = None
    #: Why it is being stopped: "timeout" or "interrupted".
    reason: str = "timeout"


class LoopGuard:
    """One per loop thread (see :func:`loop_guard`): who holds the loop, and for how long."""

    def __init__(self) -> None:
        self._holder: _Holder | None = None
        self._thread_id = threading.get_ident()
        #: (start, end, call) of each stretch an op held the loop longer than BLOCK_NS.
        self._blocks: collections.deque[tuple[int, int, object]] = collections.deque(maxlen=4096)
        #: True while the engine's signal handler is installed on this (the main) thread:
        #: only then can the watchdog interrupt the op.
        self.can_interrupt = False
        #: The holder the watchdog signalled to interrupt; consumed by the signal handler.
        self._pending: _Holder | None = None
        self._wake = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._watchdog_lock = threading.Lock()
        self._closing = False

    # -- the loop's thread ------------------------------------------------------------------

    def enter(self, call: object, ctx: ToolContext | None, deadline_ns: int | None) -> None:
        """``call`` holds the loop from now; stop it at ``deadline_ns`` (monotonic) if set."""
        self._holder = _Holder(call, ctx, deadline_ns, time.monotonic_ns())
        if deadline_ns is not None:
            self._arm()

    def leave(self) -> str | None:
        """The op gave the loop back (returned, awaited, or raised). Idempotent.

        Returns why it was asked to stop while it held the loop (``"timeout"`` or
        ``"interrupted"``), or ``None`` if it was not.
        """
        holder, self._holder = self._holder, None
        if holder is None:
            return None
        end = time.monotonic_ns()
        if end - holder.since_ns > BLOCK_NS:
            self._blocks.append((holder.since_ns, end, holder.call))
        return holder.reason if holder.asked_ns is not None else None

    def stop_holder(self) -> bool:
        """Ctrl-C: ask the op holding the loop to stop, and interrupt it after ``GRACE_S``.

        Called from the signal handler, on this thread. True if an op holds the loop.
        """
        holder = self._holder
        if holder is None:
            return False
        holder.reason = "interrupted"
        holder.deadline_ns = time.monotonic_ns()
        self._ask(holder)
        self._arm()
        return True

    def interrupt_pending(self) -> None:
        """Called first by the engine's SIGINT handler: if the watchdog sent this signal to
        stop the op holding the loop, raise :class:`OpInterrupted` in it (and nothing else)."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        if pending is self._holder:
            raise OpInterrupted(pending.reason)
        raise _Stale  # the op gave the loop back meanwhile: the signal means nothing

    def blocked_ns(self, start_ns: int, end_ns: int, *, other_than: object) -> int:
        """How long ops other than ``other_than`` held the loop between the two instants."""
        total = 0
        for b0, b1, call in self._blocks:
            if call is not other_than and b1 > start_ns and b0 < end_ns:
                total += min(b1, end_ns) - max(b0, start_ns)
        return total

    def shutdown(self) -> None:
        """End the watchdog thread now (the run is over): a process left with a stray thread
        can no longer fork its process workers safely (see the processes backend)."""
        with self._watchdog_lock:
            thread, self._closing = self._watchdog, True
            self._wake.set()
        if thread is not None:
            thread.join(1.0)
        with self._watchdog_lock:
            self._closing = False
            self._watchdog = None

    # -- the watchdog -------------------------------------------------------------------------

    def _arm(self) -> None:
        with self._watchdog_lock:  # the watchdog decides to end under this lock too
            self._wake.set()
            if self._watchdog is None:
                self._watchdog = threading.Thread(
                    target=self._watch, name="truepar-loop-watchdog", daemon=True
                )
                self._watchdog.start()

    def _ask(self, holder: _Holder) -> None:
        if holder.asked_ns is None:
            holder.asked_ns = time.monotonic_ns()
            if holder.ctx is not None:
                holder.ctx.request_cancel()

    def _watch(self) -> None:
        while True:
            holder = self._holder
            if holder is None or holder.deadline_ns is None:
                self._wake.clear()
                if self._holder is holder:
                    self._wake.wait(_IDLE_S)
                with self._watchdog_lock:
                    if self._closing or (not self._wake.is_set() and self._holder is None):
                        self._watchdog = None
                        return
                continue
            now = time.monotonic_ns()
            if now < holder.deadline_ns:
                time.sleep(min((holder.deadline_ns - now) / 1e9, _POLL_S))
                continue
            self._ask(holder)
            assert holder.asked_ns is not None
            if now < holder.asked_ns + GRACE_S * 1e9:
                time.sleep(_POLL_S)
                continue
            if self.can_interrupt and self._holder is holder and self._pending is None:
                self._pending = holder
                signal.pthread_kill(self._thread_id, signal.SIGINT)
            # Once signalled, wait for it to give the loop back (or catch the interrupt).
            while self._holder is holder:
                time.sleep(_POLL_S)


class _Stale(Exception):
    """The watchdog's signal arrived after its op had returned: ignore it."""


_local = threading.local()


def loop_guard() -> LoopGuard:
    """The guard of the calling thread's loop (made on first use)."""
    guard: LoopGuard | None = getattr(_local, "guard", None)
    if guard is None:
        guard = _local.guard = LoopGuard()
    return guard


def handle_watchdog_signal(guard: LoopGuard) -> bool:
    """For the engine's SIGINT handler: True if the signal was the watchdog's (and consumed);
    raises :class:`OpInterrupted` when it is to stop the op holding the loop now."""
    try:
        guard.interrupt_pending()
    except _Stale:
        return True
    return False


def deadline_ns(started_ns: int, timeout_s: float | None) -> int | None:
    """The monotonic instant an op started at ``started_ns`` must stop by, if it has a timeout."""
    return None if timeout_s is None else started_ns + int(timeout_s * 1e9)


__all__ = (
    "BLOCK_NS",
    "GRACE_S",
    "LoopGuard",
    "OpInterrupted",
    "deadline_ns",
    "handle_watchdog_signal",
    "loop_guard",
)
