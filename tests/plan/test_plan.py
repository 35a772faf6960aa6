"""Plan files (TOML, YAML), their one-line errors, and the dependency graph with its reasons."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import truepar
from helpers.cli import truepar as truepar_cli
from helpers.plans import by_id, make_plan, write_module
from truepar import BashOp, GrepOp, LsOp, ReadOp, Resource, SleepOp

FULL_TOML = """
name = "example"

[defaults]
backend = "fake"
workers = 3
timeout = 5.0
retries = 1
retry_backoff_s = 0.05
on_error = "fail-fast"

[resources.db]
max_concurrent = 2

[[op]]
id = "a"
tool = "sleep"
seconds = 0.2

[[op]]
id = "b"
tool = "bash"
argv = ["echo", "hi"]
after = ["a"]
resource = "db"
fake = { duration_s = 0.5, cpu_s = 0.1 }

[[op]]
id = "c"
tool = "read"
path = "data.txt"
after = "b"
timeout = 1.5
retries = 0

[[op]]
id = "d"
tool = "grep"
pattern = "def \\\\w+"
writes = ["out"]
"""

FULL_YAML = """
name: example
defaults:
  backend: fake
  workers: 3
resources:
  db: {max_concurrent: 2}
ops:
  - id: a
    tool: sleep
    seconds: 0.2
  - id: b
    tool: bash
    argv: [echo, hi]
    after: a
    resource: db
  - {id: c, tool: read, path: data.txt, after: [b]}
