"""One LLM message's tool calls, run at the same time where they do not conflict
(docs/parallel-patterns.md, "The tool-call adapter").

    python scenarios/patterns/tool_calls/tool_calls.py

No model is called: MESSAGE is an assistant message as an OpenAI-compatible server returns it,
asking for six tool calls at once. ``truepar.execute_tool_calls`` runs them through the engine: the
two reads of different files overlap with each other and with the first note; the second note
waits for the first (both write NOTES.md), the read of NOTES.md waits for both notes, and the
call of an unknown tool becomes an error result the model can read. The results come back in
call order, as ``role = "tool"`` messages ready to append to the conversation.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from truepar.tool_calls import ToolSpec, execute


def call(index: int, name: str, **arguments: str) -> dict[str, object]:
    """One tool call as OpenAI's API returns it: the arguments are a JSON string."""
    function = {"name": name, "arguments": json.dumps(arguments)}
    return {"id": f"call_{index}", "type": "function", "function": function}


MESSAGE = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        call(0, "read_file", path="prices.py"),
        call(1, "read_file", path="cart.py"),
        call(2, "append_note", path="NOTES.md", text="prices.py: with_tax truncates"),
        call(3, "append_note", path="NOTES.md", text="cart.py: total ignores quantity"),
        call(4, "read_file", path="NOTES.md"),
        call(5, "delete_repo"),
    ],
}


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "prices.py").write_text("def with_tax(cents):\n    return int(cents * 1.2)\n")
        (work / "cart.py").write_text("def total(items):\n    return sum(items)\n")

        def read_file(path: str) -> str:
            time.sleep(0.2)  # a slow disk, or a remote file system
            return (work / path).read_text()

        def append_note(path: str, text: str) -> str:
            time.sleep(0.2)
            with (work / path).open("a") as f:
                f.write(f"- {text}\n")
            return f"noted in {path}"

        registry = {
            "read_file": ToolSpec(read_file, reads=lambda a: [a["path"]]),
            "append_note": ToolSpec(append_note, writes=lambda a: [a["path"]]),
        }
        results = execute(MESSAGE, registry, root=work)

    trace = results.trace
    assert trace is not None
    totals = trace.totals
    print(
        f"{len(results)} calls, {len(trace.spans)} ran: wall {totals.wall_s:.2f} s for "
        f"{totals.sum_op_s:.2f} s of calls"
    )
    print("ordered because they conflict:")
    for _op_id, why in sorted(trace.waits.items()):
        for sentence in why:
            print(f"  {sentence}")
    print("results, in call order (role = tool messages):")
    for message in results.to_openai():
        print(json.dumps(message))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
