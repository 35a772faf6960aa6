"""What the interpreter and machine offer for parallelism, and how much CPU has been spent."""

from __future__ import annotations

import functools
import os
import platform
import resource
import socket
import sys
import sysconfig
from pathlib import Path

from truepar.records import Environment


def gil_enabled() -> bool:
    """False only on a free-threaded build running with the GIL actually off."""
    check = getattr(sys, "_is_gil_enabled", None)
    return bool(check()) if check is not None else True


def free_threaded_build() -> bool:
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def cores_available() -> int:
    """Cores this process may use: its CPU affinity, further limited by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cores = max(1, min(cores, int(-(-quota // 1))))
    return cores


def _cgroup_quota() -> float | None:
    try:
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except OSError:
        return None
    if len(text) != 2 or text[0] == "max":
        return None
    return int(text[0]) / int(text[1])


@functools.cache
def environment() -> Environment:
    return Environment(
        python_version=platform.python_version(),
        implementation=sys.implementation.name,
        gil_enabled=gil_enabled(),
        free_threaded_build=free_threaded_build(),
        cores_available=cores_available(),
        cores_total=os.cpu_count() or 1,
        host=socket.gethostname(),
        platform=platform.platform(),
    )


def own_cpu_s() -> float:
    """CPU seconds of this process (all threads) and of the children it has reaped."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