"""


def write(tmp_path: Path, text: str, name: str = "plan.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# -- loading -------------------------------------------------------------------------------------


def test_load_toml(tmp_path: Path) -> None:
    path = write(tmp_path, FULL_TOML)
    plan = truepar.load_plan(path)
    assert plan.name == "example"
    assert plan.source == str(path)
    assert plan.base_dir == tmp_path.resolve()
    d = plan.defaults
    assert (d.backend, d.workers, d.timeout, d.retries, d.retry_backoff_s, d.on_error) == (
        "fake",
        3,
        5.0,
        1,
        0.05,
        "fail-fast",
    )
    assert plan.resources == {"db": Resource(max_concurrent=2)}
    assert [op.id for op in plan.ops] == ["a", "b", "c", "d"]
    a, b, c, dd = plan.ops
    assert isinstance(a, SleepOp) and a.seconds == 0.2
    assert isinstance(b, BashOp) and b.argv == ("echo", "hi")
    assert b.after == ("a",) and b.resource == "db"
    assert b.fake is not None and b.fake.duration_s == 0.5 and b.fake.cpu_s == 0.1
    assert isinstance(c, ReadOp) and c.after == ("b",) and c.timeout == 1.5 and c.retries == 0
    assert isinstance(dd, GrepOp) and dd.pattern == r"def \w+" and dd.writes == ("out",)


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_load_yaml(tmp_path: Path, suffix: str) -> None:
    plan = truepar.load_plan(write(tmp_path, FULL_YAML, f"plan{suffix}"))
    assert plan.name == "example"
    assert plan.defaults.workers == 3
    assert plan.resources["db"].max_concurrent == 2
    assert [(op.id, op.tool, op.after) for op in plan.ops] == [
        ("a", "sleep", ()),
        ("b", "bash", ("a",)),
        ("c", "read", ("b",)),
    ]


def test_toml_and_yaml_agree(tmp_path: Path) -> None:
    yaml_plan = truepar.load_plan(write(tmp_path, FULL_YAML, "p.yaml"))
    toml_text = """
        name = "example"
        [defaults]
        backend = "fake"
        workers = 3
        [resources.db]
        max_concurrent = 2
        [[op]]
        id = "a"
        tool = "sleep"
        seconds = 0.2
        [[op]]
        id = "b"
        tool = "bash"
        argv = ["echo", "hi"]
        after = "a"
        resource = "db"
        [[op]]
        id = "c"
        tool = "read"
        path = "data.txt"
        after = ["b"]
    """
    toml_plan = truepar.load_plan(write(tmp_path, toml_text, "p.toml"))
    assert yaml_plan.ops == toml_plan.ops
    assert yaml_plan.defaults == toml_plan.defaults
    assert yaml_plan.resources == toml_plan.resources


def test_ops_list_spelling(tmp_path: Path) -> None:
    text = 'ops = [{id = "a", tool = "sleep", seconds = 0.1}]\n'
    assert [op.id for op in truepar.load_plan(write(tmp_path, text)).ops] == ["a"]


def test_run_a_plan_file(tmp_path: Path) -> None:
    trace = truepar.run(write(tmp_path, FULL_TOML))
    assert trace.ok
    assert trace.backend == "fake"
    assert trace.plan_name == "example"
    spans = by_id(trace)
    assert spans["b"].start_ns >= spans["a"].end_ns


def test_run_plan_file_with_python_op_and_real_files(tmp_path: Path) -> None:
    mod = write_module(tmp_path, "def shout(s):\n    return s.upper()\n")
    (tmp_path / "data.txt").write_text("hello\n")
    text = f"""
        [defaults]
        backend = "threads"
        [[op]]
        id = "py"
        tool = "python"
        call = "{mod}:shout"
        args = ["abc"]
        [[op]]
        id = "cat"
        tool = "bash"
        argv = ["cat", "data.txt"]
        [[op]]
        id = "read"
        tool = "read"
        path = "data.txt"
    """
    trace = truepar.run(write(tmp_path, text))
    assert trace.ok, trace.results
    assert trace.results["py"].value == "ABC"
    assert trace.results["cat"].value["stdout"] == "hello\n"
    assert "hello" in str(trace.results["read"].value)


def test_run_a_dict(tmp_path: Path) -> None:
    data = {"defaults": {"backend": "fake"}, "op": [{"id": "a", "tool": "sleep", "seconds": 1}]}
    trace = truepar.run(data)
    assert trace.ok
    assert trace.totals.wall_s == pytest.approx(1.0, abs=1e-6)
    plan = truepar.plan_from_dict(data, source="here", base_dir=tmp_path)
    assert plan.source == "here"


# -- errors --------------------------------------------------------------------------------------

OP_A = 'id = "a"\ntool = "sleep"\nseconds = 0.1\n'

ERRORS = {
    "cycle": (
        '[[op]]\nid = "a"\ntool = "sleep"\nseconds = 0.1\nafter = ["c"]\n'
        '[[op]]\nid = "b"\ntool = "sleep"\nseconds = 0.1\nafter = ["a"]\n'
        '[[op]]\nid = "c"\ntool = "sleep"\nseconds = 0.1\nafter = ["b"]\n',
        ["cycle", "a", "b", "c"],
    ),
    "unknown-tool": ('[[op]]\nid = "a"\ntool = "slep"\nseconds = 0.1\n', ["'a'", "tool", "slep"]),
    "missing-after": (f'[[op]]\n{OP_A}after = ["zz"]\n', ["'a'", "after", "zz"]),
    "self-after": (f'[[op]]\n{OP_A}after = ["a"]\n', ["'a'", "after"]),
    "duplicate-id": (f"[[op]]\n{OP_A}[[op]]\n{OP_A}", ["'a'", "duplicate"]),
    "broken-toml": ('[[op]\nid = "a"\n', ["invalid TOML", "line 1"]),
    "unknown-field": (f"[[op]]\n{OP_A}timeuot = 3\n", ["'a'", "timeuot", "unknown field"]),
    "unknown-defaults-field": (f"[defaults]\nworkerz = 2\n[[op]]\n{OP_A}", ["workerz"]),
    "unknown-fake-field": (f"[[op]]\n{OP_A}fake = {{duraton_s = 1}}\n", ["'a'", "duraton_s"]),
    "wrong-type": ('[[op]]\nid = "a"\ntool = "sleep"\nseconds = "lots"\n', ["'a'", "seconds"]),
    "negative": ('[[op]]\nid = "a"\ntool = "sleep"\nseconds = -1\n', ["'a'", "seconds"]),
    "bad-workers": (f"[defaults]\nworkers = 0\n[[op]]\n{OP_A}", ["workers"]),
    "bad-on-error": (f'[defaults]\non_error = "explode"\n[[op]]\n{OP_A}', ["on_error"]),
    "unknown-resource": (f'[[op]]\n{OP_A}resource = "db"\n', ["'a'", "resource", "db"]),
    "unknown-backend": (f'[[op]]\n{OP_A}backend = "gpu"\n', ["'a'", "backend", "gpu"]),
    "unknown-default-backend": (f'[defaults]\nbackend = "gpu"\n[[op]]\n{OP_A}', ["backend", "gpu"]),
    "bash-nothing": ('[[op]]\nid = "a"\ntool = "bash"\n', ["'a'", "argv"]),
    "bash-command-no-shell": (
        '[[op]]\nid = "a"\ntool = "bash"\ncommand = "echo hi"\n',
        ["'a'", "shell"],
    ),
    "bad-regex": ('[[op]]\nid = "a"\ntool = "grep"\npattern = "([a"\n', ["'a'", "pattern"]),
    "bad-call": ('[[op]]\nid = "a"\ntool = "python"\ncall = "nocolon"\n', ["'a'", "call"]),
    "missing-id": ('[[op]]\ntool = "sleep"\nseconds = 0.1\n', ["op #1", "id"]),
    "op-not-table": ("op = [1]\n", ["op #1"]),
    "empty": ("", ["no ops"]),
    "empty-list": ("op = []\n", ["no ops"]),
    "fake-mixed": (f'[defaults]\nbackend = "fake"\n[[op]]\n{OP_A}backend = "threads"\n', ["fake"]),
}


@pytest.mark.parametrize("case", list(ERRORS), ids=list(ERRORS))
def test_plan_errors_are_one_line_and_named(tmp_path: Path, case: str) -> None:
    text, expected = ERRORS[case]
    path = write(tmp_path, text)
    with pytest.raises(truepar.PlanError) as info:
        truepar.load_plan(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    for part in expected:
        assert part in message, (part, message)
    assert isinstance(info.value, truepar.BadInput)
    assert isinstance(info.value, ValueError)


def test_cycle_message_lists_the_loop(tmp_path: Path) -> None:
    path = write(tmp_path, ERRORS["cycle"][0])
    with pytest.raises(truepar.PlanError, match=r"cycle.*a → b → c → a"):
        truepar.load_plan(path)


@pytest.mark.parametrize("case", list(ERRORS), ids=list(ERRORS))
def test_plan_errors_say_each_thing_once(tmp_path: Path, case: str) -> None:
    """The file once, the op once, no pydantic jargon, no "<python>" for a file's op."""
    path = write(tmp_path, ERRORS[case][0])
    with pytest.raises(truepar.PlanError) as info:
        truepar.load_plan(path)
    message = str(info.value)
    assert message.count(str(path)) == 1, message
    assert "<python>" not in message
    assert "Value error" not in message
    assert message.count("op 'a'") <= 1, message
    assert message.count("op #1") <= 1, message


