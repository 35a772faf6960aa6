"""Key pairs on disk and the trust list."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from truepar.errors import UsageError
from truepar.evidence import (
    check_signature,
    default_keys_dir,
    init_keys,
    key_id,
    load_private_key,
    load_public_key,
    load_trust,
    sign,
    trust_line,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_writes_a_0600_private_key_that_signs_for_its_public_key(tmp_path: Path) -> None:
    paths = init_keys(tmp_path / "keys")
    assert _mode(paths.private) == 0o600
    assert paths.private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    private = load_private_key(paths.private)
    public = load_public_key(paths.public)
    assert key_id(public) == paths.key_id == key_id(private.public_key())
    assert not list(paths.directory.glob(".*.tmp"))


def test_init_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    first = init_keys(tmp_path)
    before = first.private.read_bytes()
    with pytest.raises(UsageError, match="replacing it needs force"):
        init_keys(tmp_path)
    assert first.private.read_bytes() == before
    second = init_keys(tmp_path, force=True)
    assert second.private.read_bytes() != before
    assert _mode(second.private) == 0o600


def test_default_directory_follows_env_then_xdg_then_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRUEPAR_KEYS", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_keys_dir() == tmp_path / "xdg" / "truepar" / "keys"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_keys_dir() == tmp_path / "home" / ".config" / "truepar" / "keys"
    monkeypatch.setenv("TRUEPAR_KEYS", str(tmp_path / "mine"))
    assert init_keys().directory == tmp_path / "mine"


def test_a_private_key_readable_by_others_is_refused_with_the_fix(tmp_path: Path) -> None:
    paths = init_keys(tmp_path)
    paths.private.chmod(0o644)
    with pytest.raises(UsageError) as info:
        load_private_key(paths.private)
    message = str(info.value)
    assert f"chmod 600 {paths.private}" in message
    assert "\n" not in message


def test_a_missing_private_key_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="truepar keys init"):
        load_private_key(tmp_path / "private.pem")


def test_trust_list_round_trips_with_comments_and_blank_lines(tmp_path: Path) -> None:
    paths = init_keys(tmp_path / "k")
    public = load_public_key(paths.public)
    trust_file = tmp_path / "trusted"
    trust_file.write_text(f"# who may sign\n\n{trust_line('alice@ci', public)}\n")
    trust = load_trust(trust_file)
    assert list(trust) == [paths.key_id]
    check = check_signature(sign({"a": 1}, load_private_key(paths.private)), trust)
    assert (check.trusted, check.signer) == (True, "alice@ci")


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("alice ed25519", "fields"),
        ("alice rsa AAAA", "unsupported key type"),
        ("alice ed25519 not-base64!", "bad public key"),
        ("alice ed25519 AAAA", "32 bytes"),
    ],
)
def test_trust_list_errors_name_file_and_line(tmp_path: Path, line: str, complaint: str) -> None:
    trust_file = tmp_path / "trusted"
    trust_file.write_text(f"# header\n{line}\n")
    with pytest.raises(UsageError, match=complaint) as info:
        load_trust(trust_file)
    assert f"{trust_file}:2:" in str(info.value)
