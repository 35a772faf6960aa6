"""``truepar mcp report`` at 80 columns, as a CI log or a pipe shows it, and at 160.

The session is made the way the server makes one — the library's own :class:`Runner` runs
real calls and its :class:`SessionRecorder` writes the evidence — without the MCP SDK in the
way: read and ls sent together, then read, read, grep and a bash that declares what it reads
sent one by one (missed parallelism), a bash that may change anything, a failing read and a
call refused. The root's name is long, so that the title cannot fit 80 columns: it names a
path, printed whole; every other line fits, wrapped at words, nothing cut to "…".
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from helpers.cli import flat, truepar
from truepar.mcp.calls import Runner
from truepar.mcp.report import load_session, session_report
from truepar.mcp.session import Session, SessionRecorder

ROOT_NAME = "a-payments-service-checkout-with-a-realistically-long-folder-name"
SETTLEMENT = "src/payments_gateway/settlement_reconciliation.py"
RATES = "src/payments_gateway/currency_conversion_rates.py"
#: The run of calls sent one by one that batching would have overlapped, as the report says it.
MISSED_RUN = "calls 1-6 (3× read, ls, grep, bash)"


async def _calls(session: Session) -> None:
    runner = Runner(session)
    await runner.start()
    try:
        await asyncio.gather(
            runner.call("read", {"path": "README.md"}), runner.call("ls", {"path": "src"})
        )
        for tool, args in (
            ("read", {"path": SETTLEMENT}),
            ("read", {"path": RATES}),
            ("grep", {"pattern": "return", "path": "src/payments_gateway"}),
            ("bash", {"argv": ["true"], "reads": ["docs/runbooks"]}),
        ):
            await runner.call(tool, args)
            await asyncio.sleep(0.1)  # the model reading the answer before the next call
        await runner.call("bash", {"argv": ["true"]})  # declares nothing: may change anything
        await runner.call("read", {"path": "src/payments_gateway/missing_module.py"})
        await runner.call("deploy_to_production", {})  # no such tool: refused
    finally:
        await runner.aclose()


@pytest.fixture(scope="module")
def session_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("mcp-report")
    root = base / ROOT_NAME
    (root / "src" / "payments_gateway").mkdir(parents=True)
    (root / "docs" / "runbooks").mkdir(parents=True)
    (root / SETTLEMENT).write_text("def settle():\n    return 1\n")
    (root / RATES).write_text("def rates():\n    return 2\n")
    (root / "README.md").write_text("# checkout\n")
    session = Session(root, workers=4)
    recorder = SessionRecorder(session, base / "session.json", ledger=base / "ledger.sqlite")
    asyncio.run(_calls(session))
    recorder.finish()
    return recorder.path


def test_the_session_is_the_one_described(session_file: Path) -> None:
    """The report's facts below are this session's: what the server would have recorded."""
    title, findings = session_report(load_session(session_file))
    assert title.endswith(f"{ROOT_NAME}: failed") and len(title) > 80
    assert findings[0].startswith("9 calls (7 ok, 1 failed, 1 rejected), 8 ops")
    assert any(line.strip().startswith(MISSED_RUN) for line in findings), findings


@pytest.mark.parametrize("columns", [80, 160])
def test_mcp_report_keeps_every_fact_whole(session_file: Path, columns: int) -> None:
    shown = truepar("mcp", "report", str(session_file), columns=columns)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    title, findings = session_report(load_session(session_file))
    lines = out.splitlines()
    # The title names the root: one line, whole, however wide; every other line fits.
    assert lines[0] == title, out
    assert all(len(line) <= columns for line in lines[1:]), out
    assert "…" not in out
    text = flat(out)
    for finding in findings:
        assert flat(finding) in text, (finding, out)
    for tool in ("read", "ls", "grep", "bash"):
        assert f" {tool}" in text
    for words in ("overlapped another", "peak", "in flight while busy", "missed parallelism"):
        assert words in text, (words, out)
    assert "upper bound" in text and MISSED_RUN in text


def test_mcp_report_at_80_columns_breaks_lines_only_where_full(session_file: Path) -> None:
    """Wrapped at the width, not squeezed: a line ends early only where the next word would
    not have fitted. A finding starts 4 in (a run of missed calls 6, as the summary indents
    it); the lines it wraps onto hang 4 deeper than its start, so each finding stands apart."""
    out = truepar("mcp", "report", str(session_file), columns=80).stdout
    lines = out.splitlines()[1:]
    starts = [line for line in lines if _indent(line) in (4, 6)]
    assert len(starts) == len(session_report(load_session(session_file))[1]), out
    assert any(line.lstrip().startswith(MISSED_RUN) for line in starts if _indent(line) == 6)
    continued = [(line, below) for line, below in itertools.pairwise(lines) if _indent(below) >= 8]
    assert continued, out  # at 80 columns the findings wrap
    for line, below in continued:
        assert _indent(below) - _indent(line) in (0, 4), (line, below)
        assert len(line) + 1 + len(below.split()[0]) > 80, (line, below)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))
