"""A redacted value appears nowhere: not in a trace, not in evidence, not in the ledger, not on
the terminal — whatever the server sends back, under whatever name the secret was given."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import truepar
from helpers.cli import truepar as truepar_cli
from helpers.http_server import no_proxy, serving
from helpers.plans import make_plan
from truepar import Status
from truepar.evidence.metadata import redact_plan
from truepar.tools.llm import LlmOp
from truepar.tools.secrets import (
    REDACTED,
    is_secret_name,
    redact_url,
    scrub,
    secret_values,
    url_secrets,
)

API_KEY = "sk-test-SECRET123"
COOKIE = "SECRETCOOKIE"
BEARER = "bearer-SECRET789"
PASSWORD = "pw-SECRETPASS"
URL_TOKEN = "tok-SECRETURL"
LLM_KEY = "sk-llm-SECRET555"
SECRETS = (API_KEY, COOKIE, BEARER, PASSWORD, URL_TOKEN)

#: What the server was sent, one ``{"path", "headers"}`` per request.
Seen = list[dict[str, Any]]


def _handler(seen: Seen) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        """``/login`` sets a session cookie and echoes the request (query and headers) in its
        body and in a header; ``/v1/chat/completions`` refuses the key, quoting it, as some
        servers do."""

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            if n:
                self.rfile.read(n)
            url = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            seen.append({"path": self.path, "headers": headers})
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/login":
                echo = json.dumps({"query": query, "headers": headers}).encode()
                self._send(
                    200,
                    echo,
                    {
                        "Content-Type": "application/json",
                        "Set-Cookie": f"session={COOKIE}; HttpOnly; Path=/",
                        "X-Echo": f"{self.path} {headers.get('authorization', '')}",
                        "Location": f"/next?access_token={URL_TOKEN}",
                    },
                )
            elif url.path == "/v1/chat/completions":
                given = headers.get("authorization", "").removeprefix("Bearer ")
                error = {"message": f"Incorrect API key provided: {given}", "type": "auth"}
                body = json.dumps({"error": error}).encode()
                self._send(401, body, {"Content-Type": "application/json"})
            else:
                self._send(404, b"not here", {"Content-Type": "text/plain"})

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Seen]]:
    seen: Seen = []
    with serving(_handler(seen)) as port:
        yield f"127.0.0.1:{port}", seen


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    no_proxy(monkeypatch)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def _plan(tmp_path: Path, host: str) -> Path:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f"""
name = "secrets"

[[op]]
id = "login"
tool = "http"
url = "http://{host}/login"
params = {{ api_key = "{API_KEY}", q = "{API_KEY}" }}
headers = {{ Authorization = "Bearer {BEARER}" }}

[[op]]
id = "in-url"
tool = "http"
url = "http://user:{PASSWORD}@{host}/login?access_token={URL_TOKEN}&page=2"

