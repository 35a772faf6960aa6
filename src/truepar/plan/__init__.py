"""Plans: models, file loading, and the dependency graph."""

from truepar.plan.graph import Edge, Graph, build_graph
from truepar.plan.load import load_plan, plan_from_dict
from truepar.plan.models import Defaults, Plan, Resource, op_from_dict

__all__ = (
    "Defaults",
    "Edge",
    "Graph",
    "Plan",
    "Resource",
    "build_graph",
    "load_plan",
    "op_from_dict",
    "plan_from_dict",
)
