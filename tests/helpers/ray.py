"""Ray, for the test modules that need it: ``ray = require_ray()`` after a module's imports
(truepar's own Ray modules import Ray lazily, so they import without it).

Where Ray cannot be imported the whole module is skipped, with the reason — except under CI
(``CI`` set), where Ray must be installed (``make test`` installs ``truepar[ray]``) and a
missing Ray is an error rather than a quiet skip."""

from __future__ import annotations

import os
from types import ModuleType

import pytest


def require_ray() -> ModuleType:
    try:
        import ray  # noqa: PLC0415 - whether it imports is the question
    except ImportError as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise RuntimeError(
                f"CI is set but Ray cannot be imported ({exc}): install truepar[ray]"
            ) from exc
        pytest.skip(f"Ray cannot be imported here ({exc})", allow_module_level=True)
    return ray
