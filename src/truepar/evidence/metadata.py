"""Environment metadata for evidence: what a reader needs to judge and reproduce a measurement.

Collected automatically, never typed in: interpreter, GIL, OS and kernel, CPU model, cores
available against total, memory, load at the start, the versions of the packages that shape
the numbers, host, and the git commit (and whether the tree was dirty) of the plan's folder.
Secrets never enter evidence: in a plan's ops, the entries of ``env``, ``headers``, ``params`` and
``kwargs`` whose names look like tokens, keys or passwords are redacted (:func:`redact_plan`),
with a configurable list of patterns.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import re
import socket
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import psutil

from truepar.engine.environment import (
    cores_available,
    free_threaded_build,
    gil_enabled,
)

#: Packages whose versions are recorded: the ones that shape truepar's numbers.
KEY_PACKAGES = (
    "truepar",
    "pydantic",
    "psutil",
    "httpx",
    "numpy",
    "scipy",
    "cryptography",
    "typer",
    "rich",
)

#: Names (of environment variables, headers, any mapping key) whose values are never recorded.
SECRET_PATTERNS = (
    r"token",
    r"secret",
    r"passw(or)?d",
    r"api[_-]?key",
    r"private[_-]?key",
    r"auth(orization)?",
    r"cookie",
    r"credential",
    r"session",
)
REDACTED = "[redacted]"


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions(names: Iterable[str] = KEY_PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state(folder: Path) -> dict[str, Any]:
    """The commit and dirty flag of the git work tree holding ``folder``, if any."""

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(
                ["git", "-C", str(folder), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"repository": False, "commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"repository": True, "commit": commit, "dirty": bool(status)}


def collect(plan_dir: Path | None = None) -> dict[str, Any]:
    """Everything about this machine and interpreter that bears on the numbers."""
    memory = psutil.virtual_memory()
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    info: dict[str, Any] = {
        "python_version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "gil_enabled": gil_enabled(),
        "free_threaded_build": free_threaded_build(),
        "os": platform.system(),
        "kernel": platform.release(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cores_available": cores_available(),
        "cores_total": os.cpu_count() or 1,
        "memory_total_bytes": memory.total,
        "memory_available_bytes": memory.available,
        "load_average_at_start": load,
        "hostname": socket.gethostname(),
        "packages": package_versions(),
    }
    if plan_dir is not None:
        info["git"] = git_state(plan_dir)
    return info


#: The op fields whose entries are names and values a user may put secrets in.
SECRET_FIELDS = ("env", "headers", "params", "kwargs")


def redact(mapping: Mapping[str, Any], patterns: Iterable[str] = SECRET_PATTERNS) -> dict[str, Any]:
    """``mapping`` with the values of secret-looking names replaced by ``[redacted]``."""
    secret = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
    return {k: REDACTED if secret.search(str(k)) else v for k, v in mapping.items()}


def redact_plan(
    plan: Mapping[str, Any], patterns: Iterable[str] = SECRET_PATTERNS
) -> dict[str, Any]:
    """A plan's JSON form with the secret-looking entries of its ops' :data:`SECRET_FIELDS`
    redacted (the plan's own ops are not touched)."""
    out = dict(plan)
    ops = []
    for raw in plan.get("ops", ()):
        op = dict(raw)
        for field in SECRET_FIELDS:
            if isinstance(op.get(field), Mapping):
                op[field] = redact(op[field], patterns)
        ops.append(op)
    out["ops"] = ops
    return out
