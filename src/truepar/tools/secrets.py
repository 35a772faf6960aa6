"""Secret-looking names and values, and how they are kept out of everything a run records.

One rule: a redacted value appears nowhere — not in an op's value, its summary, its error, the
trace or the evidence. This module is the bottom of that rule, so that tools (which shape what a
run records) and the evidence (which records the plan) redact alike:

- a *name* (of an environment variable, a header, a query parameter, any mapping key) is secret
  when it matches one of :data:`SECRET_PATTERNS` (:func:`is_secret_name`);
- a URL is recorded with its userinfo (``https://user:pass@host``) and the values of its
  secret-named query (and fragment) parameters replaced by :data:`REDACTED` (:func:`redact_url`);
- the *values* given under secret names are also removed from any text where they turn up
  under another name or none (:func:`scrub`): an innocuously named parameter with the same value,
  a server that echoes the key back, an error message quoting the request. Values shorter than
  :data:`MIN_SCRUB_LEN` are only redacted by name: removing every ``1`` from a text hides nothing.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus, urlsplit, urlunsplit

#: Names (of environment variables, headers, query parameters, any mapping key) whose values are
#: never recorded. Matched anywhere in the name, ignoring case.
SECRET_PATTERNS = (
    r"token",
    r"secret",
    r"passw(or)?d",
    r"api[_-]?key",
    r"private[_-]?key",
    r"auth(orization)?",
    r"cookie",
    r"credential",
    r"session",
)
#: What a secret is replaced by.
REDACTED = "[redacted]"
#: Secret values shorter than this are redacted where their name says so, but not searched for
#: in other text.
MIN_SCRUB_LEN = 4


@functools.lru_cache(maxsize=16)
def _secret_regex(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


def is_secret_name(name: object, patterns: Iterable[str] = SECRET_PATTERNS) -> bool:
    """Whether the value under ``name`` must never be recorded."""
    return _secret_regex(tuple(patterns)).search(str(name)) is not None


def redact(mapping: Mapping[str, Any], patterns: Iterable[str] = SECRET_PATTERNS) -> dict[str, Any]:
    """``mapping`` with the values of secret-looking names replaced by ``[redacted]``."""
    pats = tuple(patterns)
    return {k: REDACTED if is_secret_name(k, pats) else v for k, v in mapping.items()}


def secret_parts(value: str) -> Iterator[str]:
    """``value`` and the pieces of it that are secrets on their own: the credentials after an
    auth scheme (``Bearer sk-…`` → ``sk-…``) and each cookie's value (``a=1; b=2``)."""
    yield value
    if " " in value.strip():
        yield value.strip().rsplit(" ", 1)[1]
    for piece in value.split(";"):
        if "=" in piece:
            yield piece.split("=", 1)[1].strip()


def secret_values(
    mapping: Mapping[str, Any] | None, patterns: Iterable[str] = SECRET_PATTERNS
) -> set[str]:
    """The text values of ``mapping``'s secret-named entries, with their :func:`secret_parts`."""
    out: set[str] = set()
    if not mapping:
        return out
    pats = tuple(patterns)
    for name, value in mapping.items():
        if isinstance(value, str) and is_secret_name(name, pats):
            out.update(secret_parts(value))
    return out


def _pairs(text: str) -> list[tuple[str, str | None]]:
    """``a=1&b`` → ``[("a", "1"), ("b", None)]``, every part as written (still encoded)."""
    out: list[tuple[str, str | None]] = []
    for part in text.split("&"):
        key, eq, value = part.partition("=")
        out.append((key, value if eq else None))
    return out


def _redact_pairs(text: str, patterns: tuple[str, ...], found: set[str]) -> str:
    if "=" not in text:
        return text
    parts = []
    for key, value in _pairs(text):
        if value is None:
            parts.append(key)
        elif is_secret_name(unquote_plus(key), patterns):
            found.update((value, unquote_plus(value), unquote(value)))
            parts.append(f"{key}={REDACTED}")
        else:
            parts.append(f"{key}={value}")
    return "&".join(parts)


def url_secrets(url: str, patterns: Iterable[str] = SECRET_PATTERNS) -> set[str]:
    """The secrets written into ``url``: its userinfo and its secret-named parameters' values."""
    found: set[str] = set()
    _redact_url(url, tuple(patterns), found)
    return found


def redact_url(url: str, patterns: Iterable[str] = SECRET_PATTERNS) -> str:
    """``url`` with its userinfo and the values of its secret-named query and fragment
    parameters replaced by ``[redacted]``; everything else as written. Text that is not a URL
    comes back unchanged."""
    return _redact_url(url, tuple(patterns), set())


def _redact_url(url: str, patterns: tuple[str, ...], found: set[str]) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, _, password = userinfo.partition(":")
        found.update(p for part in (userinfo, user, password) for p in (part, unquote(part)))
        # HTTP clients send userinfo as Basic credentials, which a server may echo back.
        plain = f"{unquote(user)}:{unquote(password)}".encode()
        found.add(base64.b64encode(plain).decode("ascii"))
        netloc = f"{REDACTED}@{host}"
    query = _redact_pairs(parts.query, patterns, found)
    fragment = _redact_pairs(parts.fragment, patterns, found)
    if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _forms(secret: str) -> set[str]:
    """``secret`` as written and as it looks percent- or form-encoded in a URL."""
    return {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}


def scrubber(secrets: Iterable[str]) -> _Scrubber:
    """A callable removing every one of ``secrets`` (and their URL-encoded forms) from text."""
    return _Scrubber(secrets)


class _Scrubber:
    __slots__ = ("_regex",)

    def __init__(self, secrets: Iterable[str]) -> None:
        forms = {f for s in secrets if len(s) >= MIN_SCRUB_LEN for f in _forms(s)}
        # Longest first, so that a secret containing another is replaced whole.
        ordered = sorted(forms, key=lambda s: (-len(s), s))
        self._regex = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __bool__(self) -> bool:
        return self._regex is not None

    def __call__(self, text: str) -> str:
        if self._regex is None:
            return text
        return self._regex.sub(REDACTED, text)

    def deep(self, value: Any) -> Any:
        """``value`` with every string in it (keys of mappings left alone) scrubbed."""
        if self._regex is None:
            return value
        if isinstance(value, str):
            return self(value)
        if isinstance(value, Mapping):
            return {k: self.deep(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.deep(v) for v in value]
        return value


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every one of ``secrets`` (and their URL-encoded forms) replaced by
    ``[redacted]``."""
    return _Scrubber(secrets)(text)
