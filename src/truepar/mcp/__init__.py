"""``truepar mcp``: truepar's tools as an MCP server, every session measured.

The library parts need no MCP SDK: :class:`Session` records calls and ops as run evidence,
:class:`Runner` runs calls through the engine, :func:`summarize` finds overlap and missed
parallelism. :func:`serve` (in :mod:`truepar.mcp.server`) puts them behind the official MCP
Python SDK over stdio; it needs the ``mcp`` extra (``pip install 'truepar[mcp]'``).
"""

from truepar.mcp.analysis import Call, Missed, SessionSummary, summarize
from truepar.mcp.calls import SERVED, CallResult, Runner, input_schema
from truepar.mcp.report import session_lines
from truepar.mcp.session import CallRecord, Session, SessionRecorder

__all__ = (
    "SERVED",
    "Call",
    "CallRecord",
    "CallResult",
    "Missed",
    "Runner",
    "Session",
    "SessionRecorder",
    "SessionSummary",
    "input_schema",
    "session_lines",
    "summarize",
)