[[op]]
id = "refused"
tool = "http"
url = "http://{host}/nowhere?api_key={API_KEY}"
"""
    )
    return plan


def _run(tmp_path: Path, plan: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, bytes]]:
    """``truepar run`` with a trace, evidence and a ledger; what it wrote and printed."""
    trace, evidence, ledger = tmp_path / "trace.json", tmp_path / "ev.json", tmp_path / "l.sqlite"
    proc = truepar_cli(
        "run", str(plan), "--all", "--json", str(trace), "--evidence", str(evidence),
        "--ledger", str(ledger),
    )  # fmt: skip
    recorded = {"stdout": proc.stdout.encode(), "stderr": proc.stderr.encode()}
    for path in (trace, evidence, *tmp_path.glob("l.sqlite*")):
        if path.exists():
            recorded[path.name] = path.read_bytes()
    return proc, recorded


def test_cli_run_records_neither_the_api_key_nor_the_cookie(
    server: tuple[str, Seen], tmp_path: Path
) -> None:
    host, seen = server
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'[[op]]\nid = "login"\ntool = "http"\nurl = "http://{host}/login"\n'
        f'params = {{ api_key = "{API_KEY}" }}\n'
    )
    proc, recorded = _run(tmp_path, plan)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert API_KEY in seen[-1]["path"]  # the request carried it
    assert {"trace.json", "ev.json"} <= set(recorded)
    for name, data in recorded.items():
        assert API_KEY.encode() not in data, name
        assert COOKIE.encode() not in data, name


def test_cli_run_records_no_secret_anywhere(server: tuple[str, Seen], tmp_path: Path) -> None:
    host, seen = server
    before = len(seen)
    proc, recorded = _run(tmp_path, _plan(tmp_path, host))
    assert proc.returncode == 1, proc.stdout + proc.stderr  # "refused" gets a 404
    # The requests really carried the secrets: what follows is not vacuous.
    sent = json.dumps(seen[before:])
    for secret in (API_KEY, BEARER, URL_TOKEN):
        assert secret in sent
    trace, evidence = tmp_path / "trace.json", tmp_path / "ev.json"
    for name, data in recorded.items():
        for secret in SECRETS:
            assert secret.encode() not in data, (secret, name)

    # What is kept says where the secrets were.
    results = json.loads(trace.read_text())["results"]
    login = results["login"]["value"]
    assert login["status"] == 200
    assert login["headers"]["set-cookie"] == REDACTED
    assert f"api_key={REDACTED}" in login["url"]
    assert f"q={REDACTED}" in login["url"]
    assert login["headers"]["location"] == f"/next?access_token={REDACTED}"
    echo = json.loads(login["body"])
    assert echo["query"] == {"api_key": REDACTED, "q": REDACTED}
    assert echo["headers"]["authorization"] == REDACTED
    in_url = results["in-url"]["value"]
    assert in_url["url"].startswith(f"http://{REDACTED}@{host}/login?")
    assert f"access_token={REDACTED}&page=2" in in_url["url"]
    assert results["refused"]["status"] == "failed"
    ops = {op["id"]: op for op in json.loads(evidence.read_text())["plan"]["ops"]}
    assert ops["login"]["params"] == {"api_key": REDACTED, "q": REDACTED}
    assert ops["login"]["headers"] == {"Authorization": REDACTED}
    assert ops["in-url"]["url"] == (
        f"http://{REDACTED}@{host}/login?access_token={REDACTED}&page=2"
    )
    assert ops["refused"]["url"] == f"http://{host}/nowhere?api_key={REDACTED}"


def test_llm_errors_never_quote_the_key(
    server: tuple[str, Seen], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, seen = server
    monkeypatch.setenv("OPENAI_API_KEY", LLM_KEY)
    op = LlmOp(id="ask", base_url=f"http://{host}/v1", model="m", prompt="x")
    trace = truepar.run(make_plan(tmp_path, [op]))
    result = trace.results["ask"]
    assert result.status is Status.FAILED
    assert LLM_KEY in json.dumps(seen[-1])  # the server got the key, and quoted it back
    assert result.error == (
        f"llm m at http://{host}/v1: HTTP 401: Error code: 401 - Incorrect API key provided: "
        f"{REDACTED}"
    )
    assert LLM_KEY not in json.dumps(trace.to_json())


def test_llm_unreachable_server_names_no_userinfo(tmp_path: Path) -> None:
    op = LlmOp(
        id="ask", base_url=f"http://u:{PASSWORD}@127.0.0.1:9/v1", model="m", prompt="x", timeout=5
    )
    trace = truepar.run(make_plan(tmp_path, [op]))
    assert trace.results["ask"].status is Status.FAILED
    assert PASSWORD not in json.dumps(trace.to_json())


# -- the rules, one by one -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        *("api_key", "API-KEY", "X-Api-Key", "GITHUB_TOKEN", "Authorization"),
        *("proxy-authorization", "Set-Cookie", "cookie", "client_secret", "DB_PASSWORD"),
        *("session_id", "credentials"),
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["q", "page", "Accept", "content-type", "HOME", "x-request-id"])
def test_plain_names(name: str) -> None:
    assert not is_secret_name(name)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://h/x?q=1&page=2", "https://h/x?q=1&page=2"),
        ("https://h/x?api_key=sk-1&q=1", f"https://h/x?api_key={REDACTED}&q=1"),
        ("https://h/x?API%5FKEY=sk-1", f"https://h/x?API%5FKEY={REDACTED}"),
        ("https://u:p@h:8/x", f"https://{REDACTED}@h:8/x"),
        ("https://tok@github.com/o/r.git", f"https://{REDACTED}@github.com/o/r.git"),
        ("https://h/cb#access_token=abc&state=s", f"https://h/cb#access_token={REDACTED}&state=s"),
        ("https://h/x?flag&token=", f"https://h/x?flag&token={REDACTED}"),
        ("not a url", "not a url"),
        ("http://[::1", "http://[::1"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_url_secrets_include_basic_credentials() -> None:
    found = url_secrets("https://user:p%40ss@h/?token=t0k3n")
    assert {"user:p%40ss", "p@ss", "t0k3n", "dXNlcjpwQHNz"} <= found


def test_secret_values_and_scrub() -> None:
    values = secret_values({"Authorization": "Bearer abc123", "Cookie": "a=x1y2z3; b=1", "q": "v"})
    assert {"Bearer abc123", "abc123", "x1y2z3"} <= values
    assert "v" not in values
    text = "key abc123, quoted abc123 and form-encoded a%2Fb+c, short 1"
    assert scrub(text, {"abc123", "a/b c", "1"}) == (
        f"key {REDACTED}, quoted {REDACTED} and form-encoded {REDACTED}, short 1"
    )


def test_redact_plan_covers_urls_and_copies_of_secrets() -> None:
    plan: dict[str, list[dict[str, Any]]] = {
        "ops": [
            {"id": "a", "tool": "http", "url": "https://x/?api_key=sk-0123456789&q=1"},
            {"id": "b", "tool": "llm", "base_url": "https://u:pw-12345@x/v1", "model": "m"},
            {
                "id": "c",
                "tool": "bash",
                "env": {"GH_TOKEN": "ghp_abcdef"},
                "argv": ["curl", "-H", "Authorization: token ghp_abcdef", "https://x"],
            },
            {"id": "d", "tool": "http", "url": "https://x/", "json_body": {"client_secret": "cs"}},
        ]
    }
    a, b, c, d = redact_plan(plan)["ops"]
    assert a["url"] == f"https://x/?api_key={REDACTED}&q=1"
    assert b["base_url"] == f"https://{REDACTED}@x/v1"
    assert c["env"] == {"GH_TOKEN": REDACTED}
    assert c["argv"] == ["curl", "-H", f"Authorization: token {REDACTED}", "https://x"]
    assert d["json_body"] == {"client_secret": REDACTED}
    assert plan["ops"][0]["url"] == "https://x/?api_key=sk-0123456789&q=1"  # input untouched
