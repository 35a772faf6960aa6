"""What a session's calls say about the client: what overlapped, and what could have.

The server sees when each call arrived and when it finished, and what paths it read and wrote.
From that alone:

* **rounds** — a call sent while another was still in flight joins that one's round; a call sent
  when nothing was in flight starts a new one (the client waited for every answer before it).
  A call arriving within :data:`TOGETHER_S` of the last answer still joins the round: clients
  write the calls of one message to the pipe one after another, and a fast call can be answered
  before the next one is read — while no model answers a result in 50 ms;
* **overlap** — how many calls overlapped another, the most in flight at once, and the client's
  average concurrency while at least one call was in flight;
* **missed parallelism** — rounds sent one after another whose calls have no read/write conflict
  (a path one writes that another reads or writes, as the plan graph orders them). Batching such
  rounds would have taken about as long as their longest call instead of the sum of the rounds:
  the difference is what it would *at most* have saved. An upper bound: the server cannot know
  whether the model needed one call's result to choose the next.

Pure functions of plain records, so ``truepar mcp report`` recomputes them from the evidence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from truepar.plan.graph import keys_overlap
from truepar.units import fmt_s

#: Calls arriving this soon after the last answer count as sent together (see above).
TOGETHER_S = 0.05
#: What every missed-parallelism figure is: said wherever one is shown.
UPPER_BOUND_NOTE = (
    "an upper bound: the server cannot know whether the model needed one call's result "
    "to choose the next"
)


@dataclasses.dataclass(frozen=True, slots=True)
class Call:
    """One call as the analysis sees it: when (seconds from the session's start), what paths.

    ``reads``/``writes`` are path keys (see :func:`truepar.plan.graph.path_key`); ``writes``
    of ``("",)`` — the whole root — for a call that may change anything (a shell command).
    """

    n: int
    tool: str
    received_s: float
    finished_s: float
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()

    @property
    def took_s(self) -> float:
        return max(0.0, self.finished_s - self.received_s)

    def conflicts(self, other: Call) -> bool:
        """One writes a path the other reads or writes (the same path, or one inside another)."""
        return _touches(self.writes, other.reads + other.writes) or _touches(
            other.writes, self.reads
        )

    @classmethod
    def from_json(cls, raw: Mapping[str, Any], end_s: float) -> Call:
        """From a session's recorded call; one still running is taken to end at ``end_s``."""
        finished = raw.get("finished_s")
        return cls(
            n=int(raw["n"]),
            tool=str(raw["tool"]),
            received_s=float(raw["received_s"]),
            finished_s=float(finished) if finished is not None else end_s,
            reads=tuple(str(p) for p in raw.get("reads", ())),
            writes=tuple(str(p) for p in raw.get("writes", ())),
        )


def _touches(writes: Sequence[str], others: Sequence[str]) -> bool:
    return any(keys_overlap(w, o) for w in writes for o in others)


@dataclasses.dataclass(frozen=True, slots=True)
class Missed:
    """Rounds sent one after another with no conflict between any of their calls."""

    calls: tuple[int, ...]
    tools: tuple[str, ...]
    rounds: int
    #: What the rounds took, each from its first call's arrival to its last call's end.
    took_s: float
    #: Their longest call: about what the calls would have taken sent at once.
    longest_s: float

    @property
    def saved_s(self) -> float:
        """At most this much wall time batching them would have saved."""
        return max(0.0, self.took_s - self.longest_s)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["calls"], d["tools"] = list(self.calls), list(self.tools)
        d["saved_s"] = self.saved_s
        return d


@dataclasses.dataclass(frozen=True, slots=True)
class SessionSummary:
    calls: int
    rounds: int
    #: Calls that overlapped at least one other call.
    overlapped: int
    #: The most calls in flight at once.
    peak: int
    #: Time with at least one call in flight.
    busy_s: float
    #: Σ call time (arrival to end).
    call_s: float
    missed: tuple[Missed, ...]

    @property
    def avg_concurrency(self) -> float:
        """The client's calls in flight on average while any was: Σ call time / busy time."""
        return self.call_s / self.busy_s if self.busy_s > 0 else 0.0

    @property
    def missed_saved_s(self) -> float:
        return sum(m.saved_s for m in self.missed)

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "rounds": self.rounds,
            "overlapped": self.overlapped,
            "peak": self.peak,
            "busy_s": self.busy_s,
            "call_s": self.call_s,
            "avg_concurrency": self.avg_concurrency,
            "missed": [m.to_json() for m in self.missed],
            "missed_saved_s": self.missed_saved_s,
            "missed_note": UPPER_BOUND_NOTE,
        }

    def lines(self) -> list[str]:
        """The summary in words, one finding per line (what the ``session`` tool returns)."""
        if not self.calls:
            return ["no calls yet"]
        out = [
            f"{self.calls} calls in {self.rounds} rounds; {self.overlapped} overlapped another; "
            f"peak {self.peak} at once; average {self.avg_concurrency:.2f} in flight while busy "
            f"({fmt_s(self.busy_s)} busy)"
        ]
        if not self.missed:
            out.append("missed parallelism: none (no conflict-free calls were sent one by one)")
            return out
        out.append(
            f"missed parallelism: {len(self.missed)} run(s) of calls sent one after another had "
            f"no read/write conflict; batching them would have saved at most "
            f"{fmt_s(self.missed_saved_s)} ({UPPER_BOUND_NOTE})"
        )
        for m in self.missed:
            out.append(
                f"  calls {_numbers(m.calls)} ({_tools(m.tools)}): {m.rounds} rounds took "
                f"{fmt_s(m.took_s)}, longest call {fmt_s(m.longest_s)}: "
                f"up to {fmt_s(m.saved_s)} saved"
            )
        return out


