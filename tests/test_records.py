"""The records' quick factory: what it makes is the record ``cls(...)`` makes, frozen as well."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from truepar.records import OpResult, Span, Status, quick_factory

SPAN_ARGS = ("a", 2, "sleep", "fake", Status.OK, 1, 2, 5, 42, 7, "host", 3, 0.5, 0.25, 10, 3)


def test_a_quick_span_is_the_span_its_class_makes() -> None:
    made = quick_factory(Span)(*SPAN_ARGS, summary="done", truncated=True)
    plain = Span(*SPAN_ARGS, summary="done", truncated=True)
    assert type(made) is Span
    assert made == plain
    assert hash(made) == hash(plain)
    assert repr(made) == repr(plain)
    assert made.to_json() == plain.to_json()
    assert pickle.loads(pickle.dumps(made)) == plain
    assert dataclasses.replace(made, attempt=3) == dataclasses.replace(plain, attempt=3)


def test_a_quick_record_is_still_frozen() -> None:
    result = quick_factory(OpResult)("a", Status.OK, 1, {"v": 1}, "ok")
    assert result == OpResult("a", Status.OK, 1, {"v": 1}, "ok")
    assert result.error is None  # defaults are the class's own
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.attempts = 2  # type: ignore[misc]


def test_a_quick_factory_takes_the_class_signature() -> None:
    with pytest.raises(TypeError):
        quick_factory(OpResult)("a")  # type: ignore[call-arg]
