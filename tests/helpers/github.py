"""A local GitHub API: ``/rate_limit`` as GitHub answers it, with buckets a test can set."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

TOKEN = "ghp_test_token"


class GitHubState:
    """What the fake GitHub answers; once ``reset`` passes, a bucket is full again, as GitHub's."""

    def __init__(self) -> None:
        self.buckets: dict[str, dict[str, float]] = {}
        self.auth: list[str | None] = []
        self.token = TOKEN
        self.set("core", limit=5000, remaining=4990, reset_in=3600)
        self.set("search", limit=30, remaining=30, reset_in=60)
        self.set("graphql", limit=5000, remaining=5000, reset_in=3600)
        self.set("code_search", limit=10, remaining=10, reset_in=60)

    def set(self, name: str, *, limit: int, remaining: int, reset_in: float) -> None:
        reset = math.ceil(time.time() + reset_in)  # whole seconds, as GitHub says them
        self.buckets[name] = {"limit": limit, "remaining": remaining, "reset": reset}

    def body(self) -> dict[str, Any]:
        now, resources = time.time(), {}
        for name, b in self.buckets.items():
            if now >= b["reset"]:
                b["remaining"], b["reset"] = b["limit"], now + 3600
            resources[name] = {
                "limit": int(b["limit"]),
                "remaining": int(b["remaining"]),
                "reset": int(b["reset"]),
                "used": int(b["limit"] - b["remaining"]),
            }
        return {"resources": resources, "rate": resources["core"]}


def _handler(state: GitHubState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            auth = self.headers.get("Authorization")
            state.auth.append(auth)
            if self.path != "/rate_limit":
                return self._reply(404, {"message": "Not Found"})
            if auth is not None and auth != f"Bearer {state.token}":
                return self._reply(401, {"message": "Bad credentials"})
            return self._reply(200, state.body())

        def _reply(self, status: int, data: dict[str, Any]) -> None:
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def gh(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, GitHubState]]:
    """A local GitHub API: ``GITHUB_API_URL`` points at it and ``GH_TOKEN`` is its token."""
    state = GitHubState()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.setenv("GH_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", url)
    yield url, state
    srv.shutdown()
    srv.server_close()
