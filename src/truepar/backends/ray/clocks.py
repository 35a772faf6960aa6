"""One timeline across nodes: each node's monotonic clock against the driver's.

A span's times are read on the node that ran it, on that node's ``CLOCK_MONOTONIC``, which on
another machine counts from another boot. So at start truepar asks one actor per node for its
clock a few times (a control call, answered at once) and keeps the round trip with the smallest
delay: the remote reading happened somewhere inside it, so ``offset = remote − midpoint`` is
off by at most half that round trip, its uncertainty (NTP's reasoning, one hop). Spans are
moved by ``−offset`` onto the driver's clock, then held inside what the driver saw — an op
cannot start before its chunk was sent or end after its result came back — and the trace says
how far any span had to be moved that way.

A node on this machine (the same kernel boot id) shares the driver's clock exactly: its offset
is 0 with no uncertainty, and the measured one is kept only as a check.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class NodeClock:
    """A node's clock against the driver's, and how spans were fitted to it."""

    node: str
    #: Added to the driver's clock to read the node's (subtracted from the node's times).
    offset_ns: int
    #: The offset is right to within this (half the best round trip; 0 on a shared clock).
    uncertainty_ns: int
    #: ``shared``: the same kernel's clock (offset 0 by construction); ``round-trip``: measured.
    method: str
    measured_offset_ns: int
    best_rtt_ns: int
    rounds: int
    #: The most any span of this node was moved to fit inside what the driver saw.
    max_clamp_ns: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "offset_ns": self.offset_ns,
            "uncertainty_ns": self.uncertainty_ns,
            "method": self.method,
            "measured_offset_ns": self.measured_offset_ns,
            "best_rtt_ns": self.best_rtt_ns,
            "rounds": self.rounds,
            "max_clamp_ns": self.max_clamp_ns,
        }


def estimate(node: str, samples: list[tuple[int, int, int]], *, shared: bool) -> NodeClock:
    """The offset from ``(sent_ns, remote_ns, received_ns)`` round trips (at least one)."""
    if not samples:
        raise ValueError("a clock offset needs at least one round trip")
    sent, remote, received = min(samples, key=lambda s: s[2] - s[0])
    rtt = received - sent
    measured = remote - (sent + received) // 2
    if shared:
        return NodeClock(node, 0, 0, "shared", measured, rtt, len(samples))
    return NodeClock(node, measured, (rtt + 1) // 2, "round-trip", measured, rtt, len(samples))


def fit(
    clock: NodeClock | None, start_ns: int, end_ns: int, lo_ns: int, hi_ns: int
) -> tuple[int, int]:
    """A span's node times on the driver's clock, held inside ``[lo_ns, hi_ns]`` (sent …
    received); records on ``clock`` how far it had to be moved."""
    offset = clock.offset_ns if clock is not None else 0
    start, end = start_ns - offset, end_ns - offset
    fitted_start = min(max(start, lo_ns), hi_ns)
    fitted_end = min(max(end, fitted_start), hi_ns)
    if clock is not None:
        moved = max(abs(fitted_start - start), abs(fitted_end - end))
        clock.max_clamp_ns = max(clock.max_clamp_ns, moved)
    return fitted_start, fitted_end
