"""``http``: one HTTP request with httpx, sync (``httpx.Client``) or async (``httpx.AsyncClient``).

Both paths share everything but the I/O calls: :func:`_request_args` builds the request,
:class:`_Body` caps the body at ``max_bytes`` while it streams in, :func:`_output` shapes the
result. A status the op did not expect (by default any status >= 400) fails the op but keeps
the response as its value, so an error page is not lost; a network error raises
:class:`~truepar.errors.OpError`.

Secrets never leave the tool (:mod:`truepar.tools.secrets`): the value, summary and errors carry
URLs with their userinfo and secret-named parameters redacted, secret-named response headers
(``set-cookie``, ``authorization`` ...) as ``[redacted]``, and every secret the op was given (in
``headers``, ``params``, ``json`` or its URL) removed wherever it turns up.

A 429 or 503 with ``Retry-After`` is waited for and sent again inside the attempt, bounded
(:mod:`truepar.tools.retry_after`); the sync wait is on ``ctx.cancel``, so a timeout or cancel
ends it at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Literal

import httpx
from pydantic import ConfigDict, Field, field_validator, model_validator

from truepar.errors import OpError, ThrottledError
from truepar.tools.base import DEFAULT_MAX_BYTES, Tool, ToolContext, ToolOutput
from truepar.tools.retry_after import RetryAfterOp, ServerPacing
from truepar.tools.secrets import (
    REDACTED,
    is_secret_name,
    redact_url,
    scrubber,
    secret_values,
    url_secrets,
)
from truepar.units import fmt_bytes

#: httpx timeout (connect, read, write, pool) when the op sets none. The scheduler's own
#: timeout, by cancellation, still applies on top.
DEFAULT_TIMEOUT_S = 30.0


class HttpOp(RetryAfterOp):
    """Send ``method url`` with optional ``headers``, ``params`` and ``body`` or ``json``;
    wait and send again as a 429/503's ``Retry-After`` asks (``retry_after_*``)."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    tool: Literal["http"] = "http"
    url: str
    method: str = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    #: A text body, sent UTF-8 encoded. Exclusive with ``json``.
    body: str | None = None
    #: A JSON body (written ``json`` in a plan). Exclusive with ``body``.
    json_body: Any = Field(default=None, alias="json")
    params: dict[str, str] = Field(default_factory=dict)
    max_bytes: int = Field(default=DEFAULT_MAX_BYTES, gt=0)
    follow_redirects: bool = True
    #: Statuses that count as success; when unset, any status below 400.
    expect_status: tuple[int, ...] | None = None

    @field_validator("method")
    @classmethod
    def _upper(cls, v: str) -> str:
        if not v.isalpha():
            raise ValueError(f"invalid HTTP method {v!r}")
        return v.upper()

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.lower().startswith(("http://", "https://")):
            raise ValueError(f"url {redact_url(v)!r} must start with http:// or https://")
        return v

    @model_validator(mode="after")
    def _one_body(self) -> HttpOp:
        if self.body is not None and self.json_body is not None:
            raise ValueError("give either body or json, not both")
        return self

    def ok_status(self, status: int) -> bool:
        if self.expect_status is not None:
            return status in self.expect_status
        return status < 400

    def secrets(self) -> set[str]:
        """Every secret value this op was given: under secret names in ``headers``, ``params``
        and a ``json`` object, and in its URL (userinfo, secret-named query parameters)."""
        found = secret_values(self.headers) | secret_values(self.params) | url_secrets(self.url)
        if isinstance(self.json_body, dict):
            found |= secret_values(self.json_body)
        return found

    def shown_url(self) -> str:
        """The op's URL as it may be recorded: secrets redacted."""
        return scrubber(self.secrets())(redact_url(self.url))


def _request_args(op: HttpOp) -> dict[str, Any]:
    """Keyword arguments of ``client.stream`` (sync or async) for ``op``.

    ``params`` are added to the URL's own query, never in its place (httpx's ``params=``
    argument replaces the query, and an empty one erases it).
    """
    url = httpx.URL(op.url)
    if op.params:
        url = url.copy_merge_params(op.params)
    args: dict[str, Any] = {
        "method": op.method,
        "url": url,
        "headers": op.headers,
        "timeout": httpx.Timeout(op.timeout or DEFAULT_TIMEOUT_S),
    }
    if op.body is not None:
        args["content"] = op.body.encode("utf-8")
    elif op.json_body is not None:
        args["json"] = op.json_body
    return args


def _failed(op: HttpOp, e: Exception, pacing: ServerPacing) -> OpError:
    reason = scrubber(op.secrets())(str(e) or type(e).__name__)
    return _error(f"{op.method} {op.shown_url()} failed: {reason}", pacing)


def _cancelled(op: HttpOp, pacing: ServerPacing) -> OpError:
    return _error(f"{op.method} {op.shown_url()} cancelled", pacing)


