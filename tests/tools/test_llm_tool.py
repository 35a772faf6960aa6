"""The ``llm`` tool against a local server that speaks the OpenAI chat-completions protocol.

The tool talks to it through the real ``openai`` client exactly as it would to Ollama or OpenAI;
only ``base_url`` differs. The server records what it was sent and reports token counts of its
own choosing, so the tests can check that what truepar records is what the server said.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import truepar
from helpers.http_server import no_proxy, serving
from helpers.plans import make_plan
from truepar import Status
from truepar.errors import OpError
from truepar.plan.models import op_from_dict
from truepar.tools.base import ToolContext
from truepar.tools.llm import LLM, PLACEHOLDER_API_KEY, LlmOp

#: What the server saw: one ``{"path", "headers", "body"}`` per request.
Seen = list[dict[str, Any]]


def _completion(model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The reply: the last user message upper-cased; tokens counted the server's own way."""
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages) + 11
    message: dict[str, Any] = {"role": "assistant", "content": messages[-1]["content"].upper()}
    finish = "stop"
    if model == "tool-caller":
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "a.txt"}'},
                }
            ],
        }
        finish = "tool_calls"
    reply: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": 7,
            "total_tokens": prompt_tokens + 7,
        },
    }
    if model == "no-usage":
        del reply["usage"]
    return reply


def _handler(seen: Seen) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n) or b"{}")
            headers = {k.lower(): v for k, v in self.headers.items()}
            seen.append({"path": self.path, "headers": headers, "body": body})
            if self.path != "/v1/chat/completions":
                self._reply(404, {"error": {"message": "no such route", "type": "invalid"}})
                return
            model = body.get("model", "")
            if model == "slow":
                time.sleep(3)
            if model == "broken":
                error = {"message": "the model crashed", "type": "server_error", "code": None}
                self._reply(500, {"error": error})
                return
            try:
                self._reply(200, _completion(model, body["messages"]))
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout): nothing to answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Seen]]:
    seen: Seen = []
    with serving(_handler(seen)) as port:
        yield f"http://127.0.0.1:{port}/v1", seen


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    no_proxy(monkeypatch)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def _last(seen: Seen) -> dict[str, Any]:
    return seen[-1]


def test_records_the_tokens_the_server_reports(
    backend: str, server: tuple[str, Seen], tmp_path: Path
) -> None:
    url, seen = server
    op = LlmOp(id="ask", base_url=url, model="tiny", prompt="why is the sky blue")
    trace = truepar.run(make_plan(tmp_path, [op], backend=backend))
    result = trace.results["ask"]
    assert result.status is Status.OK, result
    sent = _last(seen)["body"]
    expected = _completion("tiny", sent["messages"])["usage"]
    value = result.value
    assert value["content"] == "WHY IS THE SKY BLUE"
    assert value["prompt_tokens"] == expected["prompt_tokens"] == 5 + 11
    assert value["completion_tokens"] == expected["completion_tokens"]
    assert value["total_tokens"] == expected["total_tokens"]
    assert (value["finish_reason"], value["model"], value["tool_calls"]) == ("stop", "tiny", [])
    span = trace.spans_of("ask")[0]
    assert "16 in / 7 out tokens" in span.summary
    assert span.bytes_out == len("WHY IS THE SKY BLUE")
    # the span's (and the context budget's) result tokens are the server's count, not an estimate
    assert span.tokens_out == expected["completion_tokens"] == 7


def test_the_server_sees_the_exact_request(
    server: tuple[str, Seen], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, seen = server
    monkeypatch.setenv("MY_LLM_KEY", "sk-test-123")
    history = (
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "hi there"},
    )
    op = LlmOp(
        id="ask",
        base_url=url,
        model="tiny",
        system="be brief",
        messages=history,
        prompt="and now?",
        max_tokens=32,
        temperature=0.2,
        api_key_env="MY_LLM_KEY",
        extra_body={"seed": 7},
    )
    out = LLM.run(op, ToolContext(Path.cwd(), Path.cwd()))
    request = _last(seen)
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == "Bearer sk-test-123"
    assert request["body"]["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "hi there"},
        {"role": "user", "content": "and now?"},
    ]
    assert request["body"]["model"] == "tiny"
    assert request["body"]["max_tokens"] == 32
    assert request["body"]["temperature"] == 0.2
    assert request["body"]["seed"] == 7
    assert "stream" not in request["body"] or request["body"]["stream"] is False
    assert out.value["content"] == "AND NOW?"


def test_a_placeholder_key_when_none_is_set(server: tuple[str, Seen]) -> None:
    url, seen = server
    op = LlmOp(id="ask", base_url=url, model="tiny", prompt="x")
    assert LLM.arun is not None
    asyncio.run(LLM.arun(op, ToolContext(Path.cwd(), Path.cwd())))
    assert _last(seen)["headers"]["authorization"] == f"Bearer {PLACEHOLDER_API_KEY}"


