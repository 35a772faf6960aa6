"""The parent's main script, run once in the fork server instead of once in every worker.

When a process with other threads alive starts ``processes`` workers, they come from a fork
server (see :mod:`truepar.backends.processes`), and each one first runs the parent's main script
again, as ``__mp_main__``, so that what the script defines can be unpickled there. CPython means
the fork server to do that once, for every worker it forks, when ``"__main__"`` is among its
preloaded modules — but it never hands the server the script's path (it looks for the key
``main_path``; the preparation data calls it ``init_main_from_path``), so the preload does
nothing and every worker runs the script, and imports all it imports, itself: 0.2–0.4 s of CPU
per worker for truepar's own command line (Ray, numpy, the CLI), paid by every run and counted in
its CPU.

This module, preloaded by the fork server, does what the preload was meant to: the parent
exports the script's path (:func:`exported`) while it starts the server, and the server runs the
script here, the way CPython's preload would. Workers forked from the server then find it
loaded and do not run it again. If the script fails in the server, nothing is lost: each worker
runs it itself, as before, and reports what fails.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from multiprocessing import process, spawn

#: The environment variable that carries the script's path to the fork server.
ENV = "_TRUEPAR_FORKSERVER_MAIN"


@contextlib.contextmanager
def exported() -> Iterator[None]:
    """The main script's path in the environment while a worker starts the fork server; the
    variable as it was afterwards. Only while the server is not running yet (it reads the path
    once, when it starts): the environment of a process with threads is best changed rarely."""
    path = None if _server_running() else _main_path()
    if path is None:  # read already, or run with -m or embedded: no script to run
        yield
        return
    before = os.environ.get(ENV)
    os.environ[ENV] = path
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def _main_path() -> str | None:
    path = spawn.get_preparation_data("truepar-worker").get("init_main_from_path")
    return str(path) if path else None


def _server_running() -> bool:
    from multiprocessing import forkserver  # noqa: PLC0415 - only where workers start

    server = getattr(forkserver, "_forkserver", None)
    return getattr(server, "_forkserver_pid", None) is not None


def _run_main() -> None:
    path = os.environ.pop(ENV, None)
    if not path or process.parent_process() is not None:
        return  # imported anywhere but in a fork server the parent started
    # As `python script.py` (and a worker's own run of it) would have it: the script's folder
    # first on the path, for the modules beside it that it imports.
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    current = process.current_process()
    current._inheriting = True  # type: ignore[attr-defined]  # as CPython's preload does
    try:
        # If it fails here, each worker runs the script itself, and reports what fails.
        with contextlib.suppress(BaseException):
            spawn.import_main_path(path)
    finally:
        del current._inheriting  # type: ignore[attr-defined]


_run_main()
