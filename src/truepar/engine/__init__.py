"""The engine: the scheduler core, the run entry points, bulk map, rate and context budgets."""

from truepar.engine.bulk import MapResult, map_calls
from truepar.engine.observer import Observer
from truepar.engine.run import arun, as_plan, run
from truepar.engine.scheduler import Scheduler
from truepar.preflight.budgets import BudgetDecision

__all__ = (
    "BudgetDecision",
    "MapResult",
    "Observer",
    "Scheduler",
    "arun",
    "as_plan",
    "map_calls",
    "run",
)
