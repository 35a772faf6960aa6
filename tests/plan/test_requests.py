"""Per-op resource requests (``num_cpus``, ``num_gpus``, ``custom_resources``): in the plan
file and its ``[defaults]``, validated as Ray would, one line naming the op and field."""

from __future__ import annotations

from pathlib import Path

import pytest

import truepar
from helpers.cli import truepar as truepar_cli
from truepar import SleepOp

PLAN = """
[defaults]
backend = "sequential"
num_cpus = 0.5

[[op]]
id = "train"
tool = "sleep"
seconds = 0.01
num_gpus = 1
custom_resources = { "accelerator_type:A100" = 1, licence = 2 }

[[op]]
id = "plain"
tool = "sleep"
seconds = 0.01

[[op]]
id = "big"
tool = "sleep"
seconds = 0.01
num_cpus = 4
"""


def test_requests_are_read_and_defaults_fill_each_op(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(PLAN)
    plan = truepar.load_plan(path)
    train, plain, big = plan.ops
    assert (train.num_cpus, train.num_gpus) == (0.5, 1.0)
    assert train.custom_resources == {"accelerator_type:A100": 1.0, "licence": 2.0}
    assert (plain.num_cpus, plain.num_gpus, plain.custom_resources) == (0.5, None, None)
    assert big.num_cpus == 4.0  # its own, not the default
    # On a backend that is not Ray they change nothing: the run is the same.
    assert truepar.run(plan).ok


@pytest.mark.parametrize(
    ("field", "why"),
    [
        ("num_cpus = -1", "greater than or equal to 0"),
        ("num_cpus = inf", "finite"),
        ("num_gpus = nan", "finite"),
        ("num_gpus = 1.5", "GPUs are whole"),
        ("num_cpus = 0.00001", "smallest unit"),
        ("num_cpus = 1e13", "less than or equal"),
        ("custom_resources = { GPU = 1 }", "use num_cpus / num_gpus"),
        ('custom_resources = { "a b" = 1 }', "letters, digits"),
        ('custom_resources = { "x\\u001b" = 1 }', "letters, digits"),
        ("custom_resources = { x = -1 }", "must be in"),
        ("custom_resources = { x = inf }", "finite"),
        ('num_cpus = "two"', "valid number"),
    ],
)
def test_a_bad_request_is_one_line_naming_the_op(tmp_path: Path, field: str, why: str) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(f'[[op]]\nid = "a"\ntool = "sleep"\nseconds = 0.01\n{field}\n')
    with pytest.raises(truepar.PlanError, match="op 'a'") as info:
        truepar.load_plan(path)
    assert why in str(info.value)
    assert "\n" not in str(info.value)


def test_a_bad_default_request_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text('[defaults]\nnum_gpus = -1\n\n[[op]]\nid = "a"\ntool = "sleep"\nseconds = 0\n')
    proc = truepar_cli("run", str(path))
    assert proc.returncode == 2
    assert "num_gpus" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_requests_from_python_are_validated() -> None:
    op = SleepOp(id="a", seconds=0, num_cpus=2, custom_resources={"tpu": 0.25})
    assert op.request_fields() == {"num_cpus": 2.0, "custom_resources": {"tpu": 0.25}}
    with pytest.raises(ValueError, match="finite"):
        SleepOp(id="a", seconds=0, num_gpus=float("inf"))


def test_lint_says_where_requests_are_ignored(tmp_path: Path) -> None:
    from truepar.preflight.lint import lint  # noqa: PLC0415 - preflight sits above plan

    path = tmp_path / "plan.toml"
    path.write_text(PLAN.replace("num_cpus = 4", "num_cpus = 100000"))
    (finding,) = [f for f in lint(truepar.load_plan(path)) if f.rule == "TP008"]
    assert finding.severity == "warning"
    assert finding.ops == ("train", "plain", "big")  # the default's request counts too
    assert "sequential backend ignores" in finding.message
    assert "100000 CPUs asked" in finding.message
    on_ray = truepar.load_plan(path).with_defaults(backend="ray")
    assert not [f for f in lint(on_ray) if f.rule == "TP008"]  # Ray holds them
    proc = truepar_cli("lint", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr  # a warning, not an error
    assert "TP008" in proc.stdout
