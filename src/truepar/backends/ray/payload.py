"""What travels to a Ray worker: a list of ``(token, OpCall)``, pickled on the driver.

Plain pickle is twice as fast as Ray's cloudpickle, so it is tried first; a function defined in
``__main__`` or a lambda needs cloudpickle. An op that neither can pickle fails alone, at once, as
on the ``processes`` backend, and the others travel without it.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence

from truepar.backends.ray.records import Op
from truepar.backends.ray.session import import_ray
from truepar.errors import NotPicklableError


def dumps(ops: Sequence[Op], refuse: Callable[[Op, NotPicklableError], None]) -> bytes:
    """``ops``' calls as bytes; ``refuse`` is called for each op that cannot travel (it is
    left out)."""
    items = [(op.token, op.call) for op in ops]
    try:
        return pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # pickle raises several types for what it cannot pickle
        pass
    cloud = import_ray().cloudpickle.dumps
    kept = []
    for op in ops:
        try:
            cloud(op.call)
        except Exception as exc:
            refuse(
                op,
                NotPicklableError(
                    f"op {op.call.op.id!r} cannot run on the ray backend: it cannot be pickled "
                    f"({exc}); use a module-level function and plain arguments, or another "
                    "backend"
                ),
            )
        else:
            kept.append((op.token, op.call))
    return bytes(cloud(kept))