@pytest.mark.parametrize(
    ("case", "field"),
    [("bash-nothing", "argv"), ("bash-command-no-shell", "command"), ("bad-regex", "pattern")],
)
def test_validator_errors_name_the_field(tmp_path: Path, case: str, field: str) -> None:
    with pytest.raises(truepar.PlanError) as info:
        truepar.load_plan(write(tmp_path, ERRORS[case][0]))
    assert field in str(info.value)


# -- numbers: finite, and within the documented bounds -------------------------------------------

#: A plan's text and what its one-line error must name: the op (if any) and the field.
NUMBERS = {
    "seconds-inf": ('[[op]]\nid = "a"\ntool = "sleep"\nseconds = inf\n', ["op 'a'", "'seconds'"]),
    "seconds-1e300": (
        '[[op]]\nid = "a"\ntool = "sleep"\nseconds = 1e300\n',
        ["op 'a'", "'seconds'", "2592000"],
    ),
    "timeout-inf": (f"[[op]]\n{OP_A}timeout = inf\n", ["op 'a'", "'timeout'", "finite"]),
    "timeout-nan": (f"[[op]]\n{OP_A}timeout = nan\n", ["op 'a'", "'timeout'", "finite"]),
    "fake-duration-1e300": (
        f"[[op]]\n{OP_A}fake = {{ duration_s = 1e300 }}\n",
        ["op 'a'", "'fake.duration_s'", "2592000"],
    ),
    "fake-cpu-inf": (f"[[op]]\n{OP_A}fake = {{ cpu_s = inf }}\n", ["op 'a'", "'fake.cpu_s'"]),
    "bash-timeout-31-days": (
        '[[op]]\nid = "a"\ntool = "bash"\nargv = ["true"]\ntimeout = 2678400\n',
        ["op 'a'", "'timeout'", "2592000"],
    ),
    "retries-101": (f"[[op]]\n{OP_A}retries = 101\n", ["op 'a'", "'retries'", "100"]),
    "cost-inf": (f"[[op]]\n{OP_A}cost = inf\n", ["op 'a'", "'cost'"]),
    "defaults-timeout-inf": (f"[defaults]\ntimeout = inf\n[[op]]\n{OP_A}", ["'defaults.timeout'"]),
    "defaults-retries-1000": (
        f"[defaults]\nretries = 1000\n[[op]]\n{OP_A}",
        ["'defaults.retries'", "100"],
    ),
    "defaults-backoff-nan": (
        f"[defaults]\nretry_backoff_s = nan\n[[op]]\n{OP_A}",
        ["'defaults.retry_backoff_s'"],
    ),
    "defaults-stop-at-nan": (f"[defaults]\nstop_at = nan\n[[op]]\n{OP_A}", ["'defaults.stop_at'"]),
    "rate-inf": (
        f"[resources.api]\nper_second = inf\n[[op]]\n{OP_A}",
        ["'resources.api.per_second'"],
    ),
    "max-wait-1e300": (
        f"[resources.api]\nmax_wait_s = 1e300\n[[op]]\n{OP_A}",
        ["'resources.api.max_wait_s'", "2592000"],
    ),
}


