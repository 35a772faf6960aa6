"""The ``ray`` backend: truepar's plans on a Ray cluster — warm actors, small ops batched,
one span per op with the node that ran it, and one timeline across the nodes' clocks.

A plug-in: pyproject.toml declares it in the ``truepar.backends`` entry-point group, so the
registry loads it by name like any outside backend. Nothing here imports Ray; that waits until
a run starts (``import ray`` alone takes most of a second). See docs/ray.md.
"""

from __future__ import annotations

from truepar.backends.ray.backend import RayBackend
from truepar.backends.ray.session import ENV_ADDRESS, connect, disconnect

__all__ = ("ENV_ADDRESS", "RayBackend", "connect", "disconnect")
