"""Bad input from a newcomer or an attacker: one line naming what to fix, exit 2, never a
traceback — deep cycles, deep nesting, huge or endless files, duplicate keys, byte-order marks,
control characters, unwritable output paths, empty list items (issue 13, item 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.cli import truepar
from truepar.errors import PlanError
from truepar.plan.load import load_plan


def _one_line_error(result: object, *needles: str) -> str:
    code, err = result.returncode, result.stderr  # type: ignore[attr-defined]
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return str(lines[0])


def _ops(n: int, after: dict[int, int]) -> str:
    out = ['name = "p"']
    for i in range(n):
        out.append(f'[[op]]\nid = "o{i}"\ntool = "sleep"\nseconds = 0')
        if i in after:
            out.append(f'after = ["o{after[i]}"]')
    return "\n".join(out) + "\n"


def test_a_cycle_of_a_thousand_ops_is_named_in_one_short_line(tmp_path: Path) -> None:
    plan = tmp_path / "cycle.toml"
    plan.write_text(_ops(1000, {i: (i + 1) % 1000 for i in range(1000)}))
    line = _one_line_error(truepar("lint", str(plan)), "cycle in 'after'", "(1000 ops)")
    assert len(line) < 300


def test_a_cycle_reached_through_a_long_chain(tmp_path: Path) -> None:
    after = {i: i + 1 for i in range(2000)}
    after[2000] = 1990
    plan = tmp_path / "chain.toml"
    plan.write_text(_ops(2001, after))
    _one_line_error(truepar("lint", str(plan)), "cycle in 'after'", "o1990")


def test_a_long_chain_without_a_cycle_loads(tmp_path: Path) -> None:
    plan = tmp_path / "chain.toml"
    plan.write_text(_ops(3000, {i: i + 1 for i in range(2999)}))
    assert len(load_plan(plan).ops) == 3000


@pytest.mark.parametrize("suffix", [".toml", ".yaml"])
def test_deep_nesting_is_refused(tmp_path: Path, suffix: str) -> None:
    plan = tmp_path / f"nest{suffix}"
    sep = " = " if suffix == ".toml" else ": "
    plan.write_text("x" + sep + "[" * 5000 + "]" * 5000 + "\n")
    _one_line_error(truepar("lint", str(plan)), "nested too deeply")
    _one_line_error(truepar("run", str(plan), "--no-evidence"), "nested too deeply")


def test_an_endless_file_is_read_only_up_to_a_limit() -> None:
    _one_line_error(truepar("lint", "/dev/zero", timeout=60), "larger than 64 MiB")


def test_yaml_keys_given_twice_are_an_error(tmp_path: Path) -> None:
    plan = tmp_path / "dup.yaml"
    plan.write_text("name: a\nname: b\nops:\n  - {id: x, tool: sleep, seconds: 0}\n")
    _one_line_error(truepar("lint", str(plan)), "line 2", "'name' is given twice")
    nested = tmp_path / "dup2.yaml"
    nested.write_text("ops:\n  - {id: x, tool: sleep, seconds: 0, seconds: 1}\n")
    with pytest.raises(PlanError, match="'seconds' is given twice"):
        load_plan(nested)


@pytest.mark.parametrize("suffix", [".toml", ".yaml"])
def test_a_byte_order_mark_is_fine(tmp_path: Path, suffix: str) -> None:
    plan = tmp_path / f"bom{suffix}"
    body = (
        'name = "bom"\n[[op]]\nid = "a"\ntool = "sleep"\nseconds = 0\n'
        if suffix == ".toml"
        else "name: bom\nops:\n  - {id: a, tool: sleep, seconds: 0}\n"
    )
    plan.write_text(body, encoding="utf-8-sig")
    assert load_plan(plan).name == "bom"


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    plan = tmp_path / "latin1.toml"
    plan.write_bytes(b'name = "caf\xe9"\n')
    _one_line_error(truepar("lint", str(plan)), "not UTF-8")


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("id", "a\\nb", "U+000A"),
        ("id", "a\\u202eb", "U+202E"),  # right-to-left override
        ("id", "a\\u200bb", "U+200B"),  # zero-width space
        ("name", "\\u001b]0;owned\\u0007x", "U+001B"),  # an OSC escape to the terminal
    ],
)
def test_control_and_format_characters_in_names_are_refused(
    tmp_path: Path, field: str, value: str, code: str
) -> None:
    name = value if field == "name" else "ok"
    op_id = value if field == "id" else "a"
    plan = tmp_path / "ctl.toml"
    plan.write_text(f'name = "{name}"\n[[op]]\nid = "{op_id}"\ntool = "sleep"\nseconds = 0\n')
    line = _one_line_error(truepar("run", str(plan), "--no-evidence"), code)
    assert "\x1b" not in line and "\u202e" not in line  # what is refused is shown escaped


def test_unicode_letters_in_names_are_fine(tmp_path: Path) -> None:
    plan = tmp_path / "ok.toml"
    plan.write_text('name = "café ☕"\n[[op]]\nid = "größe"\ntool = "sleep"\nseconds = 0\n')
    assert load_plan(plan).ops[0].id == "größe"


def test_output_paths_that_cannot_be_written_fail_before_the_run(tmp_path: Path) -> None:
    plan = tmp_path / "p.toml"
    plan.write_text('name = "p"\n[[op]]\nid = "a"\ntool = "sleep"\nseconds = 0\n')
    _one_line_error(
        truepar("run", str(plan), "--json", "/proc/x.json", "--no-evidence"), "--json", "/proc"
    )
    _one_line_error(truepar("run", str(plan), "--evidence", "/proc/x.json"), "--evidence")
    _one_line_error(truepar("keys", "init", "--dir", "/proc/x"), "key folder")


def test_an_empty_item_in_a_comma_list_is_refused(tmp_path: Path) -> None:
    plan = tmp_path / "p.toml"
    plan.write_text(_ops(2, {}))
    _one_line_error(truepar("bench", str(plan), "--workers", "1,,2"), "empty item")
    _one_line_error(truepar("bench", str(plan), "--backends", "threads,"), "empty item")
