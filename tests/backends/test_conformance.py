"""The conformance suite on truepar's own backends: the suite ships in the package
(:mod:`truepar.testing.conformance`), so a backend from another package runs the same tests
(``tests/backends/test_plugin_backend.py`` shows one doing so).

Here it runs on the built-in real backends (the plugin's default; ``-p truepar.testing
--truepar-backend NAME`` narrows it). Below: built-in-only checks that no capability states.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import truepar
from helpers.plans import make_plan
from truepar import SleepOp
from truepar.testing.conformance import *  # noqa: F403 - the suite's test_* functions

pytest_plugins = ["truepar.testing"]


def test_sequential_runs_inline_on_the_loop_thread(tmp_path: Path) -> None:
    """``sequential`` runs every op inline, on the thread that runs the loop (the caller's)."""
    ops = [SleepOp(id=f"s{i}", seconds=0.05) for i in range(3)]
    trace = truepar.run(make_plan(tmp_path, ops, backend="sequential", workers=3))
    assert trace.ok
    assert {s.pid for s in trace.spans} == {os.getpid()}
    assert {s.thread_id for s in trace.spans} == {threading.get_native_id()}
    assert {s.worker for s in trace.spans} == {0}
