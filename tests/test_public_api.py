"""The public surface: ``truepar.__all__`` is complete, sorted and true."""

from __future__ import annotations

import inspect
import re

import truepar
import truepar.plan


def _sort_key(name: str) -> tuple[int, str]:
    """isort-style order (ruff RUF022): SCREAMING_CASE, then CamelCase, then the rest."""
    if re.fullmatch(r"[A-Z][A-Z0-9_]*", name) and len(name) > 1:
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def test_all_is_a_tuple_of_existing_names() -> None:
    assert isinstance(truepar.__all__, tuple)
    assert len(set(truepar.__all__)) == len(truepar.__all__)
    missing = [name for name in truepar.__all__ if not hasattr(truepar, name)]
    assert missing == []


def test_all_is_sorted() -> None:
    assert list(truepar.__all__) == sorted(truepar.__all__, key=_sort_key)


def test_every_public_class_and_function_is_exported() -> None:
    public = {
        name
        for name, obj in vars(truepar).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and (getattr(obj, "__module__", "") or "").startswith("truepar")
    }
    assert public, "found no public classes or functions at all"
    assert sorted(public - set(truepar.__all__)) == []


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from truepar import *", namespace)
    namespace.pop("__builtins__", None)
    assert set(namespace) == set(truepar.__all__)


def test_backend_names_come_from_the_registry() -> None:
    assert truepar.backend_names()[: len(truepar.BACKENDS)] == truepar.BACKENDS
    assert set(truepar.BACKENDS) >= {"sequential", "async", "threads", "processes", "fake"}


def test_tools_registry() -> None:
    assert {"read", "ls", "grep", "bash", "python", "http", "sleep"} <= set(truepar.TOOLS)
    for name, tool in truepar.TOOLS.items():
        assert tool.name == name
        assert issubclass(tool.spec, truepar.OpBase)


def test_error_tree() -> None:
    assert issubclass(truepar.PlanError, truepar.BadInput)
    assert issubclass(truepar.UsageError, truepar.BadInput)
    assert issubclass(truepar.BadInput, ValueError)
    assert issubclass(truepar.NotPicklableError, truepar.OpError)
    assert issubclass(truepar.NotPicklableError, TypeError)
    assert issubclass(truepar.BackendUnavailable, ImportError)
    assert issubclass(truepar.InternalError, RuntimeError)
    for name in truepar.__all__:
        obj = getattr(truepar, name)
        if inspect.isclass(obj) and issubclass(obj, Exception) and not issubclass(obj, Warning):
            assert issubclass(obj, truepar.TrueparError), name
    assert issubclass(truepar.TrueparWarning, UserWarning)
    assert issubclass(truepar.Terminated, KeyboardInterrupt)


def test_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", truepar.__version__)


def test_estimate_tokens() -> None:
    assert [truepar.estimate_tokens(n) for n in (0, 1, 4, 5, 8, 9)] == [0, 1, 1, 2, 2, 3]
