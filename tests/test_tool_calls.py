"""``truepar.execute_tool_calls``: one LLM message's tool calls, run in parallel where they may be.

Overlap is proven, not timed: tools that meet at a barrier can only both succeed if they ran at
the same time, and the trace's spans must then overlap too.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from truepar import Span, Status
from truepar.errors import UsageError
from truepar.tool_calls import ToolCallResults, ToolSpec, aexecute, execute, parse_tool_calls


def _openai_call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


def _tool_use(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


def _span(results: ToolCallResults, i: int) -> Span:
    assert results.trace is not None
    op_id = results[i].op_id
    assert op_id is not None
    (span,) = results.trace.spans_of(op_id)
    return span


def _overlap(a: Span, b: Span) -> bool:
    return a.start_ns < b.end_ns and b.start_ns < a.end_ns


def _meeting(parties: int) -> ToolSpec:
    """A tool that returns only once ``parties`` calls of it are running at the same time."""
    barrier = threading.Barrier(parties, timeout=10)

    def meet(name: str) -> str:
        barrier.wait()
        return f"met {name}"

    return ToolSpec(meet)


def square(x: int) -> int:
    """Module-level, so it can travel to a worker process."""
    return x * x


def test_openai_calls_run_together_and_answer_in_order() -> None:
    calls = [_openai_call(f"call_{i}", "meet", {"name": f"n{i}"}) for i in range(3)]
    results = execute(calls, {"meet": _meeting(3)})
    assert results.ok, [r.error for r in results]
    assert results.shape == "openai"
    assert results.to_api() == [
        {"role": "tool", "tool_call_id": f"call_{i}", "content": f"met n{i}"} for i in range(3)
    ]
    assert _overlap(_span(results, 0), _span(results, 1))
    assert _overlap(_span(results, 1), _span(results, 2))


def test_anthropic_blocks_skip_text_and_answer_with_tool_results() -> None:
    content = [
        {"type": "text", "text": "Let me look at both files."},
        _tool_use("toolu_a", "meet", {"name": "a"}),
        _tool_use("toolu_b", "meet", {"name": "b"}),
    ]
    results = execute({"role": "assistant", "content": content}, {"meet": _meeting(2)})
    assert results.shape == "anthropic"
    assert results.to_api() == [
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": "met a", "is_error": False},
        {"type": "tool_result", "tool_use_id": "toolu_b", "content": "met b", "is_error": False},
    ]
    assert results.to_openai()[1] == {"role": "tool", "tool_call_id": "toolu_b", "content": "met b"}


def test_openai_sdk_objects() -> None:
    message = openai.types.chat.ChatCompletionMessage.model_validate(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                _openai_call("c1", "square", {"x": 3}),
                _openai_call("c2", "square", ""),
            ],
        }
    )
    assert message.tool_calls is not None
    results = execute(message.tool_calls, {"square": square})
    assert results[0].to_openai() == {"role": "tool", "tool_call_id": "c1", "content": "9"}
    assert not results[1].ok  # "" means no arguments, and square needs x
    assert "missing a required argument: 'x'" in (results[1].error or "")
    assert execute(message, {"square": square})[0].value == 9  # the whole message works too


def test_results_keep_call_order_when_later_calls_finish_first() -> None:
    second_done = threading.Event()

    def slow(tag: str) -> str:
        assert second_done.wait(10), "the second call never ran alongside"
        return tag

    def fast(tag: str) -> str:
        second_done.set()
        return tag

    calls = [_openai_call("a", "slow", {"tag": "first"}), _openai_call("b", "fast", {"tag": "2"})]
    results = execute(calls, {"slow": slow, "fast": fast})
    assert [r.call.id for r in results] == ["a", "b"]
    assert [r.value for r in results] == ["first", "2"]
    assert _span(results, 1).end_ns <= _span(results, 0).end_ns


def test_calls_that_write_one_path_take_turns_in_call_order(tmp_path: Path) -> None:
    def append(path: str, text: str) -> int:
        time.sleep(0.05)  # room for another writer to interleave, were it allowed to
        with (tmp_path / path).open("a") as f:
            return f.write(text)

    spec = ToolSpec(append, writes=lambda a: [a["path"]])
    calls = [
        _openai_call("1", "append", {"path": "log.txt", "text": "one "}),
        _openai_call("2", "append", {"path": "log.txt", "text": "two "}),
        _openai_call("3", "append", {"path": "other.txt", "text": "elsewhere"}),
    ]
    results = execute(calls, {"append": spec}, root=tmp_path)
    assert results.ok
    assert (tmp_path / "log.txt").read_text() == "one two "
    first, second, other = (_span(results, i) for i in range(3))
    assert second.start_ns >= first.end_ns
    assert _overlap(first, other)
    assert results.trace is not None
    assert results.trace.waits["1-append"] == ("1-append after 0-append: both write log.txt",)


def test_a_reader_waits_for_the_writer_before_it(tmp_path: Path) -> None:
    tools = {
        "write": ToolSpec(
            lambda path, text: (tmp_path / path).write_text(text), writes=lambda a: [a["path"]]
        ),
        "read": ToolSpec(lambda path: (tmp_path / path).read_text(), reads=lambda a: [a["path"]]),
    }
    calls = [
        _tool_use("w", "write", {"path": "notes.md", "text": "hello"}),
        _tool_use("r", "read", {"path": "./notes.md"}),
    ]
    results = execute(calls, tools, root=tmp_path)
    assert results[1].value == "hello"


def test_errors_become_results_naming_the_problem() -> None:
    def boom(x: int) -> int:
        raise ValueError(f"no good: {x}")

    calls = [
        _openai_call("ok", "square", {"x": 4}),
        _openai_call("unknown", "delete_everything", {}),
        _openai_call("json", "square", '{"x": 4'),
        _openai_call("list", "square", "[4]"),
        _openai_call("kwarg", "square", {"y": 4}),
        _openai_call("raises", "boom", {"x": 1}),
    ]
    results = execute(calls, {"square": square, "boom": boom})
    assert [r.ok for r in results] == [True, False, False, False, False, False]
    errors = [r.error or "" for r in results]
    assert errors[1] == "unknown tool 'delete_everything' (known: boom, square)"
    assert errors[2].startswith("arguments of 'square' are not valid JSON")
    assert errors[3] == "arguments of 'square' must be a JSON object, not list"
    assert errors[4].startswith("bad arguments for 'square'")
    assert errors[5].startswith("ValueError: no good: 1")
    assert results[5].status is Status.FAILED
    assert results[1].status is None and results[1].op_id is None  # never became an op
    message = results[5].to_openai()
    assert message["content"].startswith("Error: ValueError: no good: 1")
    block = results[1].to_anthropic()
    assert block["is_error"] is True
    assert block["content"] == errors[1]


def test_a_call_after_a_failed_conflicting_call_says_why_it_did_not_run() -> None:
    def fail(path: str) -> None:
        raise OSError("disk full")

    spec = ToolSpec(fail, writes=lambda a: [a["path"]])
    calls = [_openai_call("a", "save", {"path": "x"}), _openai_call("b", "save", {"path": "x"})]
    results = execute(calls, {"save": spec})
    assert results[1].status is Status.SKIPPED
    assert "depends on '0-save', which did not succeed" in (results[1].error or "")


def test_a_tool_that_cannot_say_what_it_touches() -> None:
    spec = ToolSpec(square, reads=lambda a: [a["path"]])
    (result,) = execute([_openai_call("a", "square", {"x": 2})], {"square": spec})
    assert "cannot tell what 'square' touches" in (result.error or "")


def test_values_that_are_not_text_are_sent_as_json() -> None:
    def info() -> dict[str, Any]:
        return {"files": 2, "names": ("a", "b")}

    (result,) = execute([_openai_call("a", "info", {})], {"info": info})
    assert json.loads(result.to_openai()["content"]) == {"files": 2, "names": ["a", "b"]}


def test_nothing_to_run() -> None:
    results = execute([], {"square": square})
    assert (len(results), results.trace, results.to_api()) == (0, None, [])
    text_only = execute([{"type": "text", "text": "no tools needed"}], {})
    assert (text_only.shape, len(text_only)) == ("anthropic", 0)


def test_bad_input_is_the_callers_error() -> None:
    mixed = [_openai_call("a", "square", {"x": 1}), _tool_use("b", "square", {"x": 1})]
    with pytest.raises(UsageError, match="mix the OpenAI and Anthropic shapes"):
        parse_tool_calls(mixed)
    with pytest.raises(UsageError, match="neither a tool call nor a content block"):
        parse_tool_calls([{"name": "square"}])
    with pytest.raises(UsageError, match="not int"):
        parse_tool_calls([3])


def test_sync_tools_on_the_async_backend_run_in_threads() -> None:
    calls = [_openai_call(f"c{i}", "meet", {"name": str(i)}) for i in range(2)]
    results = asyncio.run(aexecute(calls, {"meet": _meeting(2)}))
    assert results.ok, [r.error for r in results]
    assert {_span(results, i).backend for i in range(2)} == {"threads"}
    assert _overlap(_span(results, 0), _span(results, 1))


def test_sync_tools_kept_inline_on_the_async_backend_take_turns() -> None:
    def nap() -> str:
        time.sleep(0.05)
        return "ok"

    calls = [_openai_call(f"c{i}", "nap", {}) for i in range(2)]
    results = asyncio.run(aexecute(calls, {"nap": nap}, offload_sync=False))
    assert results.ok
    assert {_span(results, i).backend for i in range(2)} == {"async"}
    assert not _overlap(_span(results, 0), _span(results, 1))  # the loop was blocked


def test_async_tools_overlap_on_the_event_loop() -> None:
    async def meet(name: str, barrier: asyncio.Barrier) -> str:
        await asyncio.wait_for(barrier.wait(), 10)
        return name

    async def main() -> ToolCallResults:
        barrier = asyncio.Barrier(2)

        async def tool(name: str) -> str:
            return await meet(name, barrier)

        calls = [_tool_use(f"t{i}", "tool", {"name": str(i)}) for i in range(2)]
        return await aexecute(calls, {"tool": tool})

    results = asyncio.run(main())
    assert [r.value for r in results] == ["0", "1"]
    assert {_span(results, i).backend for i in range(2)} == {"async"}


def test_on_worker_processes() -> None:
    calls = [_openai_call(f"c{i}", "square", {"x": i}) for i in range(3)]
    results = execute(calls, {"square": square}, backend="processes", workers=2)
    assert [r.value for r in results] == [0, 1, 4]


def test_timeout_per_tool() -> None:
    def stuck() -> None:
        time.sleep(1)

    spec = ToolSpec(stuck, timeout=0.2)
    (result,) = execute([_openai_call("a", "stuck", {})], {"stuck": spec})
    assert result.status is Status.TIMEOUT
    assert (result.error or "").startswith("timed out after 0.2 s")
