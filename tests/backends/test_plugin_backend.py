"""A backend from outside the package, found through the ``truepar.backends`` entry point,
passes the shipped conformance suite (``-p truepar.testing --truepar-backend tiny``).

The outside package is written into a temporary folder: a module with a small but real
backend (a thread per op) and a ``.dist-info`` folder declaring its entry point, which
``importlib.metadata`` finds on the path as it would an installed distribution.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import truepar
import truepar.testing
from helpers.plans import make_plan, overlaps, write_module
from truepar import PythonOp, SleepOp
from truepar.backends import reload_entry_points, unregister_backend
from truepar.testing import conformance

TINY = '''
"""tiny: a thread per op — the smallest real truepar backend."""

import asyncio
import contextlib
import threading

from truepar.backends.base import Backend, Slots
from truepar.backends.invoke import invoke
from truepar.tools.base import ToolContext


class TinyBackend(Backend):
    name = "tiny"
    cpu_parallel = "without_gil"

    def __init__(self, workers):
        super().__init__(workers)
        self._slots = Slots()
        self._threads = set()

    def submit(self, call, done):
        loop = asyncio.get_running_loop()
        ctx = ToolContext(call.root, call.plan_dir)
        call.handle = ctx
        call.worker = self._slots.acquire()

        def finish(outcome):
            self._slots.release(call.worker)
            done(outcome)

        def work():
            call.thread_id = threading.get_native_id()
            outcome = invoke(call, ctx, call.worker)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(finish, outcome)

        thread = threading.Thread(target=work, name=f"tiny-{call.op.id}", daemon=True)
        self._threads.add(thread)
        thread.start()

    def cancel(self, call):
        call.handle.request_cancel()  # kills its subprocess, wakes its sleep

    async def aclose(self):
        threads, self._threads = self._threads, set()
        for thread in threads:
            thread.join(timeout=1.0)
'''

SUITE_MODULE = """
from truepar.testing.conformance import *  # noqa: F403
"""

#: The suite's tests: each must pass on the tiny backend, none skipped.
SUITE = [name for name in conformance.__all__ if name.startswith("test_")]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder holding the outside package: its module and its distribution metadata."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "tinybackend.py").write_text(textwrap.dedent(TINY).lstrip(), encoding="utf-8")
    dist = root / "tinybackend-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tinybackend\nVersion: 0.1\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text(
        "[truepar.backends]\ntiny = tinybackend:TinyBackend\n", encoding="utf-8"
    )
    return root


@pytest.fixture
def tiny_on_path(outside: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The outside package on ``sys.path``, its entry points read again; all undone after."""
    monkeypatch.syspath_prepend(str(outside))
    reload_entry_points()
    yield outside
    unregister_backend("tiny")  # loading the entry point registered it
    sys.modules.pop("tinybackend", None)
    reload_entry_points()  # read without the folder next time (monkeypatch drops it next)


def test_the_entry_point_makes_a_backend(tiny_on_path: Path, tmp_path: Path) -> None:
    assert "tiny" in truepar.backend_names()
    assert truepar.backend_class("tiny").__name__ == "TinyBackend"
    assert truepar.backend_class("tiny").cpu_parallel == "without_gil"
    assert truepar.testing.select_backends(["tiny"], None) == ("tiny",)
    # It really runs ops: three sleeps at once, on threads of their own, and a value back.
    mod = write_module(tmp_path, "def double(x):\n    return 2 * x\n")
    ops = [SleepOp(id=f"s{i}", seconds=0.2) for i in range(3)]
    ops.append(PythonOp(id="py", call=f"{mod}:double", args=(21,)))
    trace = truepar.run(make_plan(tmp_path, ops, backend="tiny", workers=4))
    assert trace.ok, trace.results
    assert trace.backend == "tiny"
    assert trace.results["py"].value == 42
    assert overlaps(trace) >= 3
    assert threading.get_native_id() not in {s.thread_id for s in trace.spans}


def test_without_the_folder_there_is_no_tiny() -> None:
    assert "tiny" not in truepar.backend_names()
    with pytest.raises(pytest.UsageError, match="no such backend"):
        truepar.testing.select_backends(["tiny"], None)


def test_backend_selection() -> None:
    real = truepar.testing.default_backends()
    assert real == ("sequential", "async", "threads", "processes")
    assert truepar.testing.select_backends(None, None) == real
    assert truepar.testing.select_backends(None, ["threads", "async"]) == ("threads", "async")
    both = truepar.testing.select_backends(["threads,async", "threads"], ["processes"])
    assert both == ("threads", "async")
    with pytest.raises(pytest.UsageError, match="simulates"):
        truepar.testing.select_backends(["fake"], None)


def _run_pytest(args: list[str], cwd: Path, env: dict[str, str], timeout_s: float) -> str:
    """Run pytest in its own session (so every process it starts can be killed at once)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    out: str | None = None
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pass
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # it if still running, and anything it left
    if out is None:
        out, _ = proc.communicate()
        pytest.fail(f"pytest ran past {timeout_s} s:\n{out}")
    assert proc.returncode == 0, out
    return out


@pytest.mark.timeout(300)
def test_outside_backend_passes_the_suite(outside: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # its own rootdir
    (work / "test_tiny_conformance.py").write_text(SUITE_MODULE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(outside), env.get("PYTHONPATH")]))
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only the plugins asked for below
    out = _run_pytest(
        [
            "-p",
            "truepar.testing",
            "-p",
            "pytest_timeout",
            "--truepar-backend",
            "tiny",
            "--timeout",
            "60",
            "-p",
            "no:cacheprovider",
            f"--basetemp={tmp_path / 'inner'}",
            "-v",
            "-rfEs",
            "test_tiny_conformance.py",
        ],
        cwd=work,
        env=env,
        timeout_s=240,
    )
    summary = out.strip().splitlines()[-1]
    assert re.search(rf"\b{len(SUITE)} passed\b", summary), out
    assert not re.search(r"failed|error|skipped", summary), out
    for name in SUITE:  # each test of the suite ran, on the tiny backend
        assert f"::{name}[tiny] PASSED" in out, name
