"""Options about where a plan runs that ``run`` and ``bench`` share: the Ray cluster's address."""

from __future__ import annotations

from typing import Annotated

import typer

from truepar.backends.ray.session import ENV_ADDRESS, use_address

AddressOpt = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="The Ray cluster for backend ray: auto, ray://HOST:PORT or HOST:PORT "
        f"(default: ${ENV_ADDRESS}, else a local instance sized to this machine).",
    ),
]

__all__ = ("AddressOpt", "use_address")
