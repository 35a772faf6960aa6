"""The session analysis: rounds, overlap, missed parallelism — exact, on made-up calls."""

from __future__ import annotations

import pytest

from truepar.mcp.analysis import UPPER_BOUND_NOTE, Call, rounds_of, summarize


def call(n: int, at: float, end: float, *, tool: str = "read", **paths: tuple[str, ...]) -> Call:
    return Call(n=n, tool=tool, received_s=at, finished_s=end, **paths)


def test_calls_sent_together_are_one_round_and_overlap() -> None:
    calls = [call(1, 0.0, 1.0), call(2, 0.1, 0.6), call(3, 0.2, 0.5), call(4, 2.0, 2.5)]
    summary = summarize(calls)
    assert [[c.n for c in r] for r in rounds_of(calls)] == [[1, 2, 3], [4]]
    assert summary.rounds == 2
    assert summary.overlapped == 3
    assert summary.peak == 3
    assert summary.busy_s == pytest.approx(1.5)
    assert summary.avg_concurrency == pytest.approx((1.0 + 0.5 + 0.3 + 0.5) / 1.5)


def test_independent_calls_sent_one_by_one_are_missed_parallelism() -> None:
    calls = [
        call(1, 0.0, 0.4, reads=("a.py",)),
        call(2, 1.0, 1.3, reads=("b.py",)),
        call(3, 2.0, 2.2, tool="grep", reads=("",)),
    ]
    summary = summarize(calls)
    assert summary.overlapped == 0
    assert len(summary.missed) == 1
    missed = summary.missed[0]
    assert missed.calls == (1, 2, 3)
    assert missed.took_s == pytest.approx(0.4 + 0.3 + 0.2)
    assert missed.longest_s == pytest.approx(0.4)
    assert summary.missed_saved_s == pytest.approx(0.5)
    text = "\n".join(summary.lines())
    assert "calls 1-3 (2× read, grep)" in text
    assert UPPER_BOUND_NOTE in text


def test_a_writer_splits_the_runs_it_conflicts_with() -> None:
    calls = [
        call(1, 0.0, 0.5, reads=("src/a.py",)),
        call(2, 1.0, 1.5, tool="bash", writes=("src",)),  # writes what call 1 read
        call(3, 2.0, 2.5, reads=("docs/x.md",)),  # no conflict with call 2
        call(4, 3.0, 3.5, reads=("src/a.py",)),  # reads what call 2 wrote
    ]
    summary = summarize(calls)
    assert [m.calls for m in summary.missed] == [(2, 3)]
    assert summary.missed[0].saved_s == pytest.approx(0.5)


def test_a_command_that_may_change_anything_conflicts_with_every_path() -> None:
    everything = call(2, 1.0, 1.5, tool="bash", writes=("",))
    assert everything.conflicts(call(1, 0, 0.5, reads=("deep/in/a/tree.txt",)))
    assert not everything.conflicts(call(3, 2, 2.5, tool="http"))  # no paths at all


def test_no_calls_and_calls_that_all_overlap_have_nothing_missed() -> None:
    assert summarize([]).lines() == ["no calls yet"]
    together = summarize([call(1, 0, 1), call(2, 0, 1)])
    assert not together.missed
    assert together.peak == 2
    assert "missed parallelism: none" in "\n".join(together.lines())


def test_a_call_arriving_just_after_an_answer_was_sent_with_it() -> None:
    # The calls of one message reach the server one after another; a fast one can be answered
    # before the next is read. No model answers in 50 ms: it is the same round, not a miss.
    calls = [call(1, 0.0, 0.002), call(2, 0.003, 0.5), call(3, 1.0, 1.2)]
    summary = summarize(calls)
    assert [[c.n for c in r] for r in rounds_of(calls)] == [[1, 2], [3]]
    assert summary.overlapped == 0 and summary.peak == 1  # their times did not overlap
    assert [m.calls for m in summary.missed] == [(1, 2, 3)]
    assert rounds_of(calls, together_s=0.0) == [[c] for c in calls]


def test_summary_round_trips_through_recorded_json() -> None:
    raw = {"n": 7, "tool": "ls", "received_s": 0.5, "finished_s": None, "reads": ["x"]}
    again = Call.from_json(raw, end_s=3.0)
    assert again == Call(7, "ls", 0.5, 3.0, reads=("x",))
    as_json = summarize([again]).to_json()
    assert as_json["calls"] == 1 and as_json["missed"] == []
