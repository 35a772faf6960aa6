"""The ``agent`` tool: real agent-like scripts as subprocesses, on every real backend."""

from __future__ import annotations

import hashlib
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest
from pydantic import ValidationError

import truepar
from helpers.plans import make_plan
from truepar import Status
from truepar.plan.models import op_from_dict
from truepar.tools import AgentOp
from truepar.tools.agent import live_last_line

#: A headless "agent": reads its prompt (stdin, or the last argument with --arg), thinks aloud,
#: and ends with one JSON line, as agents that hand back a structured result do.
AGENT = """
import json, os, sys
prompt = sys.argv[-1] if "--arg" in sys.argv else sys.stdin.read()
print("reading the task")
print("working on", len(prompt), "characters", flush=True)
budgets = {k: v for k, v in os.environ.items() if k.startswith("TRUEPAR_BUDGET_")}
print(json.dumps({"prompt": prompt, "budgets": budgets, "cwd": os.getcwd(),
                  "extra": os.environ.get("EXTRA")}))
"""

#: Starts a grandchild that would outlive it, then sleeps past any test timeout.
STUCK = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
with open("grandchild.pid", "w") as f:
    f.write(str(child.pid))
print("started", child.pid, flush=True)
time.sleep(30)
"""

FAILING = """
import sys
print("half done")
print("cannot reach the repository", file=sys.stderr)
sys.exit(3)
"""

#: Burns CPU for a fixed amount of work, so its rusage has something to show.
BUSY = """
n = 0
for i in range(3_000_000):
    n += i * i
