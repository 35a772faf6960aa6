"""What an op asks of the machine that runs it: CPUs, GPUs and custom (cluster) resources.

The fields are shared by every op (:class:`~truepar.tools.base.OpBase`) and by the plan's
``[defaults]``, which fills those an op leaves out. The ``ray`` backend turns them into the
resource requests of the Ray task that runs the op (docs/ray.md); the other backends run every op
in this machine's workers and ignore them (``truepar lint`` says so, TP008). Validated here, once,
with the rules Ray itself applies, so a plan Ray would refuse is refused when it is loaded, with
the op and field named.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field, field_validator

from truepar.tools.bounds import MAX_COUNT

#: The smallest non-zero quantity Ray can represent (its resource granularity).
MIN_QUANTITY = 0.0001
#: Names of custom resources: letters, digits and ``_ . : / -`` (Ray's own, e.g.
#: ``accelerator_type:A100``, fit), at most 128 characters.
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:/-]{0,127}$")
#: Names Ray keeps for itself: CPUs and GPUs are ``num_cpus`` and ``num_gpus``.
RESERVED = frozenset({"CPU", "GPU", "memory", "object_store_memory"})
#: The request fields, by name.
FIELDS = ("num_cpus", "num_gpus", "custom_resources")


def check_quantity(what: str, value: float) -> float:
    if 0 < value < MIN_QUANTITY:
        raise ValueError(f"{what} = {value:g} is below Ray's smallest unit ({MIN_QUANTITY:g})")
    return value


class Requests(BaseModel):
    """``num_cpus``, ``num_gpus``, ``custom_resources``: ``None`` = not asked (the plan's
    default, else nothing). Every quantity is finite (the models refuse ``inf``/``nan``) and in
    ``[0, 10¹²]``."""

    #: CPUs the op holds while it runs (fractions allowed: ``0.5``).
    num_cpus: float | None = Field(default=None, ge=0, le=MAX_COUNT)
    #: GPUs the op holds while it runs (a fraction shares one GPU; above 1, whole GPUs only).
    num_gpus: float | None = Field(default=None, ge=0, le=MAX_COUNT)
    #: Custom resources by name (``{ accelerator_type:A100 = 1, licence = 1 }``): only nodes
    #: that declare them can run the op.
    custom_resources: dict[str, float] | None = None

    @field_validator("num_cpus")
    @classmethod
    def _cpus(cls, v: float | None) -> float | None:
        return v if v is None else check_quantity("num_cpus", v)

    @field_validator("num_gpus")
    @classmethod
    def _gpus(cls, v: float | None) -> float | None:
        if v is None:
            return v
        if v > 1 and v != int(v):
            raise ValueError(f"num_gpus = {v:g}: above 1, GPUs are whole (a fraction shares one)")
        return check_quantity("num_gpus", v)

    @field_validator("custom_resources")
    @classmethod
    def _custom(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is None:
            return v
        for name, amount in v.items():
            if name in RESERVED:
                raise ValueError(
                    f"custom resource {name!r} is Ray's own: use num_cpus / num_gpus, or "
                    "another name"
                    if name in ("CPU", "GPU")
                    else f"custom resource {name!r} is Ray's own name; choose another"
                )
            if not NAME.match(name):
                raise ValueError(
                    f"custom resource name {name!r}: use letters, digits and _ . : / - "
                    "(starting with a letter or _), at most 128 characters"
                )
            if not 0 <= amount <= MAX_COUNT:
                raise ValueError(f"custom resource {name!r} = {amount:g}: must be in [0, 10^12]")
            check_quantity(f"custom resource {name!r}", amount)
        return v

    def asks(self) -> bool:
        """Whether any request is set."""
        return (
            self.num_cpus is not None
            or self.num_gpus is not None
            or self.custom_resources is not None
        )

    def request_fields(self) -> dict[str, Any]:
        """The requests that are set, by field name."""
        return {f: getattr(self, f) for f in FIELDS if getattr(self, f) is not None}
