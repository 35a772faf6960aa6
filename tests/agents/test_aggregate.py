"""Combining agents' recommendations: merge, vote (with explicit ties), escalate."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truepar.agents import aggregate
from truepar.errors import BadInput

# ------------------------------------------------------------------------------ parse_output


def test_parse_output_reads_objects_lists_fences_and_bullets() -> None:
    assert aggregate.parse_output('{"db": "postgres", "n": 3}') == {"db": "postgres", "n": 3}
    assert aggregate.parse_output('["add an index", "drop the cache"]') == [
        "add an index",
        "drop the cache",
    ]
    fenced = 'Here is my answer:\n```json\n{"db": "sqlite"}\n```\nThanks.'
    assert aggregate.parse_output(fenced) == {"db": "sqlite"}
    text = "Recommendations:\n- add an index\n* cache less\n2. profile first\n\n"
    assert aggregate.parse_output(text) == [
        "Recommendations:",
        "add an index",
        "cache less",
        "profile first",
    ]


def test_text_outputs_are_parsed_and_other_shapes_refused() -> None:
    merged = aggregate.merge({"a": '{"x": 1}', "b": {"x": 1}})
    assert merged.values == {"x": 1}
    with pytest.raises(BadInput, match="agent 'c'"):
        aggregate.merge({"c": 42})
    with pytest.raises(BadInput, match="agent 'd'"):
        aggregate.vote({"d": [1, 2]})


# -------------------------------------------------------------------------------------- merge


def test_merge_combines_what_agrees_and_lists_each_conflict_with_who_said_what() -> None:
    outputs = {
        "alice": {"db": "postgres", "cache": True, "replicas": 2},
        "bob": {"db": "postgres", "cache": False},
        "carol": {"db": "postgres", "cache": False, "queue": "redis"},
    }
    merged = aggregate.merge(outputs)
    assert merged.values == {"db": "postgres", "replicas": 2, "queue": "redis"}
    assert merged.sources["db"] == ("alice", "bob", "carol")
    assert merged.sources["queue"] == ("carol",)
    assert not merged.ok
    (conflict,) = merged.conflicts
    assert conflict.key == "cache"
    assert [(p.value, p.agents) for p in conflict.positions] == [
        (False, ("bob", "carol")),
        (True, ("alice",)),
    ]
    assert conflict.silent == ()


def test_merge_compares_values_as_json() -> None:
    merged = aggregate.merge(
        {
            "a": {"cfg": {"x": 1, "y": [1, 2]}, "n": 1, "flag": True},
            "b": {"cfg": {"y": [1, 2], "x": 1}, "n": 1.0, "flag": 1},
        }
    )
    assert merged.values == {"cfg": {"x": 1, "y": [1, 2]}}  # same dict, other key order
    assert [c.key for c in merged.conflicts] == ["flag", "n"]  # true ≠ 1, 1 ≠ 1.0


def test_merge_unites_recommendation_lists() -> None:
    merged = aggregate.merge(
        {
            "a": ["Add an index", "cache less"],
            "b": ["add  an   INDEX", "profile first"],
            "c": {"db": "x"},
        }
    )
    recs = {r.text: (r.agents, r.share) for r in merged.recommendations}
    assert recs == {
        "Add an index": (("a", "b"), 1.0),
        "cache less": (("a",), 0.5),
        "profile first": (("b",), 0.5),
    }
    assert merged.values == {"db": "x"} and merged.ok


# --------------------------------------------------------------------------------------- vote


def test_vote_takes_the_majority_with_its_share_as_confidence() -> None:
    result = aggregate.vote(
        {
            "a": {"lang": "rust", "tabs": False},
            "b": {"lang": "rust", "tabs": False},
            "c": {"lang": "go", "tabs": False},
            "d": {"lang": "rust"},
        }
    )
    lang, tabs = result.decisions
    assert (lang.question, lang.winner, lang.votes, lang.total) == ("lang", "rust", 3, 4)
    assert lang.confidence == pytest.approx(0.75) and lang.majority and not lang.tie
    assert tabs.winner is False and tabs.confidence == 1.0 and tabs.abstained == ("d",)
    assert result.winners() == {"lang": "rust", "tabs": False}
    assert result.ties == ()


def test_vote_reports_ties_explicitly_and_never_picks_a_winner() -> None:
    result = aggregate.vote(
        {
            "a": {"db": "postgres", "orm": "yes"},
            "b": {"db": "mysql", "orm": "yes"},
            "c": {"db": "postgres", "orm": "no"},
            "d": {"db": "mysql"},
        }
    )
    (tie,) = result.ties
    assert tie.question == "db" and tie.tie and tie.winner is None
    assert set(tie.tied) == {"postgres", "mysql"}
    assert tie.confidence == 0.5 and not tie.majority
    assert result.winners() == {"orm": "yes"}
    orm = result.decisions[1]
    assert orm.majority and orm.confidence == pytest.approx(2 / 3)


def test_vote_on_recommendations_accepts_majority_and_splits_on_half() -> None:
    result = aggregate.vote(
        {
            "a": ["index", "cache"],
            "b": ["index", "profile"],
            "c": ["index", "cache"],
            "d": ["rewrite"],
        }
    )
    assert [r.text for r in result.accepted] == ["index"]
    assert [r.text for r in result.split] == ["cache"]
    assert sorted(r.text for r in result.rejected) == ["profile", "rewrite"]


def test_plurality_without_majority_is_not_a_majority() -> None:
    result = aggregate.vote({"a": {"q": 1}, "b": {"q": 1}, "c": {"q": 2}, "d": {"q": 3}, "e": {}})
    (q,) = result.decisions
    assert q.winner == 1 and not q.tie and not q.majority and q.confidence == 0.5
    assert q.abstained == ("e",)


# ----------------------------------------------------------------------------------- escalate


def test_escalate_lists_conflicts_with_who_said_what_for_the_decider() -> None:
    esc = aggregate.escalate(
        {
            "planner": {"db": "postgres", "cache": True},
            "coder": {"db": "sqlite", "cache": True},
            "tester": {"cache": True},
        },
        to="lead-agent",
    )
    assert esc.needed and esc.to == "lead-agent"
    (conflict,) = esc.conflicts
    assert conflict.key == "db" and conflict.silent == ("tester",)
    assert {p.value: p.agents for p in conflict.positions} == {
        "postgres": ("planner",),
        "sqlite": ("coder",),
    }
    assert esc.agreed == {"cache": True}
    prompt = esc.prompt()
    assert "For lead-agent" in prompt and "## db" in prompt
    assert '- "postgres": planner' in prompt and "- (no answer): tester" in prompt
    data = json.loads(json.dumps(esc.to_dict()))
    assert data["conflicts"][0]["key"] == "db"


def test_escalate_when_agents_agree_has_nothing_to_decide() -> None:
    esc = aggregate.escalate({"a": {"x": 1}, "b": {"x": 1}})
    assert not esc.needed and esc.conflicts == () and "nothing to decide" in esc.prompt()


def test_escalate_includes_evenly_split_recommendations() -> None:
    esc = aggregate.escalate({"a": ["ship it"], "b": ["wait"]})
    assert esc.needed
    assert {r.text for r in esc.split} == {"ship it", "wait"}


# ---------------------------------------------------------------------------------- properties

values = st.one_of(st.booleans(), st.integers(-3, 3), st.sampled_from(["x", "y", "z"]))
answers = st.dictionaries(st.sampled_from(["q1", "q2", "q3"]), values, max_size=3)
outputs = st.dictionaries(st.sampled_from(list("abcdefg")), answers, min_size=1, max_size=7)


def _shuffled(data: dict[str, Any], seed: int) -> dict[str, Any]:
    items = list(data.items())
    random.Random(seed).shuffle(items)
    return dict(items)


@settings(max_examples=150, deadline=None)
@given(outputs, st.integers(0, 1000))
def test_results_do_not_depend_on_agent_order(data: dict[str, Any], seed: int) -> None:
    other = _shuffled(data, seed)
    assert aggregate.merge(data) == aggregate.merge(other)
    assert aggregate.vote(data) == aggregate.vote(other)


@settings(max_examples=150, deadline=None)
@given(outputs)
def test_conflicts_are_exactly_the_keys_with_different_answers(data: dict[str, Any]) -> None:
    merged = aggregate.merge(data)
    distinct: dict[str, set[str]] = {}
    for answer in data.values():
        for key, value in answer.items():
            distinct.setdefault(key, set()).add(json.dumps(value))
    assert {c.key for c in merged.conflicts} == {k for k, v in distinct.items() if len(v) > 1}
    assert set(merged.values) == {k for k, v in distinct.items() if len(v) == 1}


@settings(max_examples=150, deadline=None)
@given(outputs)
def test_every_vote_is_counted_once_and_ties_are_exact(data: dict[str, Any]) -> None:
    for d in aggregate.vote(data).decisions:
        counts = sorted((p.votes for p in d.positions), reverse=True)
        assert d.total == sum(counts) == sum(d.question in a for a in data.values())
        assert 0 < d.confidence <= 1 and d.confidence == counts[0] / d.total
        assert d.tie == (len(counts) > 1 and counts[0] == counts[1])
        assert (d.winner is None) or not d.tie
        assert len(d.abstained) + d.total == len(data)


@settings(max_examples=50, deadline=None)
@given(answers, st.integers(1, 5))
def test_identical_outputs_never_conflict(answer: dict[str, Any], n: int) -> None:
    data = {f"agent{i}": dict(answer) for i in range(n)}
    assert aggregate.merge(data).ok
    assert all(d.confidence == 1.0 for d in aggregate.vote(data).decisions)
    assert not aggregate.escalate(data).needed
