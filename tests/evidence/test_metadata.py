"""Environment metadata and secret redaction for evidence."""

from __future__ import annotations

import subprocess
from pathlib import Path

from truepar.evidence import metadata


def test_collect_has_what_a_reader_needs(tmp_path: Path) -> None:
    info = metadata.collect(tmp_path)
    for key in (
        "python_version",
        "gil_enabled",
        "os",
        "kernel",
        "cpu_model",
        "cores_available",
        "cores_total",
        "memory_total_bytes",
        "load_average_at_start",
        "hostname",
    ):
        assert key in info, key
    assert info["cores_available"] <= info["cores_total"]
    assert info["packages"]["truepar"] is not None
    assert info["git"] == {"repository": False, "commit": None, "dirty": None}


def test_git_commit_and_dirty_flag(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "plan.toml").write_text("x")
    git("add", "plan.toml")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    clean = metadata.git_state(tmp_path)
    assert clean["repository"] and len(clean["commit"]) == 40 and clean["dirty"] is False
    (tmp_path / "plan.toml").write_text("y")
    assert metadata.git_state(tmp_path)["dirty"] is True


def test_secrets_in_ops_are_redacted_and_nothing_else() -> None:
    plan = {
        "name": "p",
        "ops": [
            {
                "id": "a",
                "tool": "bash",
                "env": {
                    "GITHUB_TOKEN": "ghp_x",
                    "HOME": "/root",
                    "DB_PASSWORD": "pw",
                    "AWS_SECRET_ACCESS_KEY": "s",
                },
            },
            {
                "id": "b",
                "tool": "http",
                "headers": {"Authorization": "Bearer y", "Accept": "*/*"},
                "params": {"api_key": "k", "q": "v"},
            },
            {"id": "c", "tool": "python", "kwargs": {"password": "p", "n": 3}},
        ],
    }
    out = metadata.redact_plan(plan)
    a, b, c = out["ops"]
    assert a["env"] == {
        "GITHUB_TOKEN": "[redacted]",
        "HOME": "/root",
        "DB_PASSWORD": "[redacted]",
        "AWS_SECRET_ACCESS_KEY": "[redacted]",
    }
    assert b["headers"] == {"Authorization": "[redacted]", "Accept": "*/*"}
    assert b["params"] == {"api_key": "[redacted]", "q": "v"}
    assert c["kwargs"] == {"password": "[redacted]", "n": 3}
    assert plan["ops"][0]["env"]["GITHUB_TOKEN"] == "ghp_x"  # the input is not modified
    assert "ghp_x" not in repr(out)


def test_the_pattern_list_is_configurable() -> None:
    out = metadata.redact({"INTERNAL_PIN": "1234", "TOKEN": "t"}, patterns=["pin"])
    assert out == {"INTERNAL_PIN": "[redacted]", "TOKEN": "t"}
