"""``truepar keys init`` and ``truepar keys show``: the Ed25519 key that signs evidence."""

from __future__ import annotations

import getpass
import socket
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from truepar.errors import UsageError
from truepar.evidence import default_keys_dir, init_keys, key_id, load_public_key, trust_line
from truepar.evidence.keys import PUBLIC_NAME

keys_app = typer.Typer(help="Create and show the Ed25519 key that signs evidence.")

DirOpt = Annotated[
    Path | None,
    typer.Option("--dir", help="Key folder (default: $TRUEPAR_KEYS or ~/.config/truepar/keys)."),
]


def _default_name() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "truepar"
    return f"{user}@{socket.gethostname() or 'localhost'}"


NameOpt = Annotated[
    str | None, typer.Option("--name", help="Signer name in the trust line (default user@host).")
]


@keys_app.command("init")
def keys_init(
    directory: DirOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key pair.")] = False,
    name: NameOpt = None,
) -> None:
    """Create a key pair (private key mode 0600); never overwrite one without --force."""
    try:
        paths = init_keys(directory, force=force)
    except UsageError as exc:
        raise UsageError(
            str(exc).replace("replacing it needs force", "pass --force to replace it")
        ) from None
    out = Console(highlight=False, soft_wrap=True)
    out.print(f"private key: {paths.private} (mode 600, keep it secret)", markup=False)
    out.print(f"public key:  {paths.public}", markup=False)
    out.print(f"key id:      {paths.key_id}", markup=False)
    out.print("add this line to the trust file of whoever checks your evidence:", markup=False)
    out.print(trust_line(name or _default_name(), load_public_key(paths.public)), markup=False)


@keys_app.command("show")
def keys_show(directory: DirOpt = None, name: NameOpt = None) -> None:
    """The key id and the public trust line of the key pair."""
    folder = directory if directory is not None else default_keys_dir()
    public = folder / PUBLIC_NAME
    if not public.exists():
        raise UsageError(f"no key at {folder}; create one with: truepar keys init")
    key = load_public_key(public)
    out = Console(highlight=False, soft_wrap=True)
    out.print(f"key id: {key_id(key)}", markup=False)
    out.print(trust_line(name or _default_name(), key), markup=False)
