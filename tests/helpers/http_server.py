"""A local HTTP server on an ephemeral port, serving a test's own handler, and the proxy
variables cleared so that clients really talk to it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """Serve ``handler`` on 127.0.0.1 while the block runs; yields the port."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clear every proxy variable (a proxy would turn 127.0.0.1 into someone else's server)."""
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
