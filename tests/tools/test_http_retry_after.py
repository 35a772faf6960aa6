"""The ``http`` tool honours ``Retry-After`` on a 429 or 503: it waits as told, bounded and
cancellable, and sends again — against a real server on 127.0.0.1 that throttles on script.

Times are asserted as lower bounds (the op's own span) or generous upper bounds only: nothing
here depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

import truepar
from helpers.http_server import no_proxy, serving
from helpers.plans import make_plan
from helpers.throttle import Script
from truepar import Status
from truepar.errors import ThrottledError
from truepar.tools.base import ToolContext
from truepar.tools.http import HTTP, HttpOp
from truepar.tools.retry_after import retry_after_s


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    no_proxy(monkeypatch)


def _run(tmp_path: Path, op: HttpOp, backend: str = "threads") -> truepar.RunTrace:
    return truepar.run(make_plan(tmp_path, [op], backend=backend))


def test_waits_as_asked_then_succeeds(backend: str, tmp_path: Path) -> None:
    script = Script((429, {"Retry-After": "1"}))
    with serving(script.handler()) as port:
        trace = _run(tmp_path, HttpOp(id="h", url=f"http://127.0.0.1:{port}/x"), backend)
    result = trace.results["h"]
    assert result.status is Status.OK, result
    assert script.requests == 2
    (span,) = trace.spans  # one attempt: the wait happened inside it
    assert span.duration_s >= 1.0
    assert "after 1 × 429, waited 1." in span.summary
    assert result.value["status"] == 200


def test_several_answers_are_counted_by_status(tmp_path: Path) -> None:
    script = Script(
        (429, {"Retry-After": "0"}), (503, {"Retry-After": "0"}), (429, {"Retry-After": "0"})
    )
    with serving(script.handler()) as port:
        trace = _run(tmp_path, HttpOp(id="h", url=f"http://127.0.0.1:{port}/x"))
    assert trace.results["h"].status is Status.OK
    assert script.requests == 4
    assert "after 2 × 429 + 1 × 503, waited " in trace.spans[0].summary


@pytest.mark.parametrize("runner", ["sync", "async"])
def test_a_503_is_waited_for_too(runner: str, tmp_path: Path) -> None:
    script = Script((503, {"Retry-After": "1"}))
    ctx = ToolContext(root=tmp_path, plan_dir=tmp_path)
    with serving(script.handler()) as port:
        op = HttpOp(id="h", url=f"http://127.0.0.1:{port}/x")
        t0 = time.perf_counter()
        if runner == "sync":
            out = HTTP.run(op, ctx)
        else:
            assert HTTP.arun is not None
            out = asyncio.run(HTTP.arun(op, ctx))  # type: ignore[arg-type]
        took = time.perf_counter() - t0
    assert out.error is None
    assert out.throttled == 1
    assert took >= 1.0
    assert "after 1 × 503, waited 1." in out.summary


def test_an_http_date_is_waited_for(tmp_path: Path) -> None:
    # HTTP dates have whole seconds: three seconds ahead is at least two from now.
    when = email.utils.formatdate(time.time() + 3, usegmt=True)
    script = Script((429, {"Retry-After": when}))
    with serving(script.handler()) as port:
        trace = _run(tmp_path, HttpOp(id="h", url=f"http://127.0.0.1:{port}/x"))
    assert trace.results["h"].status is Status.OK
    assert script.requests == 2
    assert trace.spans[0].duration_s >= 1.5


def test_a_longer_ask_than_the_cap_fails_at_once(backend: str, tmp_path: Path) -> None:
    script = Script((429, {"Retry-After": "3600"}))
    with serving(script.handler()) as port:
        op = HttpOp(id="h", url=f"http://127.0.0.1:{port}/x", retry_after_max_s=1)
        t0 = time.monotonic()
        trace = _run(tmp_path, op, backend)
        took = time.monotonic() - t0
    result = trace.results["h"]
    assert result.status is Status.FAILED
    assert result.error == (
        "HTTP 429 Too Many Requests: the server asked to retry after 3600 s (Retry-After), "
        "more than retry_after_max_s = 1 s"
    )
    assert script.requests == 1
    assert result.value["status"] == 429  # the answer is kept, as for any unexpected status
    assert took < 30  # not an hour


def test_a_timeout_ends_the_wait(backend: str, tmp_path: Path) -> None:
    script = Script((429, {"Retry-After": "30"}))
    with serving(script.handler()) as port:
        op = HttpOp(id="h", url=f"http://127.0.0.1:{port}/x", timeout=0.5)
        t0 = time.monotonic()
        trace = _run(tmp_path, op, backend)
        took = time.monotonic() - t0
    assert trace.results["h"].status is Status.TIMEOUT
    assert took < 10  # not the 30 s the server asked for
    assert script.requests == 1


def test_fail_fast_cancels_the_wait(tmp_path: Path) -> None:
    script = Script((429, {"Retry-After": "30"}))
    with serving(script.handler()) as port:
        ops = [
            HttpOp(id="h", url=f"http://127.0.0.1:{port}/x"),
            truepar.SleepOp(id="later", seconds=0.3),
            truepar.BashOp(id="bad", argv=["false"], after=["later"]),
        ]
        t0 = time.monotonic()
        trace = truepar.run(make_plan(tmp_path, ops, on_error="fail-fast"))
        took = time.monotonic() - t0
    assert trace.results["h"].status is Status.CANCELLED
    assert took < 10


def test_without_retry_after_the_scheduler_retries(tmp_path: Path) -> None:
    script = Script((429, {}), (429, {}))
    with serving(script.handler()) as port:
        op = HttpOp(id="h", url=f"http://127.0.0.1:{port}/x", retries=2)
        trace = truepar.run(make_plan(tmp_path, [op], retry_backoff_s=0))
    assert trace.results["h"].status is Status.OK
    assert [s.attempt for s in trace.spans] == [1, 2, 3]  # one request per attempt
    assert script.requests == 3
    assert trace.spans[0].error == "HTTP 429 Too Many Requests"
    assert "after 1 × 429" in trace.spans[0].summary


def test_attempts_are_bounded(tmp_path: Path) -> None:
    script = Script(*[(429, {"Retry-After": "0"})] * 5)
    with serving(script.handler()) as port:
        op = HttpOp(id="h", url=f"http://127.0.0.1:{port}/x", retry_after_attempts=2)
        result = _run(tmp_path, op).results["h"]
    assert result.status is Status.FAILED
    assert script.requests == 3
    assert result.error == (
        "HTTP 429 Too Many Requests: still throttled after 2 waits for Retry-After "
        "(retry_after_attempts = 2)"
    )


def test_zero_attempts_turns_it_off(tmp_path: Path) -> None:
    script = Script((429, {"Retry-After": "0"}))
    with serving(script.handler()) as port:
        op = HttpOp(id="h", url=f"http://127.0.0.1:{port}/x", retry_after_attempts=0)
        result = _run(tmp_path, op).results["h"]
    assert result.status is Status.FAILED
    assert result.error == "HTTP 429 Too Many Requests"
    assert script.requests == 1


def test_an_expected_429_is_the_answer(tmp_path: Path) -> None:
    script = Script((429, {"Retry-After": "0"}))
    with serving(script.handler()) as port:
        op = HttpOp(id="h", url=f"http://127.0.0.1:{port}/x", expect_status=(429,))
        result = _run(tmp_path, op).results["h"]
    assert result.status is Status.OK
    assert script.requests == 1


def test_secrets_stay_out_while_it_waits(tmp_path: Path) -> None:
    script = Script((429, {"Retry-After": "0"}), (429, {"Retry-After": "3600"}))
    with serving(script.handler()) as port:
        op = HttpOp(
            id="h",
            url=f"http://user:pw-SECRETPASS@127.0.0.1:{port}/x?api_key=sk-SECRET123",
            headers={"Authorization": "Bearer tok-SECRET456"},
            retry_after_max_s=5,
        )
        trace = _run(tmp_path, op)
    text = json.dumps(trace.to_json())
    assert trace.results["h"].status is Status.FAILED
    for secret in ("pw-SECRETPASS", "sk-SECRET123", "tok-SECRET456"):
        assert secret not in text
    assert "after 2 × 429, waited " in trace.spans[0].summary


def test_a_cancel_in_the_wait_says_it_was_throttled(tmp_path: Path) -> None:
    """Cancelled while it waits: the error says so and how it got there, and carries the count
    of throttling answers (an adaptive resource reads it)."""
    script = Script((429, {"Retry-After": "30"}))
    ctx = ToolContext(root=tmp_path, plan_dir=tmp_path)
    stopper = threading.Timer(0.3, ctx.request_cancel)
    with serving(script.handler()) as port:
        op = HttpOp(id="h", url=f"http://127.0.0.1:{port}/x", timeout=5)
        stopper.start()
        try:
            with pytest.raises(ThrottledError) as caught:
                HTTP.run(op, ctx)
        finally:
            stopper.cancel()
            stopper.join(timeout=10)
    assert caught.value.throttled == 1
    assert f"GET http://127.0.0.1:{port}/x cancelled (after 1 × 429, waited " in str(caught.value)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "120"}, 120.0),
        ({"Retry-After": " 1.5 "}, 1.5),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}, 30.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:27:00 GMT"}, 0.0),  # in the past: now
        ({"Retry-After": "2", "retry-after-ms": "250"}, 0.25),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "-3"}, None),
        ({}, None),
    ],
)
def test_retry_after_forms(headers: dict[str, str], seconds: float | None) -> None:
    now = email.utils.parsedate_to_datetime("Wed, 21 Oct 2015 07:28:00 GMT").timestamp()
    assert retry_after_s(httpx.Headers(headers), now_unix_s=now) == seconds


@pytest.mark.parametrize(
    "fields",
    [
        {"retry_after_attempts": -1},
        {"retry_after_attempts": 101},
        {"retry_after_max_s": -1},
        {"retry_after_max_s": float("inf")},
        {"retry_after_max_s": float("nan")},
        {"retry_after_max_s": 31 * 24 * 3600},
    ],
)
def test_bounds(fields: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        HttpOp(id="h", url="http://127.0.0.1/", **fields)


def test_defaults() -> None:
    op = HttpOp(id="h", url="http://127.0.0.1/")
    assert (op.retry_after_attempts, op.retry_after_max_s) == (3, 60.0)
