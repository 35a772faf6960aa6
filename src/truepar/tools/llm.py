"""``llm``: one chat completion from any OpenAI-compatible server (Ollama, vLLM, llama.cpp, OpenAI).

It speaks through the official ``openai`` client (the optional extra ``llm``), so what reaches the
server is exactly what any other client would send; only ``base_url`` says which server. The
value keeps the token counts the *server* reports (``usage.prompt_tokens`` and
``usage.completion_tokens``): an op's context use is measured, never estimated.

The client makes no retries (``max_retries = 0``): retrying is the scheduler's job, where every
attempt gets its own span — except where the server says when to come back: a 429 or 503 with
``Retry-After`` is waited for (bounded, cancellable) and sent again inside the attempt, as the
``http`` tool does (:mod:`truepar.tools.retry_after`). The async backend uses ``AsyncOpenAI``,
so a timeout or cancel closes the request at once. The other backends use the blocking
``OpenAI`` client with the op's timeout as its own: a blocked socket read cannot be interrupted
from another thread, so a cancelled call runs on until that timeout, and the threads backend
reports its thread as abandoned meanwhile.

Secrets stay out of what it records: its summary and errors show ``base_url`` with userinfo and
secret-named query parameters redacted, and the API key (and those URL secrets) removed from any
message the client or server wrote.
"""

from __future__ import annotations

import asyncio
import os
import time
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from truepar.errors import OpError, ThrottledError
from truepar.tools.base import Tool, ToolContext, ToolOutput
from truepar.tools.retry_after import RetryAfterOp, ServerPacing
from truepar.tools.secrets import redact_url, scrub, url_secrets

if TYPE_CHECKING:
    import openai
    from openai.types.chat import ChatCompletion

#: Ollama's OpenAI-compatible endpoint on its default port.
DEFAULT_BASE_URL = "http://localhost:11434/v1"
#: The client's timeout when the op has none: long generations take minutes. The scheduler's
#: own timeout still applies on top.
DEFAULT_TIMEOUT_S = 600.0
#: Sent when the key's variable is unset: local servers (Ollama, llama.cpp) accept any key, and
#: the client refuses to send a request without one.
PLACEHOLDER_API_KEY = "no-key"
_INSTALL = "the llm tool needs the openai client: pip install 'truepar[llm]'"


