"""``truepar keys``, ``verify``, ``history`` and ``--evidence`` as a user runs them."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from helpers.cli import truepar
from truepar.evidence import init_keys, load_private_key, sign


def fake_plan(tmp_path: Path, n: int = 4) -> Path:
    ops = "".join(
        f'\n[[op]]\nid = "s{i}"\ntool = "sleep"\nseconds = 1.0\n'
        "fake = { duration_s = 1.0, cpu_s = 0.9 }\n"
        for i in range(n)
    )
    path = tmp_path / "fake.toml"
    path.write_text(f'name = "fakes"\n[defaults]\nbackend = "fake"\n{ops}')
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A key, its trust file, two signed benches recorded in one ledger."""
    tmp = tmp_path_factory.mktemp("evidence-cli")
    keys, ledger = tmp / "keys", tmp / "ledger.sqlite"
    proc = truepar("keys", "init", "--dir", str(keys), "--name", "alice")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("alice ed25519 "))
    trust = tmp / "trust.txt"
    trust.write_text(f"# who we trust\n{line}\n")
    plan = fake_plan(tmp)
    out: dict[str, Path] = {"tmp": tmp, "keys": keys, "ledger": ledger, "trust": trust}
    for i in (1, 2):
        evidence = tmp / f"bench{i}.json"
        proc = truepar(
            "bench", str(plan), "--backends", "fake", "--workers", "2,4", "--repeat", "2",
            "--warmup", "0", "--evidence", str(evidence), "--keys", str(keys),
            "--ledger", str(ledger),
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"evidence written to {evidence}" in proc.stdout
        out[f"bench{i}"] = evidence
    out["plan"] = plan
    return out


def test_keys_init_writes_0600_and_refuses_overwrite(tmp_path: Path) -> None:
    keys = tmp_path / "k"
    proc = truepar("keys", "init", "--dir", str(keys))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert stat.S_IMODE((keys / "private.pem").stat().st_mode) == 0o600
    assert "ed25519" in proc.stdout and "key id" in proc.stdout
    before = (keys / "private.pem").read_bytes()
    proc = truepar("keys", "init", "--dir", str(keys))
    assert proc.returncode == 2
    assert "--force" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert (keys / "private.pem").read_bytes() == before
    show = truepar("keys", "show", "--dir", str(keys))
    assert show.returncode == 0 and "key id" in show.stdout


def test_signed_bench_evidence_verifies(world: dict[str, Path]) -> None:
    proc = truepar("verify", str(world["bench1"]), "--trust", str(world["trust"]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for check in ("schema", "signature", "trust", "recompute"):
        assert f"✓ {check}" in proc.stdout
    assert "alice" in proc.stdout
    doc = json.loads(world["bench1"].read_text())
    assert doc["data"]["complete"] is True and "signature" in doc


def _edited(world: dict[str, Path]) -> dict:
    doc = json.loads(world["bench1"].read_text())
    doc["data"]["results"][0]["speedup"] = doc["data"]["results"][0]["speedup"] * 1.5
    return doc


def test_an_edited_number_is_caught(world: dict[str, Path]) -> None:
    edited = world["tmp"] / "edited.json"
    edited.write_text(json.dumps(_edited(world), indent=2))
    proc = truepar("verify", str(edited), "--trust", str(world["trust"]))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "✗ signature" in proc.stdout and "changed after signing" in proc.stdout
    assert "✗ recompute" in proc.stdout and "speedup" in proc.stdout


def test_resigned_with_another_key_is_untrusted(world: dict[str, Path], tmp_path: Path) -> None:
    other = init_keys(tmp_path / "mallory")
    doc = sign(_edited(world), load_private_key(other.private))
    resigned = tmp_path / "resigned.json"
    resigned.write_text(json.dumps(doc))
    proc = truepar("verify", str(resigned), "--trust", str(world["trust"]))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "✓ signature" in proc.stdout
    assert f"signed by an untrusted key {other.key_id}" in proc.stdout
    assert "✗ recompute" in proc.stdout
    # Re-signed *unedited* evidence: valid and recomputable, but still not trusted.
    clean = sign(json.loads(world["bench1"].read_text()), load_private_key(other.private))
    resigned.write_text(json.dumps(clean))
    proc = truepar("verify", str(resigned), "--trust", str(world["trust"]))
    assert proc.returncode == 1 and "untrusted" in proc.stdout and "✓ recompute" in proc.stdout


@pytest.mark.parametrize("cut", ["truncated", "not-json", "empty"])
def test_unreadable_evidence_exits_2_in_one_line(world: dict[str, Path], cut: str) -> None:
    text = world["bench1"].read_text()
    bad = world["tmp"] / f"{cut}.json"
    bad.write_text({"truncated": text[: len(text) // 2], "not-json": "hello", "empty": ""}[cut])
    proc = truepar("verify", str(bad))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert str(bad) in proc.stderr


def test_unsigned_evidence_is_unsigned_not_invalid(world: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "unsigned.json"
    proc = truepar(
        "run", str(world["plan"]), "--evidence", str(out), "--keys", str(tmp_path / "none")
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "unsigned" in proc.stdout
    proc = truepar("verify", str(out))
    assert proc.returncode == 3 and "! signature: not signed" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith("UNSIGNED")


def test_loose_key_permissions_exit_2(world: dict[str, Path], tmp_path: Path) -> None:
    keys = init_keys(tmp_path / "loose")
    keys.private.chmod(0o644)
    proc = truepar(
        "run", str(world["plan"]), "-q", "--evidence", str(tmp_path / "e.json"),
        "--keys", str(keys.directory),
    )  # fmt: skip
    assert proc.returncode == 2 and "chmod 600" in proc.stderr
    assert not (tmp_path / "e.json").exists()


def test_ledger_chain_and_history(world: dict[str, Path]) -> None:
    proc = truepar("verify", "--ledger", str(world["ledger"]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 records, chain intact" in proc.stdout
    proc = truepar("history", "--ledger", str(world["ledger"]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [ln for ln in proc.stdout.splitlines() if " bench " in ln]
    assert len(rows) == 2 and "parallel" in proc.stdout


def test_run_evidence_verifies_and_is_recorded(world: dict[str, Path], tmp_path: Path) -> None:
    evidence, ledger = tmp_path / "run.json", tmp_path / "run-ledger.sqlite"
    proc = truepar(
        "run", str(world["plan"]), "-q", "--evidence", str(evidence),
        "--keys", str(world["keys"]), "--ledger", str(ledger),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = truepar("verify", str(evidence), "--trust", str(world["trust"]), "--ledger", str(ledger))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "✓ recompute" in proc.stdout and "1 records, chain intact" in proc.stdout
    proc = truepar("history", "--ledger", str(ledger))
    assert proc.returncode == 0 and " run " in proc.stdout and "ok" in proc.stdout


def test_verify_needs_something_to_check() -> None:
    proc = truepar("verify")
    assert proc.returncode == 2 and "EVIDENCE" in proc.stderr


def test_every_run_and_bench_writes_evidence_by_default(
    world: dict[str, Path], data_dir: Path
) -> None:
    """No flag: one evidence file per command in the data folder, each recorded in its ledger."""
    for args in (
        ("run", str(world["plan"]), "-q"),
        ("bench", str(world["plan"]), "--backends", "fake", "--workers", "2", "--repeat", "1"),
    ):
        proc = truepar(*args, "--keys", str(world["keys"]))
        assert proc.returncode == 0, proc.stdout + proc.stderr
    files = sorted((data_dir / "evidence").glob("*.json"))
    assert sorted(f.name.split("-")[1:3] for f in files) == [["bench", "fakes"], ["run", "fakes"]]
    for file in files:
        proc = truepar("verify", str(file), "--trust", str(world["trust"]))
        assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = truepar("verify", "--ledger", str(data_dir / "ledger.sqlite"))
    assert proc.returncode == 0 and "2 records, chain intact" in proc.stdout
    history = truepar("history")  # the default ledger, as the commands' default
    assert history.returncode == 0, history.stdout + history.stderr
    assert " run " in history.stdout and " bench " in history.stdout


def test_evidence_dir_from_the_environment(
    world: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUEPAR_EVIDENCE_DIR", str(tmp_path / "ev"))
    proc = truepar("run", str(world["plan"]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (file,) = (tmp_path / "ev").glob("*-run-fakes-*.json")
    assert f"evidence written to {file} (signed by key " in proc.stdout  # whole, never wrapped
    # The first evidence made the user's key, and said so (once, on stderr): signed from now on.
    assert "created your signing key" in proc.stderr
    assert "(signed by key " in proc.stdout and "unsigned" not in proc.stdout
    quiet = truepar("run", str(world["plan"]), "-q")
    assert "created your signing key" not in quiet.stderr
    assert quiet.returncode == 0 and len(quiet.stdout.strip().splitlines()) == 1, quiet.stdout
    assert len(list((tmp_path / "ev").glob("*-run-fakes-*.json"))) == 2  # written all the same


def test_no_evidence_writes_nothing(world: dict[str, Path], data_dir: Path) -> None:
    proc = truepar("run", str(world["plan"]), "-q", "--no-evidence")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "evidence" not in proc.stdout and not data_dir.exists()


@pytest.mark.parametrize("flag", ["--evidence", "--ledger"])
def test_no_evidence_with_a_path_is_a_contradiction(
    world: dict[str, Path], tmp_path: Path, flag: str
) -> None:
    proc = truepar("run", str(world["plan"]), "--no-evidence", flag, str(tmp_path / "x"))
    assert proc.returncode == 2
    assert f"{flag} and --no-evidence" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_an_unusable_evidence_folder_fails_first_and_says_how_to_go_on(
    world: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("TRUEPAR_EVIDENCE_DIR", str(tmp_path / "file" / "evidence"))
    proc = truepar("run", str(world["plan"]), "-q")
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1
    assert "is not a directory" in proc.stderr and "--no-evidence" in proc.stderr
    assert proc.stdout == ""  # refused before anything ran
