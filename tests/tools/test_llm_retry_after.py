"""The ``llm`` tool honours ``Retry-After`` on a 429 or 503, through the real ``openai`` client,
against a local server speaking the chat-completions protocol that throttles on script."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import truepar
from helpers.http_server import no_proxy, serving
from helpers.plans import make_plan
from helpers.throttle import Script, chat_ok
from truepar import Status
from truepar.tools.llm import LlmOp

pytest.importorskip("openai")


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    no_proxy(monkeypatch)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def _ask(port: int, **fields: object) -> LlmOp:
    return LlmOp(
        id="ask", base_url=f"http://127.0.0.1:{port}/v1", model="tiny", prompt="hi", **fields
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["threads", "async"])
def test_waits_as_asked_then_answers(name: str, tmp_path: Path) -> None:
    script = Script((429, {"Retry-After": "1"}))
    with serving(script.handler(chat_ok)) as port:
        trace = truepar.run(make_plan(tmp_path, [_ask(port)], backend=name))
    result = trace.results["ask"]
    assert result.status is Status.OK, result
    assert result.value["content"] == "hi"
    assert script.requests == 2  # the client itself never retries
    (span,) = trace.spans
    assert span.duration_s >= 1.0
    assert "after 1 × 429, waited 1." in span.summary


def test_a_503_with_retry_after_ms(tmp_path: Path) -> None:
    script = Script((503, {"retry-after-ms": "200"}))
    with serving(script.handler(chat_ok)) as port:
        trace = truepar.run(make_plan(tmp_path, [_ask(port)]))
    assert trace.results["ask"].status is Status.OK
    assert script.requests == 2
    assert trace.spans[0].duration_s >= 0.2
    assert "after 1 × 503, waited " in trace.spans[0].summary


def test_a_longer_ask_than_the_cap_fails_at_once(tmp_path: Path) -> None:
    script = Script((429, {"Retry-After": "3600"}))
    with serving(script.handler(chat_ok)) as port:
        trace = truepar.run(make_plan(tmp_path, [_ask(port, retry_after_max_s=1)]))
    result = trace.results["ask"]
    assert result.status is Status.FAILED
    assert script.requests == 1
    error = result.error or ""
    assert error.startswith(f"llm tiny at http://127.0.0.1:{port}/v1: HTTP 429: ")
    assert error.endswith(
        "the server asked to retry after 3600 s (Retry-After), more than "
        "retry_after_max_s = 1 s (after 1 × 429)"
    )
    assert "\n" not in error


@pytest.mark.parametrize("name", ["threads", "async"])
def test_a_timeout_ends_the_wait(name: str, tmp_path: Path) -> None:
    script = Script((429, {"Retry-After": "30"}))
    with serving(script.handler(chat_ok)) as port:
        t0 = time.monotonic()
        trace = truepar.run(make_plan(tmp_path, [_ask(port, timeout=0.5)], backend=name))
        took = time.monotonic() - t0
    assert trace.results["ask"].status is Status.TIMEOUT
    assert took < 10
    assert script.requests == 1


def test_without_retry_after_it_is_not_retried(tmp_path: Path) -> None:
    script = Script((429, {}))
    with serving(script.handler(chat_ok)) as port:
        result = truepar.run(make_plan(tmp_path, [_ask(port)])).results["ask"]
    assert result.status is Status.FAILED
    assert script.requests == 1
    assert "HTTP 429" in (result.error or "")


def test_bounds_and_defaults() -> None:
    op = LlmOp(id="a", model="m", prompt="x")
    assert (op.retry_after_attempts, op.retry_after_max_s) == (3, 60.0)
    with pytest.raises(ValueError, match="retry_after_max_s"):
        LlmOp(id="a", model="m", prompt="x", retry_after_max_s=float("inf"))
