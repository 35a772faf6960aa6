"""The ``http`` tool, sync and async, against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError

from truepar.errors import OpError
from truepar.tools.base import ToolContext, ToolOutput
from truepar.tools.http import HTTP, HttpOp


class _Handler(BaseHTTPRequestHandler):
    """``/echo`` returns the request as JSON; ``/status/N`` answers N; ``/big`` 10 kB;
    ``/redirect`` sends to ``/echo``; ``/login`` echoes too, with a session cookie and the
    request line and its credentials echoed in a header."""

    def _reply(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Test", "yes")
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        url = urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n) if n else b""
        if url.path in ("/echo", "/login"):
            echo = {
                "method": self.command,
                "path": url.path,
                "query": {k: v[0] for k, v in parse_qs(url.query).items()},
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": data.decode(),
            }
            if url.path == "/login":
                self.send_response(200)
                self.send_header("Set-Cookie", "session=SECRETCOOKIE; HttpOnly")
                self.send_header("X-Echo", f"{self.path} {self.headers.get('Authorization')}")
                data = json.dumps(echo).encode()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self._reply(200, json.dumps(echo).encode())
        elif url.path.startswith("/status/"):
            self._reply(int(url.path.rsplit("/", 1)[1]), b"the error page", "text/plain")
        elif url.path == "/big":
            self._reply(200, b"y" * 10_000, "text/plain")
        elif url.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/echo")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._reply(404, b"not here", "text/plain")

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


Runner = Callable[[HttpOp, ToolContext], ToolOutput]


def _sync(op: HttpOp, ctx: ToolContext) -> ToolOutput:
    return HTTP.run(op, ctx)


def _async(op: HttpOp, ctx: ToolContext) -> ToolOutput:
    assert HTTP.arun is not None
    return asyncio.run(HTTP.arun(op, ctx))  # type: ignore[arg-type]


@pytest.fixture(params=[_sync, _async], ids=["sync", "async"])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., ToolOutput]:
    runner: Runner = request.param
    ctx = ToolContext(root=tmp_path, plan_dir=tmp_path)
    return lambda **kw: runner(HttpOp(id="h", **kw), ctx)


def test_get_with_params_and_headers(run: Callable[..., ToolOutput], server: str) -> None:
    out = run(url=f"{server}/echo", params={"q": "x y"}, headers={"X-Token": "abc"})
    assert out.error is None
    v = out.value
    assert v["status"] == 200
    assert v["headers"]["x-test"] == "yes"
    assert v["url"] == f"{server}/echo?q=x+y"
    assert v["truncated"] is False
    echo = json.loads(v["body"])
    assert echo["method"] == "GET"
    assert echo["query"] == {"q": "x y"}
    assert echo["headers"]["x-token"] == "abc"
    assert out.bytes_out == len(v["body"].encode())
    assert out.summary.startswith(f"GET {server}/echo → 200 (")
    assert out.summary.endswith(" ms)")


def test_params_add_to_the_urls_query(run: Callable[..., ToolOutput], server: str) -> None:
    out = run(url=f"{server}/echo?a=1&b=2", params={"b": "3", "c": "x y"})
    assert json.loads(out.value["body"])["query"] == {"a": "1", "b": "3", "c": "x y"}
    out = run(url=f"{server}/echo?a=1")
    assert json.loads(out.value["body"])["query"] == {"a": "1"}
    assert out.value["url"] == f"{server}/echo?a=1"


SECRETS = ("sk-test-SECRET123", "SECRETCOOKIE", "bearer-SECRET789", "pw-SECRETPASS", "tok-SECRET")


def test_the_value_holds_no_secret(run: Callable[..., ToolOutput], server: str) -> None:
    """Given as a param (and again under a plain name), a header, userinfo, a URL parameter;
    sent back in a cookie, an echoed header, the body: recorded nowhere."""
    key = "sk-test-SECRET123"
    host = server.removeprefix("http://")
    out = run(
        url=f"http://user:pw-SECRETPASS@{host}/login?access_token=tok-SECRET&page=2",
        params={"api_key": key, "q": key},
        headers={"Authorization": "Bearer bearer-SECRET789", "Accept": "application/json"},
    )
    assert out.error is None
    v = out.value
    recorded = json.dumps([v, out.summary])
    for secret in SECRETS:
        assert secret not in recorded, secret
    assert v["headers"]["set-cookie"] == "[redacted]"
    assert v["url"] == (
        f"http://[redacted]@{host}/login?access_token=[redacted]&page=2"
        "&api_key=[redacted]&q=[redacted]"
    )
    echo = json.loads(v["body"])
    assert echo["query"] == {
        "access_token": "[redacted]",
        "page": "2",
        "api_key": "[redacted]",
        "q": "[redacted]",
    }
    # httpx sends the userinfo as Basic credentials, in place of the Authorization header.
    assert echo["headers"]["authorization"] == "Basic [redacted]"
    assert v["headers"]["x-echo"].endswith(" Basic [redacted]")
    assert echo["headers"]["accept"] == "application/json"
    assert out.summary.startswith(
        f"GET http://[redacted]@{host}/login?access_token=[redacted]&page=2 → 200 ("
    )
    assert out.bytes_out > len(v["body"].encode())  # counts what came, not what is shown


def test_failures_name_no_secret(run: Callable[..., ToolOutput], server: str) -> None:
    out = run(url=f"{server}/status/401?token=tok-SECRET", expect_status=[200])
    assert out.error == "HTTP 401 Unauthorized"
    assert "tok-SECRET" not in json.dumps([out.value, out.summary])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(OpError) as info:
        run(url=f"http://u:pw-SECRETPASS@127.0.0.1:{port}/x?api_key=sk-test-SECRET123")
    message = str(info.value)
    assert message.startswith(f"GET http://[redacted]@127.0.0.1:{port}/x?api_key=[redacted] ")
    assert not any(secret in message for secret in SECRETS)


def test_post_json(run: Callable[..., ToolOutput], server: str) -> None:
    out = run(url=f"{server}/echo", method="post", json={"a": [1, 2], "b": None})
    echo = json.loads(out.value["body"])
    assert echo["method"] == "POST"
    assert json.loads(echo["body"]) == {"a": [1, 2], "b": None}
    assert echo["headers"]["content-type"] == "application/json"


def test_put_text_body(run: Callable[..., ToolOutput], server: str) -> None:
    out = run(url=f"{server}/echo", method="PUT", body="héllo", headers={"Content-Type": "x/y"})
    echo = json.loads(out.value["body"])
    assert (echo["method"], echo["body"]) == ("PUT", "héllo")
    assert echo["headers"]["content-type"] == "x/y"


def test_error_status_keeps_value(run: Callable[..., ToolOutput], server: str) -> None:
    out = run(url=f"{server}/status/404")
    assert out.error == "HTTP 404 Not Found"
    assert out.value["status"] == 404
    assert out.value["body"] == "the error page"
    out = run(url=f"{server}/status/500")
    assert out.error == "HTTP 500 Internal Server Error"


def test_expect_status(run: Callable[..., ToolOutput], server: str) -> None:
    assert run(url=f"{server}/status/404", expect_status=[404]).error is None
    out = run(url=f"{server}/echo", expect_status=[201])
    assert out.error == "HTTP 200 OK"
    assert out.value["status"] == 200


def test_max_bytes_truncates(run: Callable[..., ToolOutput], server: str) -> None:
    out = run(url=f"{server}/big", max_bytes=1000)
    assert out.value["body"] == "y" * 1000
    assert out.value["truncated"] is True
    assert out.bytes_out == 1000
    full = run(url=f"{server}/big")
    assert (len(full.value["body"]), full.value["truncated"]) == (10_000, False)


def test_redirects(run: Callable[..., ToolOutput], server: str) -> None:
    out = run(url=f"{server}/redirect")
    assert (out.value["status"], out.value["url"]) == (200, f"{server}/echo")
    out = run(url=f"{server}/redirect", follow_redirects=False)
    assert out.value["status"] == 302
    assert out.error is None  # a 3xx is not a failure


def test_connection_refused(run: Callable[..., ToolOutput]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x"
    with pytest.raises(OpError, match=rf"GET {url} failed: "):
        run(url=url)


def test_cancelled_before_sending(server: str, tmp_path: Path) -> None:
    ctx = ToolContext(root=tmp_path, plan_dir=tmp_path)
    ctx.cancel.set()
    with pytest.raises(OpError, match="cancelled"):
        HTTP.run(HttpOp(id="h", url=f"{server}/echo"), ctx)


def test_validation() -> None:
    # Plans spell the JSON body "json"; Python code may use the field name.
    op = HttpOp.model_validate({"id": "h", "url": "http://x", "json": {"k": 1}})
    assert op.json_body == {"k": 1}
    assert HttpOp(id="h", url="http://x", json_body=[1]).json_body == [1]
    assert op.model_dump(by_alias=True)["json"] == {"k": 1}
    with pytest.raises(ValidationError, match="either body or json"):
        HttpOp.model_validate({"id": "h", "url": "http://x", "body": "a", "json": 1})
    with pytest.raises(ValidationError, match="http:// or https://"):
        HttpOp(id="h", url="ftp://x")
    with pytest.raises(ValidationError, match="invalid HTTP method"):
        HttpOp(id="h", url="http://x", method="GET /")
