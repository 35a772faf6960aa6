"""GitHub's live rate-limit budget, read from its documented ``GET /rate_limit`` endpoint.

The answer has one object per bucket under ``resources`` (``core`` for the REST API, ``search``,
``graphql``, ...), each with ``limit``, ``remaining``, ``used`` and ``reset`` (Unix seconds when
the bucket refills). Asking does not count against any bucket. Without a token GitHub answers for
the caller's IP address (60 core requests an hour); with one, for the token's user.

The token comes from ``GH_TOKEN``, else ``GITHUB_TOKEN`` (the order the ``gh`` CLI uses), sent
as ``Authorization: Bearer``. The base URL is the resource's ``provider_url``, else
``GITHUB_API_URL`` (set by GitHub Actions; ``https://HOST/api/v3`` on GitHub Enterprise Server),
else ``https://api.github.com``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from typing import Any

import httpx

from truepar.errors import BudgetError

DEFAULT_API_URL = "https://api.github.com"
TOKEN_VARIABLES = ("GH_TOKEN", "GITHUB_TOKEN")
#: Buckets shown first, in this order; GitHub lists a dozen more.
MAIN_BUCKETS = ("core", "search", "graphql")


@dataclasses.dataclass(frozen=True, slots=True)
class Quota:
    """One bucket of a live budget: a hard quota until ``reset_unix_s``, then ``limit`` again."""

    provider: str
    limit: int
    remaining: int
    used: int
    reset_unix_s: float

    def resets_in_s(self, now_unix_s: float) -> float:
        return max(0.0, self.reset_unix_s - now_unix_s)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, slots=True)
class RateLimits:
    """Every bucket GitHub reported, where it was asked, and whether a token was sent."""

    api_url: str
    authenticated: bool
    buckets: Mapping[str, Quota]
    fetched_unix_s: float

    def quota(self, bucket: str) -> Quota:
        if bucket not in self.buckets:
            known = ", ".join(sorted(self.buckets)) or "none"
            raise BudgetError(
                f"GitHub at {self.api_url} reports no rate-limit bucket {bucket!r} ({known})"
            )
        return self.buckets[bucket]

    def to_json(self) -> dict[str, Any]:
        return {
            "api_url": self.api_url,
            "authenticated": self.authenticated,
            "fetched_unix_s": self.fetched_unix_s,
            "buckets": {name: q.to_json() for name, q in self.buckets.items()},
        }


def api_url(configured: str | None = None, env: Mapping[str, str] | None = None) -> str:
    environ = os.environ if env is None else env
    return (configured or environ.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")


def token(env: Mapping[str, str] | None = None) -> str | None:
    environ = os.environ if env is None else env
    for name in TOKEN_VARIABLES:
        if environ.get(name):
            return environ[name]
    return None


def fetch_rate_limits(
    base_url: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> RateLimits:
    """``GET {base}/rate_limit`` → :class:`RateLimits`. Raises :class:`BudgetError` in one line."""
    url = f"{api_url(base_url, env)}/rate_limit"
    secret = token(env)
    headers = {
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
        "User-Agent": "truepar",
    }
    if secret:
        headers["Authorization"] = f"Bearer {secret}"
    try:
        with httpx.Client(timeout=timeout_s, transport=transport) as client:
            response = client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        raise BudgetError(f"GitHub rate limit: GET {url} failed: {exc}") from None
    if response.status_code != 200:
        hint = " (check GH_TOKEN / GITHUB_TOKEN)" if response.status_code in (401, 403) else ""
        raise BudgetError(
            f"GitHub rate limit: GET {url} answered {response.status_code} "
            f"{response.reason_phrase}{hint}"
        )
    try:
        resources = response.json()["resources"]
        buckets = {
            name: Quota(
                provider=f"github:{name}",
                limit=int(b["limit"]),
                remaining=int(b["remaining"]),
                used=int(b.get("used", int(b["limit"]) - int(b["remaining"]))),
                reset_unix_s=float(b["reset"]),
            )
            for name, b in resources.items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BudgetError(
            f"GitHub rate limit: GET {url} did not answer GitHub's rate_limit JSON ({exc!r})"
        ) from None
    return RateLimits(
        api_url=api_url(base_url, env),
        authenticated=secret is not None,
        buckets=buckets,
        fetched_unix_s=time.time(),
    )
