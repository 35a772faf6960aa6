"""Backends: where ops run. Imported lazily by name, like anyio's, so an optional one that
cannot load here fails only when asked for, with a message saying how to get it."""

from __future__ import annotations

import importlib

from truepar.backends.base import Backend, OpCall, Outcome
from truepar.errors import BackendUnavailable

_BACKENDS = {
    "sequential": ("truepar.backends.sequential", "SequentialBackend"),
    "async": ("truepar.backends.asyncio_backend", "AsyncBackend"),
    "threads": ("truepar.backends.threads", "ThreadsBackend"),
    "processes": ("truepar.backends.processes", "ProcessesBackend"),
    "fake": ("truepar.backends.fake", "FakeBackend"),
}

BACKENDS = tuple(_BACKENDS)


def create_backend(name: str, workers: int) -> Backend:
    """A fresh backend instance. Raises :class:`BackendUnavailable` for an unknown name."""
    try:
        module_name, cls_name = _BACKENDS[name]
    except KeyError:
        raise BackendUnavailable(
            f"unknown backend {name!r} (one of: {', '.join(BACKENDS)})"
        ) from None
    cls: type[Backend] = getattr(importlib.import_module(module_name), cls_name)
    return cls(workers)


__all__ = ("BACKENDS", "Backend", "OpCall", "Outcome", "create_backend")