def test_tool_calls_come_back_in_the_value(server: tuple[str, Seen], tmp_path: Path) -> None:
    url, seen = server
    schema = {
        "type": "function",
        "function": {"name": "read_file", "parameters": {"type": "object", "properties": {}}},
    }
    op = LlmOp(id="ask", base_url=url, model="tool-caller", prompt="read a.txt", tools=(schema,))
    value = truepar.run(make_plan(tmp_path, [op], backend="async")).results["ask"].value
    assert _last(seen)["body"]["tools"] == [schema]
    assert value["finish_reason"] == "tool_calls"
    assert value["content"] == ""
    (call,) = value["tool_calls"]
    assert call["id"] == "call_1"
    assert call["function"] == {"name": "read_file", "arguments": '{"path": "a.txt"}'}


def test_a_server_without_usage_says_so(server: tuple[str, Seen], tmp_path: Path) -> None:
    url, _ = server
    op = LlmOp(id="ask", base_url=url, model="no-usage", prompt="x")
    trace = truepar.run(make_plan(tmp_path, [op]))
    assert trace.results["ask"].value["prompt_tokens"] is None
    assert "no usage reported" in trace.spans[0].summary
    assert trace.spans[0].tokens_out == truepar.estimate_tokens(trace.spans[0].bytes_out)


def test_server_error_fails_the_op_in_one_line(server: tuple[str, Seen], tmp_path: Path) -> None:
    url, seen = server
    before = len(seen)
    op = LlmOp(id="ask", base_url=url, model="broken", prompt="x")
    result = truepar.run(make_plan(tmp_path, [op])).results["ask"]
    assert result.status is Status.FAILED
    assert result.error is not None
    assert result.error.startswith(f"llm broken at {url}: HTTP 500")
    assert "\n" not in result.error
    assert len(seen) == before + 1  # the client did not retry on its own


def test_retries_are_the_engines(server: tuple[str, Seen], tmp_path: Path) -> None:
    url, seen = server
    before = len(seen)
    op = LlmOp(id="ask", base_url=url, model="broken", prompt="x", retries=1)
    trace = truepar.run(make_plan(tmp_path, [op], retry_backoff_s=0))
    assert [s.attempt for s in trace.spans] == [1, 2]
    assert len(seen) == before + 2


def test_unreachable_server(tmp_path: Path) -> None:
    op = LlmOp(id="ask", base_url="http://127.0.0.1:9/v1", model="tiny", prompt="x", timeout=5)
    result = truepar.run(make_plan(tmp_path, [op])).results["ask"]
    assert result.status is Status.FAILED
    assert "cannot connect" in (result.error or "")


@pytest.mark.parametrize("name", ["async", "threads"])
def test_timeout(name: str, server: tuple[str, Seen], tmp_path: Path) -> None:
    url, _ = server
    op = LlmOp(id="ask", base_url=url, model="slow", prompt="x", timeout=0.5)
    t0 = time.monotonic()
    trace = truepar.run(make_plan(tmp_path, [op], backend=name))
    elapsed = time.monotonic() - t0
    assert trace.results["ask"].status is Status.TIMEOUT
    assert elapsed < 2.5  # the server answers after 3 s


def test_cancelled_on_async_stops_at_once(server: tuple[str, Seen], tmp_path: Path) -> None:
    url, _ = server
    ops = [
        LlmOp(id="ask", base_url=url, model="slow", prompt="x"),
        truepar.BashOp(id="bad", argv=["false"]),
    ]
    t0 = time.monotonic()
    trace = truepar.run(make_plan(tmp_path, ops, backend="async", on_error="fail-fast"))
    assert time.monotonic() - t0 < 2.5
    assert trace.results["ask"].status is Status.CANCELLED


def test_without_the_openai_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)  # makes ``import openai`` fail
    op = LlmOp(id="ask", model="tiny", prompt="x")
    with pytest.raises(OpError, match=r"pip install 'truepar\[llm\]'"):
        LLM.run(op, ToolContext(Path.cwd(), Path.cwd()))


def test_from_a_plan_table() -> None:
    op = op_from_dict({"tool": "llm", "id": "q", "model": "llama3.2", "prompt": "hi"})
    assert isinstance(op, LlmOp)
    assert op.base_url == "http://localhost:11434/v1"
    assert op.request() == {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}


def test_tagged_llm_by_default() -> None:
    assert LlmOp(id="q", model="m", prompt="hi").tags == ("llm",)
    assert LlmOp(id="q", model="m", prompt="hi", tags="local").tags == ("local",)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "give prompt"),
        ({"prompt": "x", "base_url": "localhost:11434"}, "must start with http"),
        ({"messages": [{"content": "no role"}]}, "message #1 needs a role"),
        ({"prompt": "x", "max_tokens": 0}, "max_tokens"),
        ({"prompt": "x", "temperature": 3}, "temperature"),
        ({"prompt": "x", "model": ""}, "model"),
    ],
)
def test_invalid_fields(fields: dict[str, object], message: str) -> None:
    raw = {"id": "q", "model": "m", **fields}
    with pytest.raises(ValidationError, match=message):
        LlmOp.model_validate(raw)
