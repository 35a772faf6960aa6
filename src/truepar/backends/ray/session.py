"""This process's one connection to Ray: made on first use, kept for the process's life.

Importing Ray takes most of a second and starting a local instance several more, so neither
happens before a run on the ``ray`` backend starts. ``connect`` joins the cluster at an
address (``auto``, ``ray://HOST:PORT``, ``HOST:PORT``) or, given none, starts a local instance
sized to this machine (its usable cores, a bounded object store, no dashboard) that is shut
down when the process exits — a cluster truepar did not start is never shut down by it. Later
runs reuse the connection, and with it the warm actors (:mod:`truepar.backends.ray.pool`).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import logging
import os
import signal
import socket
import sys
import threading
from types import ModuleType
from typing import Any

from truepar.errors import BackendUnavailable, UsageError

#: Where a cluster is given when no ``address`` is passed (``truepar run --address`` sets it).
ENV_ADDRESS = "TRUEPAR_RAY_ADDRESS"
#: The object store of a local instance: ops' arguments and results are small, and Ray's
#: default (30% of memory) would take gigabytes of shared memory for nothing.
OBJECT_STORE_BYTES = 200 << 20


@dataclasses.dataclass(frozen=True)
class Session:
    """The cluster this process is connected to."""

    #: What we connected to, as given; ``None`` for the local instance truepar started.
    address: str | None
    #: truepar started the instance (and shuts it down at exit).
    owned: bool


_lock = threading.Lock()
_session: Session | None = None


def import_ray() -> ModuleType:
    """Ray itself, or one line saying how to install it."""
    try:
        import ray  # noqa: PLC0415 - a second's import, paid only by runs on this backend
    except ImportError as exc:
        raise BackendUnavailable(
            f"backend 'ray' needs Ray, which cannot be imported here ({exc}); install it with: "
            "pip install 'truepar[ray]'"
        ) from exc
    module: ModuleType = ray
    return module


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), which a local instance offers."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def resolve_address(address: str | None) -> str | None:
    """The address to connect to: the one given, else ``$TRUEPAR_RAY_ADDRESS``; ``None``
    (or an empty string): start a local instance."""
    chosen = address if address is not None else os.environ.get(ENV_ADDRESS)
    if not chosen or not chosen.strip():
        return None
    return chosen.strip()


def use_address(address: str | None) -> None:
    """Make ``address`` the cluster of this process's Ray runs (``--address``); ``None``:
    leave it as it is. An address must name something: an empty one is refused."""
    if address is None:
        return
    if not address.strip():
        raise UsageError("--address is empty; give auto, ray://HOST:PORT or HOST:PORT")
    os.environ[ENV_ADDRESS] = address.strip()


def connect(address: str | None = None) -> Session:
    """Connect to Ray once per process (see the module's docstring) and return the session.

    A process already connected — by an earlier run, or by the caller's own ``ray.init`` — is
    used as it is; asking it for another cluster is a usage error.
    """
    global _session
    ray = import_ray()
    wanted = resolve_address(address)
    with _lock:
        if ray.is_initialized():
            if _session is None:  # the caller's own ray.init: used as it is, never shut down
                _session = Session(address=None, owned=False)
                return _session
            ours = _session.owned or _session.address is not None
            if ours and wanted is not None and wanted != _session.address:
                where = _session.address or "a local Ray instance truepar started"
                raise UsageError(
                    f"this process is already connected to {where}; it cannot also connect to "
                    f"{wanted} (one Ray cluster per process)"
                )
            return _session
        with _signals_kept():
            try:
                if wanted is None:
                    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
                    ray.init(
                        # A new instance, even where `ray start` left one running on this
                        # machine: bare ray.init() would join that, with other resources.
                        address="local",
                        num_cpus=usable_cores(),
                        object_store_memory=OBJECT_STORE_BYTES,
                        include_dashboard=False,
                        log_to_driver=False,
                        logging_level=logging.ERROR,
                    )
                else:
                    check_reachable(wanted)
                    ray.init(address=wanted, log_to_driver=False, logging_level=logging.ERROR)
            except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError...
                raise BackendUnavailable(_connect_error(wanted, exc)) from exc
        _session = Session(address=wanted, owned=wanted is None)
        atexit.register(disconnect)
        return _session


#: How long a cluster's address may take to accept a connection before it counts as down.
REACH_TIMEOUT_S = 5.0


def check_reachable(address: str) -> None:
    """Fail at once, in one line, when ``HOST:PORT`` (or ``ray://HOST:PORT``) accepts no
    connection: Ray itself would retry for minutes. ``auto`` is Ray's to find."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if address == "auto" or not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), REACH_TIMEOUT_S).close()
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {host}:{port}: {exc}") from exc


def _connect_error(address: str | None, exc: BaseException) -> str:
    why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if address is None:
        return f"backend 'ray': cannot start a local Ray instance ({why})"
    return (
        f"backend 'ray': cannot connect to the Ray cluster at {address!r} ({why}); start one "
        "(`ray start --head`), fix --address / $TRUEPAR_RAY_ADDRESS, or leave both out to start "
        "a local instance"
    )


def disconnect() -> None:
    """Forget the connection; shut the instance down if truepar started it. Safe to repeat."""
    global _session
    with _lock:
        session, _session = _session, None
        ray = sys.modules.get("ray")
        if ray is None:
            return
        # The actors of the pool die with the connection; the pool notices the new session.
        if session is not None and session.owned and ray.is_initialized():
            with contextlib.suppress(Exception):
                ray.shutdown()


def current() -> Session | None:
    """The session, if this process is connected."""
    return _session


@contextlib.contextmanager
def _signals_kept() -> Any:
    """``ray.init`` installs its own SIGTERM handler (it exits the process): keep ours, so a run
    stopped by SIGTERM still writes its trace."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None:
                signal.signal(sig, handler)


def cluster_nodes(ray: ModuleType) -> list[dict[str, Any]]:
    """The cluster's live nodes that can run work, head first: id, host, CPUs, GPUs."""
    out = []
    for node in ray.nodes():
        resources = node.get("Resources") or {}
        if not node.get("Alive") or resources.get("CPU", 0) <= 0:
            continue
        out.append(
            {
                "node": node["NodeID"],
                "host": node.get("NodeManagerHostname") or node.get("NodeManagerAddress") or "?",
                "cpus": int(resources.get("CPU", 0)),
                "gpus": int(resources.get("GPU", 0)),
                "head": "node:__internal_head__" in resources,
            }
        )
    out.sort(key=lambda n: (not n["head"], n["node"]))
    return out


def node_resources(ray: ModuleType) -> list[dict[str, float]]:
    """Each live node's total resources, by Ray's names (``CPU``, ``GPU``, custom ones)."""
    return [
        {name: float(amount) for name, amount in (node.get("Resources") or {}).items()}
        for node in ray.nodes()
        if node.get("Alive")
    ]
