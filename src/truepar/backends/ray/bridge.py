"""Ray's futures on the event loop: a result Ray delivers on its own threads, handed to the
scheduler's loop — without letting the loop's cancellation reach back into Ray."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from typing import Any


def watch(
    loop: asyncio.AbstractEventLoop, source: concurrent.futures.Future[Any]
) -> asyncio.Future[Any]:
    """``source``'s result on ``loop``. Unlike ``asyncio.wrap_future``, cancelling what is
    returned leaves ``source`` alone: an actor's ``ready`` is shared by every run."""
    fut: asyncio.Future[Any] = loop.create_future()

    def copy(done: concurrent.futures.Future[Any]) -> None:
        if fut.done():
            return
        if done.cancelled():
            fut.cancel()
        elif (exc := done.exception()) is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(done.result())

    def on_done(done: concurrent.futures.Future[Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(copy, done)

    source.add_done_callback(on_done)
    return fut


def on_loop(
    loop: asyncio.AbstractEventLoop,
    source: concurrent.futures.Future[Any],
    callback: Any,
    *args: Any,
) -> None:
    """Call ``callback(*args, source)`` on ``loop`` once ``source`` is done (Ray calls its
    futures' callbacks on its own threads)."""

    def on_done(done: concurrent.futures.Future[Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: the run is over
            loop.call_soon_threadsafe(callback, *args, done)

    source.add_done_callback(on_done)


def in_thread(loop: asyncio.AbstractEventLoop, fn: Any, *args: Any) -> asyncio.Future[Any]:
    """``fn(*args)`` on a daemon thread, its result on ``loop``: for Ray calls that wait on the
    cluster's head (``ray.nodes()``), which would block the loop — and with it the run, and
    the watchdog that notices a lost head — for as long as Ray keeps retrying. A daemon, so a
    call still stuck when the process ends does not hold it up."""
    fut: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, exc: BaseException | None) -> None:
        if fut.done():
            return
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(result)

    def work() -> None:
        try:
            result, exc = fn(*args), None
        except BaseException as e:  # handed to the loop, whatever it is
            result, exc = None, e
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(settle, result, exc)

    threading.Thread(target=work, name="truepar-ray-call", daemon=True).start()
    return fut
