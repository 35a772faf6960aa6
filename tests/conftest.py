"""Shared fixtures and helpers for the scheduler, backend and plan tests."""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import truepar

#: The backends that do real work; ``fake`` has its own tests (virtual clock).
REAL_BACKENDS = ("sequential", "async", "threads", "processes")

_module_ids = itertools.count()


@pytest.fixture(params=REAL_BACKENDS, ids=list(REAL_BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    """The name of each real backend in turn: the conformance suite runs on all of them."""
    return str(request.param)


def make_plan(
    base_dir: Path,
    ops: Iterable[truepar.OpBase],
    *,
    name: str = "test",
    backend: str = "threads",
    workers: int = 4,
    resources: dict[str, truepar.Resource] | None = None,
    **defaults: Any,
) -> truepar.Plan:
    """A checked plan of ``ops`` whose root and import folder is ``base_dir``."""
    plan = truepar.Plan(
        name=name,
        ops=list(ops),
        defaults=truepar.Defaults(backend=backend, workers=workers, **defaults),
        resources=resources or {},
        base_dir=base_dir,
    )
    plan.check()
    return plan


@pytest.fixture
def mkplan(tmp_path: Path) -> Callable[..., truepar.Plan]:
    """``mkplan(ops, backend=..., workers=..., **defaults)`` with ``base_dir=tmp_path``."""

    def build(ops: Iterable[truepar.OpBase], **kw: Any) -> truepar.Plan:
        return make_plan(tmp_path, ops, **kw)

    return build


def overlaps(spans: Sequence[truepar.Span] | truepar.RunTrace) -> int:
    """The largest number of spans in flight at any one instant.

    Spans are half-open ``[start, end)``: one that starts exactly when another ends does not
    overlap it. Accepts a trace (all its spans) or a sequence of spans.
    """
    items = spans.spans if isinstance(spans, truepar.RunTrace) else spans
    events = []
    for s in items:
        if s.end_ns > s.start_ns:
            events.append((s.start_ns, 1))
            events.append((s.end_ns, -1))
    events.sort()  # at equal times, -1 (an end) sorts before +1 (a start)
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


def write_module(base_dir: Path, source: str) -> str:
    """Write ``source`` as a fresh module in ``base_dir`` and return its (unique) name.

    Each call gets a new module name, so the import cache of one test never serves another.
    Use it as ``call=f"{name}:function"`` in a plan whose ``base_dir`` is ``base_dir``.
    """
    name = f"tp_mod_{next(_module_ids)}_{abs(hash(str(base_dir))) % 10**8}"
    (base_dir / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return name


def by_id(trace: truepar.RunTrace) -> dict[str, truepar.Span]:
    """The last span of each op."""
    out: dict[str, truepar.Span] = {}
    for s in trace.spans:
        if s.op_id not in out or s.attempt > out[s.op_id].attempt:
            out[s.op_id] = s
    return out


def statuses(trace: truepar.RunTrace) -> dict[str, str]:
    return {k: r.status.value for k, r in trace.results.items()}


@pytest.fixture
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every git (and agent) in the test gets an identity, and no one's own git config."""
    from git_helpers import GIT_IDENTITY

    for var, value in GIT_IDENTITY.items():
        monkeypatch.setenv(var, value)


@pytest.fixture(autouse=True, scope="session")
def _tests_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test writes in the user's truepar data folder, module fixtures included: the evidence
    and ledger that commands write by default land in a temporary one (subprocesses inherit it
    through the environment)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data-session")))
        for var in ("TRUEPAR_LEDGER", "TRUEPAR_EVIDENCE_DIR"):
            patch.delenv(var, raising=False)
        yield


@pytest.fixture(autouse=True)
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each test's own truepar data folder (``$XDG_DATA_HOME/truepar``): its default evidence
    and ledger, apart from every other test's."""
    data = tmp_path_factory.mktemp("xdg-data")
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    return data / "truepar"
