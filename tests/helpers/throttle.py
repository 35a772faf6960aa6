"""Local servers that throttle: scripted 429/503 answers, or 429 past K requests in flight.

Used with :func:`helpers.http_server.serving`. Every answer is sent with a ``Content-Length``
so that clients never wait for a body that does not come.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

#: The normal answer to a request's body: ``(status, content type, body)``.
Answer = Callable[[bytes], tuple[int, str, bytes]]


def text_ok(_body: bytes) -> tuple[int, str, bytes]:
    return 200, "text/plain", b"ok"


def chat_ok(body: bytes) -> tuple[int, str, bytes]:
    """A chat completion in the OpenAI shape, echoing the request's model."""
    model = json.loads(body or b"{}").get("model", "m")
    reply = {
        "id": "chatcmpl-throttle",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    return 200, "application/json", json.dumps(reply).encode()


def _send(
    handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], ctype: str, data: bytes
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(data)))
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    try:
        handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (a timeout): nothing to answer


class Script:
    """Answers given in order before the normal one: ``(status, headers)`` each; then every
    request gets the normal answer. Counts the requests it saw."""

    def __init__(self, *answers: tuple[int, dict[str, str]]) -> None:
        self._answers = list(answers)
        self._lock = threading.Lock()
        self.requests = 0

    def next(self) -> tuple[int, dict[str, str]] | None:
        with self._lock:
            self.requests += 1
            return self._answers.pop(0) if self._answers else None

    def handler(self, normal: Answer = text_ok) -> type[BaseHTTPRequestHandler]:
        script = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                scripted = script.next()
                if scripted is not None:
                    status, headers = scripted
                    data = json.dumps({"error": {"message": "slow down", "type": "rate"}})
                    _send(self, status, headers, "application/json", data.encode())
                    return
                status, ctype, data = normal(body)
                _send(self, status, {}, ctype, data)

            do_GET = do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


class Crowd:
    """Answers 429 (``Retry-After: retry_after``) to a request arriving while ``limit`` others
    are in flight; serves the rest after ``hold_s``. Records the most it ever served at once."""

    def __init__(self, limit: int, hold_s: float, retry_after: str) -> None:
        self.limit = limit
        self.hold_s = hold_s
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self.in_flight = 0
        self.most_served = 0
        self.throttled = 0
        self.served = 0

    def handler(self) -> type[BaseHTTPRequestHandler]:
        crowd = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with crowd._lock:
                    busy = crowd.in_flight >= crowd.limit
                    if busy:
                        crowd.throttled += 1
                    else:
                        crowd.in_flight += 1
                        crowd.most_served = max(crowd.most_served, crowd.in_flight)
                if busy:
                    _send(self, 429, {"Retry-After": crowd.retry_after}, "text/plain", b"busy")
                    return
                try:
                    time.sleep(crowd.hold_s)
                    _send(self, 200, {}, "text/plain", b"ok")
                finally:
                    with crowd._lock:
                        crowd.in_flight -= 1
                        crowd.served += 1

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