def _error(message: str, pacing: ServerPacing) -> OpError:
    """An error that says, when the server throttled the attempt first, how often and how long
    it waited (and carries the count, for an ``adaptive`` resource)."""
    if not pacing.throttled:
        return OpError(message)
    return ThrottledError(f"{message} ({pacing.note()})", pacing.throttled)


#: Response headers that hold URLs: recorded with :func:`redact_url`.
_URL_HEADERS = ("location", "content-location", "refresh")


def _safe_headers(headers: httpx.Headers, scrub: Callable[[str], str]) -> dict[str, str]:
    """Response headers as recorded: secret-named ones (``set-cookie``, ``authorization``,
    ``proxy-authorization``, ``cookie`` ...) redacted, URLs redacted, known secrets removed."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        if is_secret_name(name):
            out[name] = REDACTED
        elif name in _URL_HEADERS:
            out[name] = scrub(redact_url(value))
        else:
            out[name] = scrub(value)
    return out


class _Body:
    """The response body, kept up to ``max_bytes``; :meth:`add` says when to stop reading."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.chunks: list[bytes] = []
        self.size = 0
        self.truncated = False

    def add(self, chunk: bytes) -> bool:
        """Keep ``chunk`` (or its head); false once the cap is passed and reading can stop."""
        room = self.max_bytes - self.size
        if len(chunk) > room:
            chunk = chunk[:room]
            self.truncated = True
        self.chunks.append(chunk)
        self.size += len(chunk)
        return not self.truncated


def _output(
    op: HttpOp, response: httpx.Response, body: _Body, started: float, pacing: ServerPacing
) -> ToolOutput:
    ms = (time.perf_counter() - started) * 1000
    data = b"".join(body.chunks)
    status = response.status_code
    scrub = scrubber(op.secrets())
    value = {
        "status": status,
        "headers": _safe_headers(response.headers, scrub),
        "body": scrub(data.decode(response.encoding or "utf-8", "replace")),
        "truncated": body.truncated,
        "url": scrub(redact_url(str(response.url))),
    }
    summary = f"{op.method} {op.shown_url()} → {status} ({fmt_bytes(len(data))}, {ms:.0f} ms)"
    if body.truncated:
        summary += " (truncated)"
    if pacing.throttled:
        summary += f" {pacing.note()}"
    error = None
    if not op.ok_status(status):
        error = scrub(pacing.explain(f"HTTP {status} {response.reason_phrase}".rstrip()))
    return ToolOutput(
        value=value,
        summary=summary,
        bytes_out=len(data),
        error=error,
        throttled=pacing.throttled,
    )


def _wait_for(op: HttpOp, response: httpx.Response, pacing: ServerPacing) -> float | None:
    """Seconds to wait before sending again (a throttling answer with ``Retry-After``), or
    ``None``: this response is the answer, read its body."""
    status = response.status_code
    if op.ok_status(status):
        return None
    return pacing.next_wait(status, response.headers)


def run_http(op: HttpOp, ctx: ToolContext) -> ToolOutput:
    """Send the request with a blocking client; ``ctx.cancel`` is checked between chunks and
    ends a ``Retry-After`` wait at once."""
    pacing = ServerPacing(op)
    if ctx.cancelled:
        raise _cancelled(op, pacing)
    started = time.perf_counter()
    try:
        with httpx.Client(follow_redirects=op.follow_redirects) as client:
            while True:
                body = _Body(op.max_bytes)
                with client.stream(**_request_args(op)) as response:
                    wait_s = _wait_for(op, response, pacing)
                    if wait_s is None:
                        for chunk in response.iter_bytes():
                            if ctx.cancelled:
                                raise _cancelled(op, pacing)
                            if not body.add(chunk):
                                break
                        break
                waited = time.perf_counter()
                cancelled = ctx.cancel.wait(wait_s)
                pacing.record_wait(waited)
                if cancelled:
                    raise _cancelled(op, pacing)
    except (httpx.HTTPError, httpx.InvalidURL) as e:
        raise _failed(op, e, pacing) from e
    return _output(op, response, body, started, pacing)


async def arun_http(op: HttpOp, ctx: ToolContext) -> ToolOutput:
    """Send the request with ``httpx.AsyncClient``; cancellation arrives as CancelledError,
    in a ``Retry-After`` wait too."""
    pacing = ServerPacing(op)
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(follow_redirects=op.follow_redirects) as client:
            while True:
                body = _Body(op.max_bytes)
                async with client.stream(**_request_args(op)) as response:
                    wait_s = _wait_for(op, response, pacing)
                    if wait_s is None:
                        async for chunk in response.aiter_bytes():
                            if not body.add(chunk):
                                break
                        break
                waited = time.perf_counter()
                try:
                    await asyncio.sleep(wait_s)
                finally:
                    pacing.record_wait(waited)
    except (httpx.HTTPError, httpx.InvalidURL) as e:
        raise _failed(op, e, pacing) from e
    return _output(op, response, body, started, pacing)


HTTP = Tool("http", HttpOp, run_http, arun_http)
