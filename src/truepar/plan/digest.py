"""A plan's digest: SHA-256 over its content, so that a trace says which plan it ran.

``truepar run --resume`` reuses the results of a trace only for the very plan that trace ran:
the same name, defaults, resources and ops, field by field (where the file lives, its comments
and its layout do not count). Secrets are redacted first by the rule evidence records plans by
(:mod:`truepar.tools.secrets`): a digest printed in a trace must not let anyone test guesses
of a password against it — and a rotated token leaves the plan the same plan.
"""

from __future__ import annotations

import functools
import hashlib
import json
import pickle
import weakref
from collections.abc import Mapping
from typing import Any

from truepar.plan.models import Plan
from truepar.records import jsonable
from truepar.tools import OpBase, PythonOp
from truepar.tools.secrets import redact, redact_url, scrubber, secret_values, url_secrets

#: The op fields whose entries may hold secrets (evidence's ``SECRET_FIELDS``, which the layers
#: keep this module from importing).
_SECRET_FIELDS = ("env", "headers", "params", "kwargs", "json_body", "extra_body")

#: Plans are immutable: each one's digest is computed once (a bench runs one plan many times).
_DIGESTS: dict[int, str] = {}
#: Smaller plans (an MCP call's) cost less to digest again than to keep track of.
_CACHED_FROM = 64


def plan_digest(plan: Plan) -> str:
    """The plan's SHA-256, hex: over the JSON of its name, defaults, resources and ops, one
    after the other (a ``python`` op's function by its ``module:name``, its ``args`` by their
    pickles, other objects by their JSON view or ``repr``), secrets redacted."""
    key = id(plan)
    found = _DIGESTS.get(key)
    if found is not None:
        return found
    h = hashlib.sha256()
    # pydantic's own JSON (fields in declared order) where nothing needs redacting: it is
    # written in Rust, and MCP and tool calls run a small plan per call.
    head = [_canonical(plan.name), plan.defaults.model_dump_json().encode()]
    for name in sorted(plan.resources):
        r = plan.resources[name]
        if r.provider_url is not None:
            r = r.model_copy(update={"provider_url": redact_url(r.provider_url)})
        head += [_canonical(name), r.model_dump_json().encode()]
    for part in (*head, *map(_op_bytes, plan.ops)):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    digest = h.hexdigest()
    if len(plan.ops) >= _CACHED_FROM:
        _DIGESTS[key] = digest
        weakref.finalize(plan, _DIGESTS.pop, key, None)
    return digest


def _canonical(content: Any) -> bytes:
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass")


def _op_bytes(op: OpBase) -> bytes:
    """One op as bytes: pydantic's JSON of it for an op with no secret to redact and nothing
    JSON cannot hold (most ops), else the canonical JSON of :func:`_op_content`."""
    mappings, urls = _secret_fields(type(op))
    if not isinstance(op, PythonOp) and not any(getattr(op, f) for f in (*mappings, *urls)):
        try:
            return op.model_dump_json().encode("utf-8", "surrogatepass")
        except ValueError:  # pydantic cannot write it (bytes that are not UTF-8 ...)
            pass
    return _canonical(_op_content(op))


def _op_content(op: OpBase) -> dict[str, Any]:
    exclude = {"call", "args"} if isinstance(op, PythonOp) else None
    try:
        raw = op.model_dump(mode="json", exclude=exclude)
    except ValueError:  # a value JSON cannot hold (bytes, a python op's objects)
        raw = jsonable(op.model_dump(exclude=exclude))
    secrets: set[str] = set()
    mappings, urls = _secret_fields(type(op))
    for field in mappings:
        value = raw.get(field)
        if isinstance(value, Mapping) and value:
            secrets |= secret_values(value)
            raw[field] = redact(value)
    for field in urls:
        value = raw.get(field)
        if isinstance(value, str):
            secrets |= url_secrets(value)
            raw[field] = redact_url(value)
    if isinstance(op, PythonOp):
        raw["call"] = op.call_name()
        raw["args"] = repr(op.args) if secrets else _args_sha256(op.args)
    if not secrets:
        return raw
    scrubbed: dict[str, Any] = scrubber(secrets).deep(raw)
    return scrubbed


@functools.cache
def _secret_fields(cls: type[OpBase]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """An op class's fields that may hold secrets: mappings of named values, and URLs."""
    names = tuple(cls.model_fields)
    urls = tuple(n for n in names if n == "url" or n.endswith("_url"))
    return tuple(n for n in _SECRET_FIELDS if n in names), urls


def _args_sha256(args: tuple[Any, ...]) -> str:
    """A ``python`` op's positional arguments, hashed from their pickles (functions pickle as
    their names), or their ``repr`` where they do not pickle (a lambda).

    Not their JSON view: ``truepar.map`` puts its whole input here, and the digest must not cost
    a sizeable part of the run. Equal arguments can pickle apart (a set of strings, in two
    processes): then a resume refuses the trace; it never reuses a result wrongly.
    """
    h = hashlib.sha256()
    for arg in args:
        try:
            data = pickle.dumps(arg, protocol=5)
        except Exception:  # whatever an object's pickling raises, its repr is the fallback
            data = repr(arg).encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()
