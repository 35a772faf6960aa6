"""Environment metadata for evidence: what a reader needs to judge and reproduce a measurement.

Collected automatically, never typed in: interpreter, GIL, OS and kernel, CPU model, cores
available against total, memory, load at the start, the versions of the packages that shape
the numbers, host, and the git commit (and whether the tree was dirty) of the plan's folder.
Secrets never enter evidence: in a plan's ops, the entries of ``env``, ``headers``, ``params``,
``kwargs``, ``json`` and ``extra_body`` whose names look like tokens, keys or passwords are
redacted, URLs lose their userinfo and secret-named query parameters, and the redacted values are
removed from every other field of the op too (:func:`redact_plan`), with a configurable list of
patterns. The patterns and the URL rules live in :mod:`truepar.tools.secrets`, below the tools,
which redact what they return by the same rules.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
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
from truepar.tools.secrets import (
    SECRET_PATTERNS,
    redact,
    redact_url,
    scrubber,
    secret_values,
    url_secrets,
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


#: The op fields whose entries are names and values a user may put secrets in (``json_body`` is
#: an ``http`` op's ``json``).
SECRET_FIELDS = ("env", "headers", "params", "kwargs", "json_body", "extra_body")


def _is_url_field(name: str) -> bool:
    return name == "url" or name.endswith("_url")


def redact_op(op: Mapping[str, Any], patterns: Iterable[str] = SECRET_PATTERNS) -> dict[str, Any]:
    """One op's JSON form as evidence may record it: the secret-named entries of its
    :data:`SECRET_FIELDS` redacted, its URL fields (``url``, ``base_url`` ...) without userinfo
    or secret-named parameters, and every value so redacted removed from all its other fields."""
    pats = tuple(patterns)
    out = dict(op)
    secrets: set[str] = set()
    for field in SECRET_FIELDS:
        if isinstance(out.get(field), Mapping):
            secrets |= secret_values(out[field], pats)
            out[field] = redact(out[field], pats)
    for field, value in op.items():
        if isinstance(value, str) and _is_url_field(field):
            secrets |= url_secrets(value, pats)
            out[field] = redact_url(value, pats)
    scrubbed: dict[str, Any] = scrubber(secrets).deep(out)
    return scrubbed


def redact_plan(
    plan: Mapping[str, Any], patterns: Iterable[str] = SECRET_PATTERNS
) -> dict[str, Any]:
    """A plan's JSON form with each op redacted by :func:`redact_op` (the plan's own ops are not
    touched)."""
    out = dict(plan)
    out["ops"] = [redact_op(raw, patterns) for raw in plan.get("ops", ())]
    return out
