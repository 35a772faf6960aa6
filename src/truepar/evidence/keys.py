"""Ed25519 key pairs, key ids and the trust list.

A key pair lives in one folder as ``private.pem`` (PKCS8, mode 0600) and ``public.pem``; the
default folder is ``$TRUEPAR_KEYS``, else ``$XDG_CONFIG_HOME/truepar/keys``, else
``~/.config/truepar/keys``. A key id is the first 16 hex digits of the sha256 of the raw
public key. The trust list is a text file like ssh's ``allowed_signers``: one
``<name> ed25519 <base64 raw public key>`` per line, ``#`` starting a comment line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from truepar.errors import UsageError
from truepar.fileio import atomic_write_bytes, atomic_write_text

PRIVATE_NAME = "private.pem"
PUBLIC_NAME = "public.pem"
ALGORITHM = "ed25519"

Trust = dict[str, tuple[str, Ed25519PublicKey]]
"""Key id → (signer name, public key), as read by :func:`load_trust`."""


@dataclass(frozen=True)
class KeyPaths:
    """Where :func:`init_keys` put a key pair, and the id of its public key."""

    directory: Path
    private: Path
    public: Path
    key_id: str


def default_keys_dir() -> Path:
    """``$TRUEPAR_KEYS``, else ``$XDG_CONFIG_HOME/truepar/keys``, else ``~/.config/truepar/keys``.

    Where :func:`init_keys` writes and :func:`load_private_key` reads by default.
    """
    override = os.environ.get("TRUEPAR_KEYS")
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    # The XDG spec says a relative value is invalid and must be ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".config"
    return base / "truepar" / "keys"


def raw_public_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of sha256 over the raw 32-byte public key."""
    return hashlib.sha256(raw_public_bytes(public_key)).hexdigest()[:16]


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode_strict(text: str) -> bytes:
    """Decode base64, accepting only the one canonical spelling of the bytes.

    Without the round-trip check, the unused low bits of the last character make several
    strings decode alike, so an edited signature could still verify.
    """
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64: {exc}") from exc
    if b64encode(data) != text:
        raise ValueError("not canonical base64")
    return data


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    """A public key from its base64 raw form; ``ValueError`` if it is not one."""
    raw = b64decode_strict(text)
    if len(raw) != 32:
        raise ValueError(f"an ed25519 public key has 32 bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def trust_line(name: str, public_key: Ed25519PublicKey) -> str:
    """The trust-list line that trusts ``public_key`` as ``name``."""
    return f"{name} {ALGORITHM} {b64encode(raw_public_bytes(public_key))}"


def init_keys(directory: Path | None = None, *, force: bool = False) -> KeyPaths:
    """Create a key pair in ``directory`` (default :func:`default_keys_dir`); never overwrite
    an existing one unless ``force``."""
    folder = directory if directory is not None else default_keys_dir()
    private_path, public_path = folder / PRIVATE_NAME, folder / PUBLIC_NAME
    existing = [p for p in (private_path, public_path) if p.exists()]
    if existing and not force:
        raise UsageError(
            f"a key already exists at {existing[0]}; replacing it needs force "
            "(evidence signed with the old key can then only be checked with its public.pem)"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise UsageError(f"cannot make the key folder {str(folder)!r}: {exc.strerror}") from None
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_secret(private_path, pem)
    public_key = private_key.public_key()
    atomic_write_text(
        public_path,
        public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii"),
    )
    public_path.chmod(0o644)
    return KeyPaths(folder, private_path, public_path, key_id(public_key))


def _write_secret(path: Path, data: bytes) -> None:
    """Write ``data`` atomically to a file that is mode 0600 before its first byte exists."""
    atomic_write_bytes(path, data, mode=0o600)


def load_private_key(path: Path | None = None) -> Ed25519PrivateKey:
    """Read a private key, refusing one whose file mode lets group or others read it."""
    key_path = path if path is not None else default_keys_dir() / PRIVATE_NAME
    try:
        mode = key_path.stat().st_mode
    except FileNotFoundError:
        raise UsageError(
            f"no private key at {key_path}; create one with: truepar keys init"
        ) from None
    if os.name == "posix" and mode & 0o077:
        raise UsageError(
            f"private key {key_path} is readable by others (mode {stat.S_IMODE(mode):o}); "
            f"fix it with: chmod 600 {key_path}"
        )
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as exc:
        raise UsageError(f"cannot read private key {key_path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"private key {key_path} is not an ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read a PEM public key (a ``public.pem`` written by :func:`init_keys`)."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (ValueError, OSError) as exc:
        raise UsageError(f"cannot read public key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"public key {path} is not an ed25519 key")
    return key


def load_trust(path: Path) -> Trust:
    """Parse a trust list; any bad line is a :class:`UsageError` naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read trust list {path}: {exc}") from exc
    trust: Trust = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{path}:{number}"
        fields = stripped.split()
        if len(fields) != 3:
            raise UsageError(
                f"{where}: expected '<name> {ALGORITHM} <base64 public key>', "
                f"got {len(fields)} fields"
            )
        name, algorithm, encoded = fields
        if algorithm != ALGORITHM:
            raise UsageError(f"{where}: unsupported key type {algorithm!r}; only {ALGORITHM}")
        try:
            public_key = public_key_from_b64(encoded)
        except ValueError as exc:
            raise UsageError(f"{where}: bad public key: {exc}") from exc
        kid = key_id(public_key)
        if kid in trust and trust[kid][0] != name:
            raise UsageError(f"{where}: key {kid} is already trusted as {trust[kid][0]!r}")
        trust[kid] = (name, public_key)
    return trust
