"""Fixtures every test may use: each real backend in turn, plans in the test's folder, a git
identity, and a data folder of the test's own. Helpers without fixtures are in ``helpers/``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

import truepar
from helpers.git import GIT_IDENTITY
from helpers.github import gh
from helpers.plans import REAL_BACKENDS, make_plan

__all__ = ("gh",)  # the local GitHub API fixture, for every test


@pytest.fixture(params=REAL_BACKENDS, ids=list(REAL_BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    """The name of each real backend in turn: the conformance suite runs on all of them."""
    return str(request.param)


@pytest.fixture
def mkplan(tmp_path: Path) -> Callable[..., truepar.Plan]:
    """``mkplan(ops, backend=..., workers=..., **defaults)`` with ``base_dir=tmp_path``."""

    def build(ops: Iterable[truepar.OpBase], **kw: Any) -> truepar.Plan:
        return make_plan(tmp_path, ops, **kw)

    return build


@pytest.fixture
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every git (and agent) in the test gets an identity, and no one's own git config."""
    for var, value in GIT_IDENTITY.items():
        monkeypatch.setenv(var, value)


@pytest.fixture(autouse=True, scope="session")
def _tests_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test writes in the user's truepar data folder, module fixtures included: the evidence
    and ledger that commands write by default land in a temporary one (subprocesses inherit it
    through the environment)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data-session")))
        # The first evidence makes the user's key: in a temporary config folder, not theirs.
        patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config-session")))
        for var in ("TRUEPAR_LEDGER", "TRUEPAR_EVIDENCE_DIR", "TRUEPAR_KEYS"):
            patch.delenv(var, raising=False)
        yield


@pytest.fixture(autouse=True)
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each test's own truepar data folder (``$XDG_DATA_HOME/truepar``): its default evidence
    and ledger, apart from every other test's."""
    data = tmp_path_factory.mktemp("xdg-data")
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))
    return data / "truepar"


@pytest.fixture(autouse=True, scope="module")
def _ray_left_as_found() -> Iterator[None]:
    """A module whose code had truepar start a local Ray instance (``prove`` measures Ray last)
    has it shut down when the module ends: the next module run by this process may start its
    own, and Ray refuses a second ``ray.init`` in one process. An instance the module started
    itself (its own ``ray.init``) is the module's to shut down."""
    yield
    session = sys.modules.get("truepar.backends.ray.session")
    if session is not None and session.current() is not None:
        session.disconnect()
