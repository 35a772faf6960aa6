"""truepar's backend conformance suite, shipped as a pytest plugin (needs pytest).

Every backend — built in, or a plug-in from another package (an entry point in the
``truepar.backends`` group, or :func:`truepar.register_backend`) — owes truepar the same
contract: ops run and their spans say where (pid, thread, worker, host), ``after`` and
read/write conflicts are ordered, worker and resource caps hold, failures stay isolated,
timeouts stop ops and are reported ``timeout``, retries retry, fail-fast and Ctrl-C cancel and
kill subprocesses, results come back in plan order, CPU is measured. The suite that checks it
lives in :mod:`truepar.testing.conformance`, so an outside backend runs the very tests the
built-in ones pass.

Use it in two steps. Enable the plugin, on the command line or in the root ``conftest.py``::

    pytest -p truepar.testing --truepar-backend mybackend
    # or, in conftest.py at the root of the tests:
    pytest_plugins = ["truepar.testing"]

and pull the suite into one of your test modules (pytest collects the imported ``test_*``
functions there, as it would its own)::

    # test_truepar_conformance.py
    from truepar.testing.conformance import *  # noqa: F403

The plugin is not registered automatically (nothing changes in a test session that does not
ask for it). It gives:

- ``--truepar-backend NAME``: a backend to run the suite on; repeat it, or give several
  names separated by commas. Without it, the ``truepar_backends`` ini option (names separated
  by spaces), else every built-in backend that runs real ops on a real clock (``sequential``,
  ``async``, ``threads``, ``processes`` today). An unknown name, or a backend that only
  simulates ops (a virtual clock), is a usage error: the suite runs real commands in real time.
- the ``truepar_backend`` fixture: each selected backend's name in turn (test ids are the
  names). A test that parametrizes ``truepar_backend`` itself keeps its own values.

What a test expects of a backend comes from the backend's declared capabilities
(:class:`~truepar.backends.base.Backend`: ``cpu_parallel``, ``event_loop``, ``measures_real_cpu``,
``max_workers`` of an instance), never from its name.

(PYTEST_DONT_REWRITE: this module holds no asserts, and a test module may import it before
pytest registers it as a plugin; the suite's own modules are rewritten.)
"""

from __future__ import annotations

import pytest

from truepar.backends import BACKENDS, backend_names, known_backend_class

# The suite's asserts get pytest's explanations; must run before the suite is imported.
pytest.register_assert_rewrite("truepar.testing.conformance", "truepar.testing._helpers")

#: The fixture that names the backend under test.
FIXTURE = "truepar_backend"
#: The ini option listing the backends to run the suite on.
INI = "truepar_backends"

_SELECTED = pytest.StashKey[tuple[str, ...]]()


def default_backends() -> tuple[str, ...]:
    """The built-in backends the suite runs on by default: those that run real ops on a real
    clock and can be loaded here."""
    out = []
    for name in BACKENDS:
        cls = known_backend_class(name)
        if cls is not None and cls.runs_real_ops and not cls.virtual_clock:
            out.append(name)
    return tuple(out)


def select_backends(option: list[str] | None, ini: list[str] | None) -> tuple[str, ...]:
    """The backends to test: the command line's, else the ini option's, else the default ones;
    names may be given comma-separated; duplicates dropped, order kept. Each is checked."""
    raw = option or ini or []
    names = [n.strip() for item in raw for n in item.split(",") if n.strip()]
    chosen = tuple(dict.fromkeys(names)) or default_backends()
    for name in chosen:
        check_backend(name)
    return chosen


def check_backend(name: str) -> None:
    """Raise :class:`pytest.UsageError` unless the suite can run on backend ``name``."""
    cls = known_backend_class(name)
    if cls is None:
        raise pytest.UsageError(
            f"--truepar-backend {name}: no such backend here (known: {', '.join(backend_names())});"
            " is the package that provides it installed, or on the path?"
        )
    if cls.virtual_clock or not cls.runs_real_ops:
        raise pytest.UsageError(
            f"--truepar-backend {name}: the conformance suite runs real ops on a real clock, and "
            f"backend {name!r} only simulates them"
        )


def selected_backends(config: pytest.Config) -> tuple[str, ...]:
    """The backends this session runs the suite on (chosen once, when pytest is configured)."""
    if _SELECTED not in config.stash:
        ini = config.getini(INI)
        config.stash[_SELECTED] = select_backends(
            config.getoption("truepar_backends", None), list(ini) if ini else None
        )
    return config.stash[_SELECTED]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("truepar", "truepar backend conformance suite")
    group.addoption(
        "--truepar-backend",
        action="append",
        dest="truepar_backends",
        default=None,
        metavar="NAME",
        help="run truepar's conformance suite on backend NAME (repeatable, or comma-separated; "
        "default: the built-in real backends)",
    )
    parser.addini(
        INI,
        type="args",
        default=[],
        help="backends to run truepar's conformance suite on (--truepar-backend overrides)",
    )


def pytest_configure(config: pytest.Config) -> None:
    selected_backends(config)  # a bad name stops the session before any test runs


def pytest_report_header(config: pytest.Config) -> str:
    return f"truepar conformance backends: {', '.join(selected_backends(config))}"


def _parametrized_by_test(metafunc: pytest.Metafunc) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        argnames = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(argnames, str):
            argnames = [a.strip() for a in argnames.split(",")]
        if FIXTURE in argnames:
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if FIXTURE in metafunc.fixturenames and not _parametrized_by_test(metafunc):
        names = selected_backends(metafunc.config)
        metafunc.parametrize(FIXTURE, names, ids=list(names), indirect=True)


@pytest.fixture
def truepar_backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test: each one selected by ``--truepar-backend`` (or the
    ``truepar_backends`` ini option, or the built-in real backends) in turn."""
    param = getattr(request, "param", None)
    return str(param) if param is not None else selected_backends(request.config)[0]


__all__ = (
    "FIXTURE",
    "INI",
    "check_backend",
    "default_backends",
    "pytest_addoption",
    "pytest_configure",
    "pytest_generate_tests",
    "pytest_report_header",
    "select_backends",
    "selected_backends",
    "truepar_backend",
)