@pytest.mark.parametrize("case", list(NUMBERS), ids=list(NUMBERS))
def test_numbers_must_be_finite_and_bounded(tmp_path: Path, case: str) -> None:
    text, expected = NUMBERS[case]
    path = write(tmp_path, text)
    with pytest.raises(truepar.PlanError) as info:
        truepar.load_plan(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    said = message.removeprefix(f"{path}: ")  # the folder's name is the test's: not evidence
    for part in expected:
        assert part in said, (part, message)


def test_infinite_numbers_in_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "ops:\n  - {id: a, tool: sleep, seconds: .inf}\n", "plan.yaml")
    with pytest.raises(truepar.PlanError, match=r"op 'a' field 'seconds': .*finite"):
        truepar.load_plan(path)


def test_numbers_at_their_bounds_are_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[defaults]\ntimeout = 2592000\nretries = 100\nretry_backoff_s = 2592000\n"
        f"[[op]]\n{OP_A}timeout = 2592000\nretries = 100\n"
        'fake = { duration_s = 2592000, cpu_s = 2592000 }\n[[op]]\nid = "b"\ntool = "sleep"\n'
        "seconds = 2592000\n",
    )
    plan = truepar.load_plan(path)
    assert plan.op("b").timeout is None
    assert plan.defaults.timeout == 2592000


def test_python_ops_with_infinite_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        SleepOp(id="a", seconds=float("inf"))
    with pytest.raises(ValueError, match="finite"):
        BashOp(id="a", argv=["true"], timeout=float("nan"))


@pytest.mark.parametrize(
    "case", ["seconds-inf", "seconds-1e300", "timeout-inf", "timeout-nan", "fake-duration-1e300"]
)
def test_cli_refuses_infinite_and_huge_numbers(tmp_path: Path, case: str) -> None:
    text, expected = NUMBERS[case]
    path = write(tmp_path, text)
    proc = truepar_cli("run", str(path), "--no-evidence", timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(path) in lines[0]
    said = lines[0].split(f"{path}: ", 1)[1]
    for part in expected:
        assert part in said, (part, lines[0])


def test_broken_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "ops:\n  - id: a\n    tool: sleep\n   seconds: 1\n", "p.yaml")
    with pytest.raises(truepar.PlanError, match=r"invalid YAML at line \d+") as info:
        truepar.load_plan(path)
    assert str(path) in str(info.value)


def test_top_level_must_be_a_table(tmp_path: Path) -> None:
    with pytest.raises(truepar.PlanError, match="top level"):
        truepar.load_plan(write(tmp_path, "- 1\n- 2\n", "p.yaml"))


def test_missing_plan_file(tmp_path: Path) -> None:
    with pytest.raises(truepar.PlanError, match="no such plan file"):
        truepar.load_plan(tmp_path / "nope.toml")


def test_empty_plan_in_python(tmp_path: Path) -> None:
    with pytest.raises(truepar.PlanError, match="no ops"):
        truepar.Plan(name="empty", ops=[], base_dir=tmp_path).check()
    with pytest.raises(truepar.PlanError, match="no ops"):
        truepar.run(truepar.Plan(name="empty", ops=[], base_dir=tmp_path))


def test_python_plan_errors_name_python_source(tmp_path: Path) -> None:
    ops = [SleepOp(id="a", seconds=0.1, after="b"), SleepOp(id="b", seconds=0.1, after="a")]
    with pytest.raises(truepar.PlanError, match=r"^<python>: cycle"):
        truepar.Plan(ops=ops, base_dir=tmp_path).check()


