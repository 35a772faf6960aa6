"""Reports of evidence: self-contained HTML, Markdown for pull requests and job summaries,
Chrome Trace Event JSON for Perfetto."""

from __future__ import annotations

from truepar.report.chrome_trace import chrome_trace, evidence_trace
from truepar.report.html import html
from truepar.report.markdown import markdown

__all__ = ("chrome_trace", "evidence_trace", "html", "markdown")
