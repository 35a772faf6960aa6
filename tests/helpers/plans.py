"""Plans and traces for tests: a checked plan from ops, fresh importable modules, overlaps.

The same helpers the shipped conformance suite uses (:mod:`truepar.testing._helpers`), so the
project's tests and an outside backend's are held to one definition of each.
"""

from __future__ import annotations

from truepar.testing._helpers import by_id, make_plan, overlaps, statuses, write_module

#: The backends that do real work; ``fake`` has its own tests (virtual clock).
REAL_BACKENDS = ("sequential", "async", "threads", "processes")

__all__ = ("REAL_BACKENDS", "by_id", "make_plan", "overlaps", "statuses", "write_module")