# -- the graph: conflict edges and their reasons -------------------------------------------------


def graph(tmp_path: Path, ops: list[truepar.OpBase], **kw: object) -> truepar.Graph:
    return truepar.build_graph(make_plan(tmp_path, ops, **kw))


def s(op_id: str, **kw: object) -> SleepOp:
    return SleepOp(id=op_id, seconds=0.01, **kw)


def test_both_write(tmp_path: Path) -> None:
    g = graph(tmp_path, [s("a", writes="x"), s("b", writes="x")])
    assert g.why("b") == ["b after a: both write x"]
    assert g.why("a") == []
    assert [(e.before, e.after) for e in g.edges] == [("a", "b")]


def test_waits_are_why_of_every_op_that_waits(tmp_path: Path) -> None:
    ops = [
        s("a", writes="x"),
        s("b", reads="x"),
        s("c", after=["a", "b"], writes="x"),
        s("d"),
        s("e", after="d", reads="x/y"),
    ]
    g = graph(tmp_path, ops)
    waits = g.waits()
    assert list(waits) == ["b", "c", "e"]  # in plan order, only ops that wait
    assert waits == {op_id: tuple(g.why(op_id)) for op_id in waits}
    assert len(waits["c"]) == 2


def test_read_after_write(tmp_path: Path) -> None:
    g = graph(tmp_path, [s("a", writes="x"), s("b", reads="x")])
    assert g.why("b") == ["b after a: a writes x, which b reads"]


def test_write_after_read(tmp_path: Path) -> None:
    g = graph(tmp_path, [s("a", reads="x"), s("b", writes="x")])
    assert g.why("b") == ["b after a: a reads x, which b writes"]


def test_readers_do_not_conflict(tmp_path: Path) -> None:
    g = graph(tmp_path, [s("a", reads="x"), s("b", reads="x"), s("c", reads=["x", "y"])])
    assert g.edges == ()


def test_unrelated_and_prefix_named_paths_do_not_conflict(tmp_path: Path) -> None:
    g = graph(tmp_path, [s("a", writes="src"), s("b", reads="srcfoo"), s("c", writes="src2/x")])
    assert g.edges == ()


def test_directory_containment(tmp_path: Path) -> None:
    g = graph(tmp_path, [s("a", writes="src"), s("b", reads="src/x.py")])
    (reason,) = g.why("b")
    assert reason.startswith("b after a: a writes src")
    assert "b reads src/x.py" in reason
    g = graph(tmp_path, [s("a", reads="src/pkg/x.py"), s("b", writes="src")])
    (reason,) = g.why("b")
    assert reason.startswith("b after a: a reads src/pkg/x.py")
    assert "b writes src" in reason
    g = graph(tmp_path, [s("a", writes="src/x.py"), s("b", writes="src")])
    assert len(g.why("b")) == 1
    g = graph(tmp_path, [s("a", writes="."), s("b", reads="deep/down/file")])
    assert len(g.why("b")) == 1  # the root contains everything


def test_paths_are_normalised(tmp_path: Path) -> None:
    g = graph(tmp_path, [s("a", writes="./data/x.txt"), s("b", reads="data/sub/../x.txt")])
    assert len(g.why("b")) == 1


def test_resource_names_in_writes(tmp_path: Path) -> None:
    res = {"db": Resource()}
    g = graph(tmp_path, [s("a", writes="db"), s("b", writes="db")], resources=res)
    assert g.why("b") == ["b after a: both write db"]
    g = graph(tmp_path, [s("a", writes="db"), s("b", reads="db")], resources=res)
    assert g.why("b") == ["b after a: a writes db, which b reads"]
    # A path that happens to sit inside a folder named like the resource is not the resource.
    g = graph(tmp_path, [s("a", writes="db"), s("b", reads="db/file")], resources=res)
    assert g.edges == ()


def test_read_op_implied_read(tmp_path: Path) -> None:
    ops = [
        BashOp(id="make", argv=["true"], writes="data.txt"),
        ReadOp(id="read", path="data.txt"),
        LsOp(id="ls", path="."),
        GrepOp(id="grep", pattern="x", path="data.txt"),
        ReadOp(id="other", path="other.txt"),
    ]
    g = graph(tmp_path, ops)
    assert g.why("read") == ["read after make: make writes data.txt, which read reads"]
    assert [e.before for e in g.edges if e.after == "ls"] == ["make"]
    assert [e.before for e in g.edges if e.after == "grep"] == ["make"]
    assert g.why("other") == []


