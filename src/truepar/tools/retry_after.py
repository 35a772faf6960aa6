"""Waiting as a throttling server asks: ``Retry-After`` on a 429 or 503, bounded, cancellable.

A server that answers 429 (Too Many Requests) or 503 (Service Unavailable) with a
``Retry-After`` header (delta-seconds, or an HTTP-date) says when to come back. The ``http`` and
``llm`` tools wait that long and send again, inside the attempt, up to ``retry_after_attempts``
times, and never wait longer than ``retry_after_max_s`` at once: a longer ask fails the op with
one line saying what the server asked for and the cap. A 429 or 503 *without* ``Retry-After``
is not retried here; the scheduler's ``retries`` (with its backoff) are for that.

Either way the attempt says it was throttled (:attr:`ServerPacing.throttled`, carried on
``ToolOutput.throttled`` or a raised :class:`~truepar.errors.ThrottledError`), so that an
``adaptive`` resource can lower its concurrency (:mod:`truepar.engine.adaptive`).
"""

from __future__ import annotations

import datetime
import email.utils
import re
import time
from collections.abc import Mapping

from pydantic import Field

from truepar.tools.base import OpBase
from truepar.tools.bounds import MAX_DURATION_S, MAX_RETRIES
from truepar.units import fmt_duration

#: The statuses that mean "the server is throttling you": Too Many Requests, Service Unavailable.
THROTTLE_STATUSES = frozenset({429, 503})
#: ``Retry-After`` as delta-seconds: digits, with a fraction accepted (some servers send one).
_DELTA = re.compile(r"\s*(\d+(?:\.\d+)?)\s*")


class RetryAfterOp(OpBase):
    """The op fields of a tool that honours ``Retry-After`` (``http``, ``llm``)."""

    #: How many times one attempt waits as a 429/503's ``Retry-After`` asks and sends again;
    #: 0 turns it off.
    retry_after_attempts: int = Field(default=3, ge=0, le=MAX_RETRIES)
    #: The longest one such wait may be; a server asking for more fails the op at once.
    retry_after_max_s: float = Field(default=60.0, ge=0, le=MAX_DURATION_S)


def retry_after_s(headers: Mapping[str, str], now_unix_s: float | None = None) -> float | None:
    """The seconds a response's ``Retry-After`` asks to wait; ``None`` without a usable one.

    ``retry-after-ms`` (OpenAI's and Azure's, in milliseconds) wins when present. An HTTP-date
    in the past means "now" (0); a date without a zone is taken as UTC, as HTTP dates are.
    """
    ms = headers.get("retry-after-ms")
    if ms is not None and (m := _DELTA.fullmatch(ms)):
        return float(m[1]) / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    if m := _DELTA.fullmatch(value):
        return float(m[1])
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    now = time.time() if now_unix_s is None else now_unix_s
    return max(0.0, when.timestamp() - now)


class ServerPacing:
    """One attempt's dealings with a throttling server: whether and how long to wait next, and
    what it saw and waited, for the op's summary and error."""

    __slots__ = ("attempts", "max_s", "refusal", "seen", "waited_s", "waits")

    def __init__(self, op: RetryAfterOp) -> None:
        self.attempts = op.retry_after_attempts
        self.max_s = op.retry_after_max_s
        #: Throttling answers by status, in the order first seen.
        self.seen: dict[int, int] = {}
        self.waits = 0
        self.waited_s = 0.0
        #: Why a throttling answer with ``Retry-After`` was not waited for, in words.
        self.refusal: str | None = None

    @property
    def throttled(self) -> int:
        """How many 429/503 answers the attempt got."""
        return sum(self.seen.values())

    def next_wait(self, status: int, headers: Mapping[str, str]) -> float | None:
        """Seconds to wait before sending again after ``status``; ``None``: do not send again.

        Call it only for a status the op did not expect (a 429 the op expects is its answer).
        """
        if status not in THROTTLE_STATUSES:
            return None
        self.seen[status] = self.seen.get(status, 0) + 1
        asked = retry_after_s(headers)
        if asked is None or self.attempts == 0:
            return None
        if asked > self.max_s:
            self.refusal = (
                f"the server asked to retry after {asked:g} s (Retry-After), more than "
                f"retry_after_max_s = {self.max_s:g} s"
            )
            return None
        if self.waits >= self.attempts:
            self.refusal = (
                f"still throttled after {self.waits} waits for Retry-After "
                f"(retry_after_attempts = {self.attempts})"
            )
            return None
        self.waits += 1
        return asked

    def record_wait(self, started: float) -> None:
        """Add the wait that began at ``started`` (``time.perf_counter()``) as it really was."""
        self.waited_s += time.perf_counter() - started

    def note(self) -> str:
        """``after 2 × 429, waited 1.5 s`` — empty when the server never throttled."""
        if not self.seen:
            return ""
        answers = " + ".join(f"{n} × {status}" for status, n in self.seen.items())
        text = f"after {answers}"
        if self.waits:
            text += f", waited {fmt_duration(self.waited_s)}"
        return text

    def explain(self, error: str) -> str:
        """``error`` with why the last throttling answer was not waited for, if one was not."""
        return f"{error}: {self.refusal}" if self.refusal else error
