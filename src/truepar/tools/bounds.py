"""The largest numbers a plan may hold: anything bigger is a typo, and would hang or overflow.

Every float of a plan must also be finite (pydantic's ``allow_inf_nan=False`` on every plan model:
``inf`` and ``nan`` are rejected where the plan is loaded, with the file, op and field named).
"""

from __future__ import annotations

#: Seconds: the longest timeout, sleep, fake duration or CPU time, retry backoff or wait a plan may
#: ask for — 30 days.
MAX_DURATION_S = 30 * 24 * 3600
#: The most retries an op (or the plan's default) may ask for.
MAX_RETRIES = 100
#: The largest count a plan may give: requests (``cost``, rates), tokens, bytes — 10^12.
MAX_COUNT = 10**12
#: The most ops truepar runs at once on any backend (``workers``): beyond it, a typo.
MAX_WORKERS = 100_000