def test_chain_of_writers(tmp_path: Path) -> None:
    g = graph(tmp_path, [s("a", writes="x"), s("b", writes="x"), s("c", writes="x")])
    pairs = {(e.before, e.after) for e in g.edges}
    assert ("a", "b") in pairs
    assert ("b", "c") in pairs


def test_write_waits_for_all_readers(tmp_path: Path) -> None:
    g = graph(
        tmp_path, [s("w", writes="x"), s("r1", reads="x"), s("r2", reads="x"), s("w2", writes="x")]
    )
    assert {e.before for e in g.edges if e.after == "w2"} >= {"r1", "r2"}


def test_conflicts_follow_backward_after_without_cycle(tmp_path: Path) -> None:
    ops = [
        SleepOp(id="a", seconds=0.2, writes="x", after="b"),
        SleepOp(id="b", seconds=0.3, writes="x"),
        SleepOp(id="c", seconds=0.1, reads="x"),
    ]
    plan = make_plan(tmp_path, ops, backend="fake")
    g = truepar.build_graph(plan)
    assert [g.ids[i] for i in g.order] == ["b", "a", "c"]
    pairs = {(e.before, e.after) for e in g.edges}
    assert ("b", "a") in pairs
    assert ("a", "b") not in pairs
    assert ("a", "c") in pairs  # c reads what a, the last writer in graph order, wrote
    trace = truepar.run(plan)
    spans = by_id(trace)
    assert spans["a"].start_ns >= spans["b"].end_ns
    assert spans["c"].start_ns >= spans["a"].end_ns


def test_graph_structure(tmp_path: Path) -> None:
    g = graph(tmp_path, [s("a"), s("b", after="a"), s("c", after=["a", "b"])])
    assert g.ids == ("a", "b", "c")
    assert g.preds == ((), (0,), (0, 1))
    assert g.succs == ((1, 2), (2,), ())
    assert g.index("c") == 2
    assert g.why("c") == ["c after a: declared in after", "c after b: declared in after"]
    assert g.edges[0].explain() == "b after a: declared in after"


# -- absolute paths (in a child process: building the graph once hung on them) -----------

_ABSOLUTE_PROBE = """
import json, sys, truepar
root = sys.argv[1]

def why(write, read):
    plan = truepar.Plan(
        ops=[
            truepar.BashOp(id="w", argv=["true"], writes=write),
            truepar.ReadOp(id="r", path=read),
        ],
        base_dir=root,
    )
    plan.check()
    return truepar.build_graph(plan).why("r")

print(json.dumps({
    "mixed": why("data.txt", root + "/data.txt"),
    "absolute": why(root, root + "/sub/data.txt"),
}))
"""


@pytest.fixture(scope="module")
def absolute_probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]] | None:
    """``why("r")`` for reads by absolute path, or None if building the graph hung."""
    root = tmp_path_factory.mktemp("absolute")
    try:
        out = subprocess.run(
            [sys.executable, "-c", _ABSOLUTE_PROBE, str(root)],
            capture_output=True,
            text=True,
            timeout=4,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return None
    result: dict[str, list[str]] = json.loads(out.stdout)
    return result


def test_absolute_paths_conflict(absolute_probe: dict[str, list[str]] | None) -> None:
    assert absolute_probe is not None, "building the graph hung"
    assert len(absolute_probe["absolute"]) == 1


def test_absolute_path_inside_root_conflicts_with_relative(
    absolute_probe: dict[str, list[str]] | None,
) -> None:
    assert absolute_probe is not None
    assert len(absolute_probe["mixed"]) == 1


def test_a_checked_plan_is_checked_again_only_when_a_copy_changes_it() -> None:
    """A plan is checked once (a bench runs it dozens of times); a copy with other ops or
    defaults is checked on its own."""
    plan = truepar.Plan(ops=[SleepOp(id="a", seconds=0), SleepOp(id="b", seconds=0)])
    plan.check()
    plan.check()  # the same plan: passes again, without the work
    twin = plan.model_copy(update={"ops": (*plan.ops, SleepOp(id="a", seconds=1))})
    with pytest.raises(truepar.PlanError, match="duplicate id"):
        twin.check()
    elsewhere = plan.with_defaults(backend="no-such-backend")
    with pytest.raises(truepar.PlanError, match="no-such-backend"):
        elsewhere.check()
    assert truepar.run(plan).ok
