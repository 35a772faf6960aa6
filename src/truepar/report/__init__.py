"""Reports of evidence: Markdown for pull requests and job summaries, Chrome Trace Event JSON."""

from __future__ import annotations

from truepar.report.chrome_trace import chrome_trace
from truepar.report.markdown import markdown

__all__ = ("chrome_trace", "markdown")
