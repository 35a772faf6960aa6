"""A stand-in for the plan evidence was measured on: the same ids and edges, no real work.

Evidence records a plan's graph, not its callables: a plan of zero-second sleeps with the
recorded edges has the same critical path, which is all the derived numbers need.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from truepar.measure.results import Config
from truepar.plan.models import Defaults, Plan
from truepar.tools import SleepOp


def stand_in_plan(plan: Mapping[str, Any]) -> Plan:
    """A plan with the evidence's op ids and dependency edges (conflict edges made explicit):
    it has the same graph, hence the same critical path, as the plan that was measured."""
    ids = [str(i) for i in plan["graph"]["ids"]]
    preds = plan["graph"]["preds"]
    if len(preds) != len(ids):
        raise ValueError("plan.graph.preds does not have one entry per id")
    ops = [
        SleepOp(id=op_id, seconds=0, after=tuple(ids[int(p)] for p in preds[i]))
        for i, op_id in enumerate(ids)
    ]
    return Plan(
        name=str(plan["name"]),
        source=str(plan["path"]),
        ops=ops,
        defaults=Defaults(backend="fake"),
    )


def _key(result: Mapping[str, Any]) -> Config:
    return (str(result["backend"]), int(result["workers"]))


def config_key(result: Mapping[str, Any]) -> Config:
    """A result's configuration: ``(backend, workers)``."""
    return (str(result["backend"]), int(result["workers"]))