class LlmOp(RetryAfterOp):
    """Ask ``model`` at ``base_url`` to continue ``messages`` (or answer ``prompt``)."""

    tool: Literal["llm"] = "llm"
    model: str = Field(min_length=1)
    base_url: str = DEFAULT_BASE_URL
    #: Chat messages as the API takes them: ``{"role": "user", "content": "..."}`` ...
    messages: tuple[dict[str, Any], ...] = ()
    #: Shorthand for one more user message, after ``messages``.
    prompt: str | None = None
    #: A system message put before ``messages``.
    system: str | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0, le=2)
    #: Tool (function) schemas offered to the model; its calls come back in ``tool_calls``.
    tools: tuple[dict[str, Any], ...] = ()
    #: The environment variable holding the API key.
    api_key_env: str = "OPENAI_API_KEY"
    #: More request fields the server understands (``seed``, ``stop``, Ollama's ``options``).
    extra_body: dict[str, Any] = Field(default_factory=dict)
    #: Marks the op as a call to a rate-limited LLM service (budgets, lint), unless told otherwise.
    tags: tuple[str, ...] = ("llm",)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.lower().startswith(("http://", "https://")):
            raise ValueError(f"base_url {redact_url(v)!r} must start with http:// or https://")
        return v

    @field_validator("messages")
    @classmethod
    def _roles(cls, v: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
        for i, message in enumerate(v):
            if not isinstance(message.get("role"), str):
                raise ValueError(f"message #{i + 1} needs a role ('system', 'user', ...)")
        return v

    @model_validator(mode="after")
    def _something_to_say(self) -> LlmOp:
        if not self.messages and self.prompt is None:
            raise ValueError("give prompt = '...' or messages = [{role, content}, ...]")
        return self

    def chat(self) -> list[dict[str, Any]]:
        """The messages sent: ``system``, then ``messages``, then ``prompt``."""
        out: list[dict[str, Any]] = []
        if self.system is not None:
            out.append({"role": "system", "content": self.system})
        out.extend(dict(m) for m in self.messages)
        if self.prompt is not None:
            out.append({"role": "user", "content": self.prompt})
        return out

    def request(self) -> dict[str, Any]:
        """Keyword arguments of ``chat.completions.create``."""
        args: dict[str, Any] = {"model": self.model, "messages": self.chat()}
        if self.max_tokens is not None:
            args["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            args["temperature"] = self.temperature
        if self.tools:
            args["tools"] = [dict(t) for t in self.tools]
        if self.extra_body:
            args["extra_body"] = dict(self.extra_body)
        return args

    def api_key(self) -> str:
        return os.environ.get(self.api_key_env) or PLACEHOLDER_API_KEY

    def client_args(self) -> dict[str, Any]:
        """Keyword arguments of ``OpenAI`` / ``AsyncOpenAI``."""
        return {
            "base_url": self.base_url,
            "api_key": self.api_key(),
            "timeout": self.timeout or DEFAULT_TIMEOUT_S,
            "max_retries": 0,
        }

    def secrets(self) -> set[str]:
        """The API key (unless the placeholder) and what ``base_url`` holds: userinfo, the values
        of secret-named query parameters."""
        key = self.api_key()
        return url_secrets(self.base_url) | ({key} if key != PLACEHOLDER_API_KEY else set())

    def where(self) -> str:
        """``llm MODEL at BASE_URL`` for messages, with secrets redacted."""
        return scrub(f"llm {self.model} at {redact_url(self.base_url)}", self.secrets())


def _sdk() -> ModuleType:
    """The ``openai`` package, imported on first use: it is an optional extra."""
    try:
        import openai  # noqa: PLC0415 - an optional extra, imported when an llm op runs
    except ImportError:
        raise OpError(_INSTALL) from None
    return openai


def _failed(op: LlmOp, exc: openai.OpenAIError, sdk: ModuleType, pacing: ServerPacing) -> OpError:
    """The client's error in one line, naming the model and the server; no secret in it."""
    if isinstance(exc, sdk.APITimeoutError):
        message = "timed out"
    elif isinstance(exc, sdk.APIStatusError):
        message = pacing.explain(f"HTTP {exc.status_code}: {exc.message}")
    elif isinstance(exc, sdk.APIConnectionError):
        cause = exc.__cause__
        message = "cannot connect" + (f" ({cause})" if cause else "")
    else:
        message = str(exc)
    return _error(op, message, pacing)


def _error(op: LlmOp, message: str, pacing: ServerPacing) -> OpError:
    text = scrub(f"{op.where()}: {message}", op.secrets())
    if not pacing.throttled:
        return OpError(text)
    return ThrottledError(f"{text} ({pacing.note()})", pacing.throttled)


def _wait_for(exc: openai.OpenAIError, sdk: ModuleType, pacing: ServerPacing) -> float | None:
    """Seconds to wait before asking again (a 429/503 with ``Retry-After``), or ``None``."""
    if not isinstance(exc, sdk.APIStatusError):
        return None
    wait_s: float | None = pacing.next_wait(exc.status_code, exc.response.headers)
    return wait_s


def _output(
    op: LlmOp, completion: ChatCompletion, started: float, pacing: ServerPacing
) -> ToolOutput:
    if not completion.choices:
        raise _error(op, "the server returned no choices", pacing)
    choice = completion.choices[0]
    content = choice.message.content or ""
    usage = completion.usage
    prompt_tokens = usage.prompt_tokens if usage is not None else None
    completion_tokens = usage.completion_tokens if usage is not None else None
    value = {
        "content": content,
        "finish_reason": choice.finish_reason,
        "model": completion.model,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": usage.total_tokens if usage is not None else None,
        "tool_calls": [c.model_dump() for c in choice.message.tool_calls or ()],
        "id": completion.id,
    }
    ms = (time.perf_counter() - started) * 1000
    tokens = (
        f"{prompt_tokens} in / {completion_tokens} out tokens"
        if usage is not None
        else "no usage reported"
    )
    summary = f"{completion.model} → {choice.finish_reason}, {tokens} ({ms:.0f} ms)"
    if pacing.throttled:
        summary += f" {pacing.note()}"
    return ToolOutput(
        value,
        summary,
        len(content.encode("utf-8")),
        tokens_out=completion_tokens,
        throttled=pacing.throttled,
    )


def run_llm(op: LlmOp, ctx: ToolContext) -> ToolOutput:
    """One request with the blocking client (see the module docstring on cancellation); a
    ``Retry-After`` wait ends at once on ``ctx.cancel``."""
    sdk = _sdk()
    pacing = ServerPacing(op)
    if ctx.cancelled:
        raise OpError(f"llm {op.model} cancelled")
    started = time.perf_counter()
    try:
        with sdk.OpenAI(**op.client_args()) as client:
            while True:
                try:
                    completion = client.chat.completions.create(**op.request())
                    break
                except sdk.OpenAIError as exc:
                    wait_s = _wait_for(exc, sdk, pacing)
                    if wait_s is None:
                        raise
                waited = time.perf_counter()
                cancelled = ctx.cancel.wait(wait_s)
                pacing.record_wait(waited)
                if cancelled:
                    raise _error(op, "cancelled", pacing)
    except sdk.OpenAIError as exc:
        raise _failed(op, exc, sdk, pacing) from exc
    return _output(op, completion, started, pacing)


async def arun_llm(op: LlmOp, ctx: ToolContext) -> ToolOutput:
    """One request with ``AsyncOpenAI``; cancellation arrives as CancelledError and closes it
    (or ends a ``Retry-After`` wait)."""
    sdk = _sdk()
    pacing = ServerPacing(op)
    started = time.perf_counter()
    try:
        async with sdk.AsyncOpenAI(**op.client_args()) as client:
            while True:
                try:
                    completion = await client.chat.completions.create(**op.request())
                    break
                except sdk.OpenAIError as exc:
                    wait_s = _wait_for(exc, sdk, pacing)
                    if wait_s is None:
                        raise
                waited = time.perf_counter()
                try:
                    await asyncio.sleep(wait_s)
                finally:
                    pacing.record_wait(waited)
    except sdk.OpenAIError as exc:
        raise _failed(op, exc, sdk, pacing) from exc
    return _output(op, completion, started, pacing)


LLM = Tool("llm", LlmOp, run_llm, arun_llm)
