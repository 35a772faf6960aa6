"""Backends: where ops run — one registry, the only list of their names.

Built-in backends are imported lazily by name, like anyio's, so an optional one that cannot load
here fails only when asked for, with a message saying how to get it. Others plug in without a
change here: :func:`register_backend` from code, or an entry point in the ``truepar.backends``
group from an installed package (``name = "package.module:BackendClass"``), loaded the first time
a name is looked up. What a backend *is* (a virtual clock, CPU it measures, which backend is its
speedup baseline, whether sync code blocks its loop) is said by the class's capabilities (see
:class:`~truepar.backends.base.Backend`), never by testing its name.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
from collections.abc import Iterable

from truepar.backends.base import Backend, BackendFactory, OpCall, Outcome
from truepar.errors import BackendUnavailable, UsageError

#: The built-in backends, in the order they are listed: name → (module, class).
_BUILTIN = {
    "sequential": ("truepar.backends.sequential", "SequentialBackend"),
    "async": ("truepar.backends.asyncio_backend", "AsyncBackend"),
    "threads": ("truepar.backends.threads", "ThreadsBackend"),
    "processes": ("truepar.backends.processes", "ProcessesBackend"),
    "fake": ("truepar.backends.fake", "FakeBackend"),
}

#: The names of the built-in backends (:func:`backend_names` adds plug-ins).
BACKENDS = tuple(_BUILTIN)

#: The entry-point group a package declares its backends in.
ENTRY_POINT_GROUP = "truepar.backends"

_lock = threading.Lock()
#: Backends registered from code or entry points: name → factory (a Backend class, usually).
_registered: dict[str, BackendFactory] = {}
#: Entry points not loaded yet: name → entry point (read once, loaded when first asked for).
_pending: dict[str, importlib.metadata.EntryPoint] | None = None


def register_backend(name: str, factory: BackendFactory, *, replace: bool = False) -> None:
    """Make ``name`` a backend: ``factory(workers)`` makes an instance (a Backend subclass is
    the usual factory). A taken name is refused unless ``replace``."""
    if not name or not name.replace("-", "_").isidentifier():
        raise ValueError(f"backend name {name!r} must be a word (letters, digits, _ or -)")
    with _lock:
        if not replace and (name in _BUILTIN or name in _registered):
            raise ValueError(f"a backend named {name!r} exists already")
        _registered[name] = factory


def unregister_backend(name: str) -> None:
    """Forget a backend registered with :func:`register_backend` (tests, plug-in reloads)."""
    with _lock:
        _registered.pop(name, None)


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    global _pending
    with _lock:
        if _pending is None:
            found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
            _pending = {ep.name: ep for ep in found if ep.name not in _BUILTIN}
        return _pending


def reload_entry_points() -> None:
    """Read the ``truepar.backends`` entry points again (after installing a plug-in)."""
    global _pending
    with _lock:
        _pending = None


def backend_names() -> tuple[str, ...]:
    """Every backend name: the built-in ones, then registered and entry-point ones, sorted."""
    extra = set(_registered) | set(_entry_points())
    return BACKENDS + tuple(sorted(extra - set(_BUILTIN)))


def _factory(name: str) -> BackendFactory:
    if name in _BUILTIN:
        module_name, cls_name = _BUILTIN[name]
        cls: type[Backend] = getattr(importlib.import_module(module_name), cls_name)
        return cls
    with _lock:
        factory = _registered.get(name)
    if factory is not None:
        return factory
    ep = _entry_points().get(name)
    if ep is None:
        raise BackendUnavailable(f"unknown backend {name!r} (one of: {', '.join(backend_names())})")
    try:
        loaded = ep.load()
    except ImportError as exc:
        raise BackendUnavailable(
            f"backend {name!r} cannot be loaded here ({exc}); install the package that "
            f"provides it ({ep.value})"
        ) from exc
    if not callable(loaded):
        raise BackendUnavailable(f"backend {name!r}: entry point {ep.value} is not a factory")
    with _lock:
        _registered.setdefault(name, loaded)
    return loaded  # type: ignore[no-any-return]


def create_backend(name: str, workers: int) -> Backend:
    """A fresh backend instance. Raises :class:`BackendUnavailable` for an unknown name."""
    return _factory(name)(workers)


def backend_class(name: str) -> type[Backend]:
    """The class of backend ``name``, to read its capabilities without starting anything."""
    factory: object = _factory(name)
    if isinstance(factory, type) and issubclass(factory, Backend):
        return factory
    return type(_factory(name)(1))


def known_backend_class(name: str) -> type[Backend] | None:
    """:func:`backend_class`, or ``None`` for a name not known (or loadable) here — evidence
    from a machine with a plug-in this one lacks."""
    try:
        return backend_class(name)
    except BackendUnavailable:
        return None


def baseline_for(names: Iterable[str]) -> tuple[str, int]:
    """The configuration every backend in ``names`` is measured against: one worker of their
    common baseline backend (``sequential`` for real backends; a virtual-clock backend is its
    own). Mixed baselines are refused: their speedups would not be comparable."""
    baselines = {backend_class(n).baseline or n for n in names}
    if len(baselines) > 1:
        raise UsageError(
            f"backends {', '.join(sorted(set(names)))} cannot be measured together: their "
            f"speedup baselines differ ({', '.join(sorted(baselines))}); measure them separately"
        )
    return (baselines.pop() if baselines else "sequential"), 1


__all__ = (
    "BACKENDS",
    "ENTRY_POINT_GROUP",
    "Backend",
    "BackendFactory",
    "OpCall",
    "Outcome",
    "backend_class",
    "backend_names",
    "baseline_for",
    "create_backend",
    "known_backend_class",
    "register_backend",
    "reload_entry_points",
    "unregister_backend",
)
