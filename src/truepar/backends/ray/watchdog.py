"""Notice a lost cluster while a run waits on it, instead of hanging.

When a cluster's head dies, nothing tells the driver: the actors' deaths would be reported by
the head itself, so the run's chunks simply never come back, and about a minute later Ray's core
worker ends the whole process with a line in its log and no trace written. So while a run is in
flight, the backend knocks on the head's door (a TCP connection to its GCS port, every
:data:`PROBE_S`); once it has not answered for :data:`LOST_AFTER_S`, the cluster counts as lost
and every op still waiting on it fails with one clear error — well inside Ray's minute, so the
run ends, and its trace is written, before Ray gives up on the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

#: Seconds between knocks on the head's GCS port.
PROBE_S = 1.0
#: How long the head may not answer before the cluster counts as lost (Ray itself ends the
#: driver after 60 s; a head restarting with fault tolerance is back well within this).
LOST_AFTER_S = 10.0


def gcs_address() -> tuple[str, int] | None:
    """The head's GCS host and port, as this connected process knows it; ``None``: unknown
    (Ray Client, where the head is behind the client server)."""
    import ray  # noqa: PLC0415 - connected by now

    try:
        address = str(ray.get_runtime_context().gcs_address)
    except Exception:  # Ray Client, or an older Ray
        return None
    host, sep, port = address.rpartition(":")
    return (host, int(port)) if sep and port.isdigit() else None


class Watchdog:
    """Knocks on ``address`` while started; calls ``lost(why)`` once it stops answering."""

    def __init__(self, address: tuple[str, int], lost: Callable[[str], None]) -> None:
        self.address = address
        self._lost = lost
        self._task: asyncio.Task[None] | None = None
        #: Why the last knock went unanswered; ``None`` while the head answers.
        self.down: str | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    def says(self) -> str:
        """A clause for an error while the head does not answer: the likely cause."""
        host, port = self.address
        return f"; the cluster's head ({host}:{port}) is not answering either" if self.down else ""

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _watch(self) -> None:
        host, port = self.address
        down_since: float | None = None
        while True:
            await asyncio.sleep(PROBE_S)
            why = self.down = await knock(host, port)
            if why is None:
                down_since = None
                continue
            now = time.monotonic()
            down_since = down_since if down_since is not None else now
            if now - down_since >= LOST_AFTER_S:
                self._lost(
                    f"backend 'ray': lost the Ray cluster: its head ({host}:{port}) has not "
                    f"answered for {LOST_AFTER_S:g} s ({why})"
                )
                return


async def knock(host: str, port: int) -> str | None:
    """``None`` when ``host:port`` accepts a connection within :data:`PROBE_S`; else why not."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), PROBE_S)
    except (OSError, TimeoutError) as exc:
        return str(exc) or type(exc).__name__
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None
