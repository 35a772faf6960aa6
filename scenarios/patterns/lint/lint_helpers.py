"""Python functions the lint examples call (``call = "lint_helpers:estimate_tokens"``)."""

from __future__ import annotations


def estimate_tokens(prompt: str) -> int:
    """About how many tokens ``prompt`` is: a plain function, so on the async backend it runs on
    the event loop and every other op waits for it (TP006)."""
    return sum(max(1, len(word) // 4) for word in prompt.split())


async def estimate_tokens_async(prompt: str) -> int:
    """The same as a coroutine: the async backend awaits it."""
    return estimate_tokens(prompt)
