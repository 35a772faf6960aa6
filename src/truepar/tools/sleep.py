"""``sleep``: wait a number of seconds, doing nothing. For calibration and tests.

On threads it waits on the op's cancel event, so a timeout or cancel ends it at once; on the
async backend it is ``asyncio.sleep``; on the sequential backend it blocks, as a sleep does.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Literal

from pydantic import Field

from truepar.tools.base import FakeSpec, OpBase, Tool, ToolContext, ToolOutput
from truepar.tools.bounds import MAX_DURATION_S


class SleepOp(OpBase):
    tool: Literal["sleep"] = "sleep"
    #: Finite (as every float of an op) and at most :data:`MAX_DURATION_S` (30 days).
    seconds: float = Field(ge=0, le=MAX_DURATION_S)

    def fake_spec(self) -> FakeSpec:
        return self.fake or _fake_sleep(self.seconds.hex())


@functools.lru_cache(maxsize=256)
def _fake_sleep(seconds_hex: str) -> FakeSpec:
    """How a sleep of that long behaves on the fake backend: one spec per duration, shared
    (it is frozen), since validating a new one for every attempt cost more than the rest of a
    fake attempt. Keyed by ``float.hex`` so that ``-0.0`` stays ``-0.0``."""
    return FakeSpec(duration_s=float.fromhex(seconds_hex))


def _output(op: SleepOp) -> ToolOutput:
    return ToolOutput(value=op.seconds, summary=f"slept {op.seconds:g} s")


def run(op: SleepOp, ctx: ToolContext) -> ToolOutput:
    ctx.cancel.wait(op.seconds)
    return _output(op)


async def arun(op: SleepOp, ctx: ToolContext) -> ToolOutput:
    await asyncio.sleep(op.seconds)
    return _output(op)


SLEEP = Tool("sleep", SleepOp, run, arun)