def _numbers(ns: Sequence[int]) -> str:
    if len(ns) > 2 and list(ns) == list(range(ns[0], ns[0] + len(ns))):
        return f"{ns[0]}-{ns[-1]}"
    return ", ".join(str(n) for n in ns)


def _tools(tools: Sequence[str]) -> str:
    counts: dict[str, int] = {}
    for t in tools:
        counts[t] = counts.get(t, 0) + 1
    return ", ".join(t if k == 1 else f"{k}× {t}" for t, k in counts.items())


def rounds_of(calls: Iterable[Call], together_s: float = TOGETHER_S) -> list[list[Call]]:
    """Calls grouped as the client sent them: a call that arrived while an earlier one was in
    flight (or within ``together_s`` of its end) joins its round; one that arrived with nothing
    in flight starts a new round."""
    rounds: list[list[Call]] = []
    busy_until = float("-inf")
    for call in sorted(calls, key=lambda c: (c.received_s, c.n)):
        if rounds and call.received_s < busy_until + together_s:
            rounds[-1].append(call)
        else:
            rounds.append([call])
        busy_until = max(busy_until, call.finished_s)
    return rounds


def summarize(calls: Sequence[Call]) -> SessionSummary:
    """Overlap and missed parallelism of a session's calls (see the module's words)."""
    rounds = rounds_of(calls)
    overlapped = _overlapped(calls)
    busy = sum(max(c.finished_s for c in r) - r[0].received_s for r in rounds)
    return SessionSummary(
        calls=len(calls),
        rounds=len(rounds),
        overlapped=overlapped,
        peak=_peak(calls),
        busy_s=busy,
        call_s=sum(c.took_s for c in calls),
        missed=tuple(_missed(rounds)),
    )


def _overlapped(calls: Sequence[Call]) -> int:
    """Calls whose time overlapped another call's: in arrival order, one overlaps when an
    earlier call was still in flight at its arrival, or the next arrived before it ended."""
    ordered = sorted(calls, key=lambda c: (c.received_s, c.n))
    count, latest_end = 0, float("-inf")
    for i, c in enumerate(ordered):
        after = ordered[i + 1] if i + 1 < len(ordered) else None
        if latest_end > c.received_s or (after is not None and after.received_s < c.finished_s):
            count += 1
        latest_end = max(latest_end, c.finished_s)
    return count


def _peak(calls: Sequence[Call]) -> int:
    events = sorted(
        [(c.received_s, 1) for c in calls] + [(c.finished_s, -1) for c in calls],
        key=lambda e: (e[0], e[1]),  # an end before a start at the same instant
    )
    peak = now = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def _missed(rounds: Sequence[Sequence[Call]]) -> Iterable[Missed]:
    group: list[Sequence[Call]] = []
    for r in rounds:
        members = [c for g in group for c in g]
        if group and not any(a.conflicts(b) for a in r for b in members):
            group.append(r)
            continue
        if len(group) > 1:
            yield _as_missed(group)
        group = [r]
    if len(group) > 1:
        yield _as_missed(group)


def _as_missed(group: Sequence[Sequence[Call]]) -> Missed:
    calls = [c for r in group for c in r]
    return Missed(
        calls=tuple(c.n for c in calls),
        tools=tuple(c.tool for c in calls),
        rounds=len(group),
        took_s=sum(max(c.finished_s for c in r) - r[0].received_s for r in group),
        longest_s=max(c.took_s for c in calls),
    )