print('{"n": %d}' % n)
"""


def _script(tmp_path: Path, source: str, name: str = "agent.py") -> list[str]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return [sys.executable, str(path)]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_prompt_on_stdin_and_final_json_result(backend: str, tmp_path: Path) -> None:
    op = AgentOp(id="a", argv=_script(tmp_path, AGENT), prompt="fix the bug\nin main.py")
    trace = truepar.run(make_plan(tmp_path, [op], backend=backend))
    result = trace.results["a"]
    assert result.status is Status.OK, result
    value = result.value
    assert value["exit_code"] == 0
    assert value["result"]["prompt"] == "fix the bug\nin main.py"
    assert value["stdout"].startswith("reading the task\nworking on 22 characters\n")
    assert value["last_line"] == value["stdout"].strip().splitlines()[-1]
    assert value["result"]["cwd"] == str(tmp_path.resolve())
    span = trace.spans_of("a")[0]
    assert span.child_cpu_s > 0  # the child's own rusage, not a guess
    assert "exit 0" in span.summary


@pytest.mark.parametrize("size", [0, 100, 1 << 20])
def test_prompts_of_any_size_reach_stdin_whole(backend: str, tmp_path: Path, size: int) -> None:
    """Empty, one pipe-full at once, or far more than a pipe holds (fed as the child reads)."""
    prompt = "".join(chr(ord("a") + i % 26) for i in range(size))
    counter = [sys.executable, "-c", "import sys, hashlib; d = sys.stdin.buffer.read(); "
               "print(len(d), hashlib.sha256(d).hexdigest())"]  # fmt: skip
    quitter = [sys.executable, "-c", "print('not reading')"]  # exits with its stdin unread
    ops = [
        AgentOp(id="reads", argv=counter, prompt=prompt),
        AgentOp(id="quits", argv=quitter, prompt=prompt),
    ]
    trace = truepar.run(make_plan(tmp_path, ops, backend=backend))
    assert trace.ok, trace.results
    digest = hashlib.sha256(prompt.encode()).hexdigest()
    assert trace.results["reads"].value["last_line"] == f"{size} {digest}"
    assert trace.results["quits"].value["last_line"] == "not reading"


def test_prompt_as_last_argument(tmp_path: Path) -> None:
    argv = [*_script(tmp_path, AGENT), "--arg"]
    op = AgentOp(id="a", argv=argv, prompt="say hi", prompt_via="arg")
    trace = truepar.run(make_plan(tmp_path, [op]))
    value = trace.results["a"].value
    assert value["result"]["prompt"] == "say hi"
    assert value["argv"] == [*argv, "<prompt>"]  # the prompt is not repeated in the value


def test_budget_share_and_env_reach_the_child(tmp_path: Path) -> None:
    op = AgentOp(
        id="a",
        argv=_script(tmp_path, AGENT),
        prompt="",
        env={"EXTRA": "yes"},
        budget_share={"openai-tokens": 0.25, "gpu": 1},
    )
    value = truepar.run(make_plan(tmp_path, [op])).results["a"].value
    assert value["result"]["budgets"] == {
        "TRUEPAR_BUDGET_OPENAI_TOKENS": "0.25",
        "TRUEPAR_BUDGET_GPU": "1.0",
    }
    assert value["result"]["extra"] == "yes"


def test_cwd_is_confined_to_the_root(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    argv = _script(tmp_path, AGENT)
    ops = [
        AgentOp(id="in", argv=argv, prompt="", cwd="work"),
        AgentOp(id="out", argv=argv, prompt="", cwd=".."),
    ]
    trace = truepar.run(make_plan(tmp_path, ops))
    assert trace.results["in"].value["result"]["cwd"] == str((tmp_path / "work").resolve())
    out = trace.results["out"]
    assert out.status is Status.FAILED
    assert "leaves the plan root" in (out.error or "")


def test_non_zero_exit_fails_but_keeps_the_output(tmp_path: Path) -> None:
    argv = _script(tmp_path, FAILING)
    ops = [
        AgentOp(id="checked", argv=argv, prompt="x"),
        AgentOp(id="unchecked", argv=argv, prompt="x", check=False),
    ]
    trace = truepar.run(make_plan(tmp_path, ops))
    checked = trace.results["checked"]
    assert checked.status is Status.FAILED
    assert checked.error == "exit code 3: cannot reach the repository"
    assert checked.value["last_line"] == "half done"
    assert checked.value["result"] is None  # the last line is not JSON
    assert trace.results["unchecked"].status is Status.OK


def test_last_line_and_result_survive_a_truncated_stdout(tmp_path: Path) -> None:
    chatty = 'for i in range(2000):\n    print("line", i)\nprint(\'{"done": true}\')\n'
    op = AgentOp(id="a", argv=_script(tmp_path, chatty), prompt="", max_output_bytes=100)
    value = truepar.run(make_plan(tmp_path, [op])).results["a"].value
    assert value["stdout_truncated"]
    assert len(value["stdout"]) == 100
    assert value["last_line"] == '{"done": true}'
    assert value["result"] == {"done": True}


@pytest.mark.parametrize("name", ["threads", "async"])
def test_timeout_kills_the_agent_and_what_it_started(name: str, tmp_path: Path) -> None:
    op = AgentOp(id="stuck", argv=_script(tmp_path, STUCK), prompt="", timeout=1.0)
    t0 = time.monotonic()
    trace = truepar.run(make_plan(tmp_path, [op], backend=name))
    assert time.monotonic() - t0 < 10
    assert trace.results["stuck"].status is Status.TIMEOUT
    pid = int((tmp_path / "grandchild.pid").read_text())
    deadline = time.monotonic() + 2.0
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(pid), f"the agent's child {pid} outlived its timed-out op"


def test_child_cpu_comes_from_rusage(tmp_path: Path) -> None:
    op = AgentOp(id="busy", argv=_script(tmp_path, BUSY), prompt="")
    trace = truepar.run(make_plan(tmp_path, [op], backend="async"))
    span = trace.spans_of("busy")[0]
    assert span.child_cpu_s > 0.05
    assert span.cpu_s is not None and span.cpu_s >= span.child_cpu_s


def test_a_missing_program_fails_in_one_line(tmp_path: Path) -> None:
    op = AgentOp(id="a", argv=["no-such-agent-xyz", "--headless"], prompt="hi")
    result = truepar.run(make_plan(tmp_path, [op])).results["a"]
    assert result.status is Status.FAILED
    assert result.error is not None
    assert result.error.startswith("cannot start 'no-such-agent-xyz --headless'")


def test_from_a_plan_table() -> None:
    op = op_from_dict({"tool": "agent", "id": "a", "argv": "claude", "prompt": "hi"})
    assert isinstance(op, AgentOp)
    assert op.argv == ("claude",)
    assert op.effective_isolation() is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"argv": []}, "argv"),
        ({"isolation": "worktree"}, "isolation needs repo"),
        ({"branch": "b", "merge": "rebase"}, "branch, merge needs repo"),
        ({"repo": "r", "isolation": "none", "branch": "b"}, "branch needs isolation"),
        ({"repo": "r", "isolation": "none", "merge": "rebase"}, "merge needs isolation"),
        ({"budget_share": {"tokens": -1}}, "negative"),
        ({"budget_share": {"a-b": 1, "a_b": 2}}, "both become TRUEPAR_BUDGET_A_B"),
        ({"prompt_via": "file"}, "prompt_via"),
    ],
)
def test_invalid_fields(fields: dict[str, object], message: str) -> None:
    raw = {"id": "a", "argv": ["agent"], "prompt": "p", **fields}
    with pytest.raises(ValidationError, match=message):
        AgentOp.model_validate(raw)


def test_isolation_defaults_and_implied_paths() -> None:
    worktree = AgentOp(id="w", argv=["a"], prompt="", repo="repo", branch="feature")
    assert worktree.effective_isolation() == "worktree"
    assert (worktree.implied_reads(), worktree.implied_writes()) == ((), ())
    in_place = AgentOp(id="n", argv=["a"], prompt="", repo="repo", isolation="none")
    assert (in_place.implied_reads(), in_place.implied_writes()) == (("repo",), ("repo",))
    reader = AgentOp(id="r", argv=["a"], prompt="", repo="repo", isolation="none", read_only=True)
    assert (reader.implied_reads(), reader.implied_writes()) == (("repo",), ())


def test_worktree_agents_conflict_with_nothing_in_the_checkout(tmp_path: Path) -> None:
    ops = [
        truepar.BashOp(id="build", argv=["make"], writes="repo/build"),
        *(AgentOp(id=f"w{i}", argv=["a"], prompt="", repo="repo") for i in range(3)),
    ]
    assert truepar.build_graph(make_plan(tmp_path, ops)).edges == ()


def test_an_in_place_reader_waits_for_a_writer_of_the_checkout(tmp_path: Path) -> None:
    ops = [
        truepar.BashOp(id="build", argv=["make"], writes="repo/build"),
        AgentOp(id="review", argv=["a"], prompt="", repo="repo", isolation="none", read_only=True),
    ]
    edges = truepar.build_graph(make_plan(tmp_path, ops)).edges
    assert [e.explain() for e in edges] == [
        "review after build: build writes repo/build and review reads repo: one contains the other"
    ]


def test_in_place_agents_on_one_repo_are_ordered(tmp_path: Path) -> None:
    ops = [
        AgentOp(id="first", argv=["a"], prompt="", repo="repo", isolation="none"),
        AgentOp(id="second", argv=["a"], prompt="", repo="./repo/", isolation="none"),
        AgentOp(id="elsewhere", argv=["a"], prompt="", repo="other", isolation="none"),
    ]
    g = truepar.build_graph(make_plan(tmp_path, ops))
    assert [e.explain() for e in g.edges] == ["second after first: both write repo"]


def test_a_running_agents_last_line_is_visible_while_it_runs(tmp_path: Path) -> None:

    flag = tmp_path / "go"
    script = (
        "import os, sys, time\n"
        "print('step 1: reading', flush=True)\n"
        f"while not os.path.exists({str(flag)!r}): time.sleep(0.01)\n"
        "print('done')\n"
    )
    op = AgentOp(id="watched", argv=[sys.executable, "-c", script], prompt="")
    traces: list[truepar.RunTrace] = []
    runner = threading.Thread(
        target=lambda: traces.append(truepar.run(make_plan(tmp_path, [op]), backend="async"))
    )
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while live_last_line("watched") != "step 1: reading" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert live_last_line("watched") == "step 1: reading"
    finally:
        flag.touch()
        runner.join(30)
    assert traces and traces[0].ok
    assert live_last_line("watched") == ""  # gone once it finished
    assert traces[0].results["watched"].value["last_line"] == "done"
